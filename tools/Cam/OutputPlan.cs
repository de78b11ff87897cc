using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace CamEngine.Cli;

/// <summary>
/// The files a run will write, checked before any work, and the writes themselves.
/// <list type="bullet">
/// <item>Before the work: the folder is created and probed for writability, temp files that earlier runs left
/// (killed runs of this host whose process is gone; any host's after a day) are removed, and every planned file is
/// looked up: one that exists stops the run (exit 2, before computing) unless --overwrite replaces it or --resume
/// skips the input it belongs to.</item>
/// <item>Each file is written to a temp file named <c>.cam-tmp.HOST.PID.RANDOM.NAME</c> beside it, then moved into
/// place without replacing (create-new): when another run wrote the name meanwhile, this run loses cleanly with exit 2
/// (with --overwrite it replaces it).</item>
/// <item>When the run fails, the files it wrote are removed (with --resume, only those of unfinished inputs), so a
/// failed run leaves the folder as it found it.</item>
/// </list>
/// </summary>
internal sealed class OutputPlan
{
    public const string TempPrefix = ".cam-tmp.";

    private readonly HashSet<string> _existing = new(StringComparer.Ordinal);
    private readonly List<string> _written = [];
    private readonly string _host = Sanitize(Environment.MachineName);
    private readonly int _pid = Environment.ProcessId;

    public OutputPlan(string folder, bool overwrite, bool resume)
    {
        Folder = folder;
        Overwrite = overwrite;
        Resume = resume;
    }

    public string Folder { get; }

    public bool Overwrite { get; }

    public bool Resume { get; }

    /// <summary>Whether the command has --resume (the refusal message mentions it).</summary>
    public bool CanResume { get; init; }

    /// <summary>Files written so far, relative to <see cref="Folder"/> ('/' separated), in writing order.</summary>
    public IReadOnlyList<string> Written => _written;

    /// <summary>Stale temp files removed by <see cref="Prepare"/>.</summary>
    public int RemovedTemps { get; private set; }

    /// <summary>Creates the folder, checks it is writable, removes stale temp files and lists what exists.</summary>
    public void Prepare()
    {
        // A folder that does not exist yet is not created here (a refused run leaves no trace): its nearest existing
        // ancestor is probed instead, and the first write creates it.
        string probeIn = Path.GetFullPath(Folder);
        while (!Directory.Exists(probeIn))
        {
            if (File.Exists(probeIn))
                throw new CamEngineException($"cannot create the folder {PrintableText.Escape(Folder)}: {PrintableText.Escape(probeIn)} is a file");
            probeIn = Path.GetDirectoryName(probeIn) ?? throw new CamEngineException($"cannot create the folder {PrintableText.Escape(Folder)}");
        }
        string probe = Path.Combine(probeIn, TempName("probe"));
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write))
            {
            }
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CamEngineException($"cannot write into {PrintableText.Escape(probeIn)}: {PrintableText.Escape(e.Message)}", e);
        }
        if (!Directory.Exists(Folder))
            return;
        foreach (var file in Directory.EnumerateFiles(Folder, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            string name = Path.GetFileName(file);
            if (name.StartsWith(TempPrefix, StringComparison.Ordinal))
            {
                if (IsStale(file, name))
                {
                    TryDelete(file);
                    RemovedTemps++;
                }
                continue;
            }
            _existing.Add(Relative(file));
        }
    }

    /// <summary>Records a file written outside the folder (a report, --csv), relative to it, so that the manifest
    /// lists it in writing order and a failed run removes it.</summary>
    public void Record(string path)
    {
        _written.Add(Relative(Path.GetFullPath(path)));
    }

    /// <summary>Whether <paramref name="name"/> (relative, '/' separated) exists. A <c>*</c> in it stands for a class
    /// index (top-k outputs): then the count of matching files.</summary>
    public int Count(string name)
    {
        if (!name.Contains('*', StringComparison.Ordinal))
            return _existing.Contains(name) ? 1 : 0;
        var pattern = new Regex("^" + Regex.Escape(name).Replace("\\*", "[0-9]+", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);
        return _existing.Count(pattern.IsMatch);
    }

    /// <summary>Checks the planned files of the run: those that exist stop it unless --overwrite (exit 2 with the
    /// first and the count).</summary>
    public void CheckFree(IEnumerable<string> planned)
    {
        if (Overwrite)
            return;
        var taken = planned.Where(n => Count(n) > 0).Take(1000).ToList();
        if (taken.Count == 0)
            return;
        string more = taken.Count > 1 ? $" (and {(taken.Count == 1000 ? "999 or more" : (taken.Count - 1).ToString(CultureInfo.InvariantCulture))} more planned outputs)" : "";
        throw new CamEngineException(
            $"{PrintableText.Escape(Path.Combine(Folder, taken[0].Replace('*', 'C')))} exists{more}; nothing was computed; pass --overwrite to replace{(CanResume ? ", --resume to skip the inputs already done," : "")} or another --out");
    }

    /// <summary>Writes one file (relative name) through a temp file and a create-new move.</summary>
    public void Write(string name, ReadOnlySpan<byte> bytes)
    {
        string path = Path.Combine(Folder, name);
        string dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, TempName(Path.GetFileName(path)));
        try
        {
            using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                s.Write(bytes);
            File.Move(temp, path, Overwrite || Resume);
        }
        catch (IOException) when (!Overwrite && File.Exists(path))
        {
            TryDelete(temp);
            throw new CamEngineException(
                $"{PrintableText.Escape(path)} was written by another run meanwhile; this run stops (pass --overwrite to replace, or use another --out)");
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        _written.Add(name);
        _existing.Add(name);
    }

    /// <summary>Removes the files this run wrote from the <paramref name="from"/>th on (all by default).</summary>
    public void Rollback(int from = 0)
    {
        for (int i = from; i < _written.Count; i++)
            TryDelete(Path.Combine(Folder, _written[i]));
        _written.RemoveRange(from, _written.Count - from);
    }

    /// <summary>A temp file name for this process: <c>.cam-tmp.HOST.PID.RANDOM.NAME</c>.</summary>
    public string TempName(string name) =>
        string.Create(CultureInfo.InvariantCulture, $"{TempPrefix}{_host}.{_pid}.{Guid.NewGuid():N}.{name}");

    private string Relative(string path) => Path.GetRelativePath(Folder, path).Replace('\\', '/');

    private bool IsStale(string path, string name)
    {
        var parts = name[TempPrefix.Length..].Split('.', 4);
        bool ours = parts.Length == 4 && parts[0] == _host;
        if (ours && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            return pid != _pid && !Alive(pid);
        return File.GetLastWriteTimeUtc(path) < DateTime.UtcNow.AddDays(-1);
    }

    private static bool Alive(int pid)
    {
        if (pid <= 0)
            return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string Sanitize(string host) =>
        string.Concat(host.Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-'));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a file that cannot be removed stays; the next run's Prepare retries temp files.
        }
    }
}
