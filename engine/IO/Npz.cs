using System.IO.Compression;
using CamEngine.Tensors;

namespace CamEngine.IO;

/// <summary>
/// Reads NumPy <c>.npz</c> archives (<c>np.savez</c> / <c>np.savez_compressed</c>): a zip file of <c>.npy</c> entries,
/// stored or deflated. Every entry is read with the strict <see cref="Npy"/> parser; an entry's declared size is
/// bounded by the caller's limit before anything is inflated, and the data must match its header exactly.
/// </summary>
internal static class Npz
{
    /// <summary>Default limit on the uncompressed size of one entry.</summary>
    public const long DefaultMaxEntryBytes = 1L << 30;

    /// <summary>Most entries accepted in one archive.</summary>
    public const int MaxEntries = 100_000;

    /// <summary>Reads the numeric arrays of the archive at <paramref name="path"/> (string arrays are skipped;
    /// see <see cref="ReadAll(string, long)"/> and <see cref="ReadStrings(string, long)"/>).</summary>
    public static Dictionary<string, HostTensor> Read(string path, long maxEntryBytes = DefaultMaxEntryBytes) =>
        ReadAll(path, maxEntryBytes).Arrays;

    /// <summary>Reads the numeric arrays of an archive held in <paramref name="stream"/>.</summary>
    public static Dictionary<string, HostTensor> Read(
        Stream stream, string name = "stream", long maxEntryBytes = DefaultMaxEntryBytes) =>
        ReadAll(stream, name, maxEntryBytes).Arrays;

    /// <summary>Reads the string (<c>&lt;U</c>) arrays of the archive at <paramref name="path"/>, e.g. a JSON
    /// <c>meta</c> entry saved as a 0-d string array.</summary>
    public static Dictionary<string, string[]> ReadStrings(string path, long maxEntryBytes = DefaultMaxEntryBytes) =>
        ReadAll(path, maxEntryBytes).Strings;

    /// <summary>Reads every array of the archive at <paramref name="path"/>.</summary>
    public static NpzArchive ReadAll(string path, long maxEntryBytes = DefaultMaxEntryBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{path}: cannot open: {e.Message}", e);
        }
        using (fs)
            return ReadAll(fs, path, maxEntryBytes);
    }

    /// <summary>Reads every array of an archive held in <paramref name="stream"/> (which must be seekable, as zip
    /// needs; the stream is left open).</summary>
    public static NpzArchive ReadAll(Stream stream, string name = "stream", long maxEntryBytes = DefaultMaxEntryBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var arrays = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        var strings = new Dictionary<string, string[]>(StringComparer.Ordinal);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidInputException($"{name}: not a valid .npz (zip) file: {e.Message}", e);
        }
        using (zip)
        {
            if (zip.Entries.Count > MaxEntries)
                throw new InvalidInputException($"{name}: {zip.Entries.Count} entries, more than {MaxEntries}");
            foreach (var entry in zip.Entries)
            {
                if (entry.FullName.EndsWith('/'))
                    continue;
                string key = entry.FullName.EndsWith(".npy", StringComparison.Ordinal)
                    ? entry.FullName[..^4]
                    : entry.FullName;
                string label = $"{name}[{key}]";
                if (entry.Length > maxEntryBytes)
                    throw new InvalidInputException(
                        $"{label}: entry of {entry.Length} bytes exceeds the limit of {maxEntryBytes}");
                if (arrays.ContainsKey(key) || strings.ContainsKey(key))
                    throw new InvalidInputException($"{label}: duplicate entry");
                try
                {
                    using var es = entry.Open();
                    var (tensor, text) = Npy.ReadAny(es, label, maxEntryBytes, entry.Length);
                    if (tensor != null)
                        arrays.Add(key, tensor);
                    else
                        strings.Add(key, text!);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidInputException($"{label}: corrupt zip entry: {e.Message}", e);
                }
            }
        }
        return new NpzArchive(arrays, strings);
    }
}
