using CamEngine.IO;
using System.Text;
using System.Text.RegularExpressions;

namespace CamEngine.Cli;

/// <summary>One input file and the name its outputs get (its path below the folder or glob base it came from,
/// without extension, '/' separated: outputs mirror the input folders).</summary>
internal sealed record InputFile(string Path, string OutputStem);

/// <summary>
/// The inputs of a run: files, folders (their image files; with --recursive also those of subfolders), globs
/// (<c>*</c>, <c>?</c>, <c>[abc]</c> within a name, <c>**</c> for any folders; expanded by cam itself, so quoting
/// works on every OS and shells' argument limits do not apply) and --list files (one path, folder or glob per line;
/// blank lines and lines starting with # skipped). The list is sorted by path (ordinal) and deduplicated, so that
/// every run, shard and resume sees the same order.
/// </summary>
internal static class InputSet
{
    /// <summary>File extensions read from folders and globs.</summary>
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".npy"];

    /// <summary>Largest --list file read (counted as read, so a pipe or device stops at the limit).</summary>
    public const int MaxListBytes = 256 << 20;

    public static List<InputFile> Expand(IEnumerable<string> arguments, string? listFile, bool recursive)
    {
        var entries = arguments.ToList();
        if (listFile != null)
            entries.AddRange(ReadList(listFile));
        var files = new Dictionary<string, InputFile>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            foreach (var f in ExpandOne(entry, recursive))
                files.TryAdd(System.IO.Path.GetFullPath(f.Path), f);
        }
        var sorted = files.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value).ToList();
        var clash = sorted.GroupBy(f => f.OutputStem, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (clash != null)
        {
            var two = clash.Take(2).ToList();
            throw new UsageException(
                $"{PrintableText.Escape(two[0].Path)} and {PrintableText.Escape(two[1].Path)} would both write outputs named '{PrintableText.Escape(clash.Key)}'; give their folder instead, or rename one");
        }
        return sorted;
    }

    private static List<InputFile> ExpandOne(string entry, bool recursive)
    {
        if (File.Exists(entry))
            return [new InputFile(entry, System.IO.Path.GetFileNameWithoutExtension(entry))];
        if (Directory.Exists(entry))
        {
            var found = Directory.EnumerateFiles(entry, "*", new EnumerationOptions
            {
                RecurseSubdirectories = recursive, IgnoreInaccessible = false, AttributesToSkip = FileAttributes.Hidden,
                MatchCasing = MatchCasing.CaseSensitive,
            }).Where(IsImage).Select(f => new InputFile(f, Stem(entry, f))).ToList();
            if (found.Count == 0)
                throw new CamEngineException($"{PrintableText.Escape(entry)}: no {string.Join(", ", Extensions)} files{(recursive ? "" : " (add --recursive for subfolders)")}");
            return found;
        }
        if (entry.IndexOfAny(['*', '?', '[']) >= 0)
        {
            var found = Glob(entry).ToList();
            if (found.Count == 0)
                throw new CamEngineException($"no file matches '{PrintableText.Escape(entry)}'");
            return found;
        }
        throw new CamEngineException($"no such file or folder: {PrintableText.Escape(entry)}");
    }

    private static bool IsImage(string path) =>
        Extensions.Contains(System.IO.Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>The file's path below <paramref name="root"/> without extension, '/' separated.</summary>
    private static string Stem(string root, string file)
    {
        string relative = System.IO.Path.GetRelativePath(root, file);
        string dir = System.IO.Path.GetDirectoryName(relative) ?? "";
        string name = System.IO.Path.GetFileNameWithoutExtension(relative);
        return (dir.Length == 0 ? name : System.IO.Path.Combine(dir, name)).Replace('\\', '/');
    }

    /// <summary>Files matching a glob: the segments before the first wildcard are the base folder; each later
    /// segment matches one name (<c>**</c>: any number of folders). Image files only.</summary>
    private static IEnumerable<InputFile> Glob(string pattern)
    {
        var segments = pattern.Replace('\\', '/').Split('/');
        int first = Array.FindIndex(segments, s => s.IndexOfAny(['*', '?', '[']) >= 0);
        string root = string.Join('/', segments[..first]);
        if (root.Length == 0)
            root = pattern.StartsWith('/') ? "/" : ".";
        if (!Directory.Exists(root))
            return [];
        var rest = segments[first..].Select(s => s == "**" ? null : SegmentRegex(s)).ToArray();
        bool deep = rest.Any(r => r == null);
        return Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = deep || rest.Length > 1, AttributesToSkip = FileAttributes.Hidden })
            .Where(f => IsImage(f) && Matches(System.IO.Path.GetRelativePath(root, f).Replace('\\', '/').Split('/'), rest, 0, 0))
            .Select(f => new InputFile(f, Stem(root, f)));
    }

    private static bool Matches(string[] parts, Regex?[] pattern, int p, int q)
    {
        if (q == pattern.Length)
            return p == parts.Length;
        if (pattern[q] == null)
            return Matches(parts, pattern, p, q + 1) || (p < parts.Length && Matches(parts, pattern, p + 1, q));
        return p < parts.Length && pattern[q]!.IsMatch(parts[p]) && Matches(parts, pattern, p + 1, q + 1);
    }

    private static Regex SegmentRegex(string segment)
    {
        var b = new StringBuilder("^");
        for (int i = 0; i < segment.Length; i++)
        {
            char c = segment[i];
            if (c == '*')
            {
                b.Append("[^/]*");
            }
            else if (c == '?')
            {
                b.Append("[^/]");
            }
            else if (c == '[' && segment.IndexOf(']', i + 1) is int close and > 0)
            {
                string set = segment[(i + 1)..close];
                b.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                i = close;
            }
            else
            {
                b.Append(Regex.Escape(c.ToString()));
            }
        }
        return new Regex(b.Append('$').ToString(), RegexOptions.CultureInvariant);
    }

    private static List<string> ReadList(string path) =>
        BoundedReader.ReadAllLines(path, MaxListBytes).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
}
