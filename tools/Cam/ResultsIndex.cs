using System.Globalization;
using System.Text;

namespace CamEngine.Cli;

/// <summary>One row of results.csv: one image x method x class.</summary>
internal sealed record ResultRow(
    string Input, int Class, string? Label, double Score, double? Probability, string Method, string Layer,
    IReadOnlyList<string> Files, double Milliseconds);

/// <summary>
/// results.csv in the output folder: a header, then one row per image x method x class, appended by every run and
/// shard into the same folder. Each append holds an exclusive lock on <c>.results.csv.lock</c> (an OS file lock,
/// so concurrent runs take turns and rows never interleave) and writes whole rows; the header is written once, by
/// the first append to an empty file. A run without --resume keeps its rows in a temp file beside (memory stays
/// bounded however many images) until it succeeds, so a failed run adds none; with --resume each batch's rows are
/// appended when the batch's files are written.
/// </summary>
internal sealed class ResultsIndex(string folder, string runId, bool appendEachBatch, string? spoolName = null) : IDisposable
{
    public const string FileName = "results.csv";

    public const string LockName = ".results.csv.lock";

    public static readonly string[] Columns =
        ["input", "class", "label", "score", "probability", "method", "layer", "files", "ms", "run"];

    private FileStream? _spool;
    private int _spooled;

    public int Rows { get; private set; }

    public void Add(IEnumerable<ResultRow> rows)
    {
        var list = rows.ToList();
        if (list.Count == 0)
            return;
        string text = Format(list);
        if (appendEachBatch)
        {
            Append(folder, text);
            Rows += list.Count;
            return;
        }
        if (_spool == null)
        {
            Directory.CreateDirectory(folder);
            _spool = new FileStream(Path.Combine(folder, spoolName ?? $"{OutputPlan.TempPrefix}{runId}.results.csv"),
                FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        }
        _spool.Write(Encoding.UTF8.GetBytes(text));
        _spooled += list.Count;
    }

    /// <summary>Appends the spooled rows (nothing when there are none) and removes the spool.</summary>
    public void Flush()
    {
        if (_spool == null)
            return;
        _spool.Position = 0;
        var bytes = new byte[_spool.Length];
        _spool.ReadExactly(bytes);
        Append(folder, Encoding.UTF8.GetString(bytes));
        Rows += _spooled;
        Dispose();
    }

    /// <summary>Drops the spooled rows (a failed run).</summary>
    public void Dispose()
    {
        _spool?.Dispose();
        _spool = null;
        _spooled = 0;
    }

    private string Format(List<ResultRow> rows)
    {
        var text = new StringBuilder();
        foreach (var r in rows)
        {
            text.AppendJoin(',', new[]
            {
                Csv(r.Input), r.Class.ToString(CultureInfo.InvariantCulture), Csv(r.Label ?? ""),
                r.Score.ToString("R", CultureInfo.InvariantCulture),
                r.Probability is { } p ? p.ToString("R", CultureInfo.InvariantCulture) : "",
                Csv(r.Method), Csv(r.Layer), Csv(string.Join(';', r.Files)),
                r.Milliseconds.ToString("F1", CultureInfo.InvariantCulture), Csv(runId),
            }).Append('\n');
        }
        return text.ToString();
    }

    private static void Append(string folder, string rows)
    {
        string header = string.Join(',', Columns) + "\n";
        using var gate = Lock(Path.Combine(folder, LockName));
        using var file = new FileStream(Path.Combine(folder, FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (file.Length == 0)
        {
            file.Write(Encoding.UTF8.GetBytes(header));
        }
        else
        {
            var first = new byte[Math.Min(header.Length, (int)file.Length)];
            file.ReadExactly(first);
            if (Encoding.UTF8.GetString(first) != header)
                throw new CamEngineException($"{Path.Combine(folder, FileName)} has other columns than this version writes; move it away or use another --out");
            file.Seek(0, SeekOrigin.End);
        }
        file.Write(Encoding.UTF8.GetBytes(rows));
        file.Flush(flushToDisk: true);
    }

    /// <summary>Opens the lock file exclusively, waiting for other runs (up to 5 minutes).</summary>
    private static FileStream Lock(string path)
    {
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(Random.Shared.Next(10, 60));
            }
        }
    }

    /// <summary>A CSV field: quoted when it holds a comma, quote or line break (quotes doubled).</summary>
    public static string Csv(string field) =>
        field.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;
}
