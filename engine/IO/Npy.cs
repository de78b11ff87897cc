using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using CamEngine.Tensors;

namespace CamEngine.IO;

/// <summary>
/// Reads and writes NumPy <c>.npy</c> files (format versions 1.0, 2.0 and 3.0).
/// <para>Reading converts little-endian float16/32/64, (u)int8-64 and bool to float32 (integers beyond 2^24 lose
/// precision); <c>&lt;U</c> string arrays are read by <see cref="ReadStrings(Stream, string, long)"/>.
/// Refused with <see cref="InvalidInputException"/>: a bad magic or version, a header longer than
/// <see cref="MaxHeaderLength"/>, a header that is not NumPy's dict literal, <c>fortran_order: True</c>,
/// big-endian or structured dtypes, shapes whose element count overflows, and data whose length differs from
/// what the header declares (short data and trailing bytes both fail: the stream must hold exactly one array).</para>
/// <para>Writing produces float32 <c>&lt;f4</c>, version 1.0 (2.0 only if the header would not fit), with the
/// header padded by spaces to a 64-byte boundary and ending in a newline, as NumPy does.</para>
/// </summary>
internal static class Npy
{
    /// <summary>Longest header accepted, in bytes (NumPy's own reader allows 10,000 by default).</summary>
    public const int MaxHeaderLength = 64 * 1024;

    /// <summary>Default limit on the data bytes of one array.</summary>
    public const long DefaultMaxDataBytes = 4L << 30;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private const int ChunkBytes = 1 << 20;

    /// <summary>Reads a numeric array from the file at <paramref name="path"/> as float32. The file is read through
    /// <see cref="BoundedReader"/>: its stated length is not trusted, and reading stops past the header and
    /// <paramref name="maxDataBytes"/> bytes of data.</summary>
    public static HostTensor Read(string path, long maxDataBytes = DefaultMaxDataBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var fs = OpenRead(path, maxDataBytes);
        return Read(fs, path, maxDataBytes);
    }

    /// <summary>Reads a numeric array as float32 from <paramref name="stream"/>, which must hold exactly one array;
    /// <paramref name="name"/> names the source in error messages.</summary>
    public static HostTensor Read(Stream stream, string name = "stream", long maxDataBytes = DefaultMaxDataBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = ReadHeader(stream, name);
        if (header.Kind == NpyKind.Unicode)
            throw new InvalidInputException($"{name}: holds strings ('{header.Descr}'), not numbers");
        return ReadNumeric(stream, header, name, maxDataBytes, Available(stream));
    }

    /// <summary>Reads a <c>&lt;U</c> string array from the file at <paramref name="path"/>, flattened row-major.</summary>
    public static string[] ReadStrings(string path, long maxDataBytes = DefaultMaxDataBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var fs = OpenRead(path, maxDataBytes);
        return ReadStrings(fs, path, maxDataBytes);
    }

    /// <summary>Reads a <c>&lt;U</c> string array (flattened row-major; a 0-d array gives one string) from
    /// <paramref name="stream"/>. NumPy pads strings with trailing NULs; those are removed.</summary>
    public static string[] ReadStrings(Stream stream, string name = "stream", long maxDataBytes = DefaultMaxDataBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = ReadHeader(stream, name);
        if (header.Kind != NpyKind.Unicode)
            throw new InvalidInputException($"{name}: holds numbers ('{header.Descr}'), not strings");
        return ReadUnicode(stream, header, name, maxDataBytes, Available(stream));
    }

    /// <summary>Writes <paramref name="tensor"/> as a float32 .npy file, atomically (temporary file, then rename).</summary>
    public static void Write(string path, HostTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        AtomicFile.Write(path, s => Write(s, tensor));
    }

    /// <summary>Writes <paramref name="tensor"/> as a float32 .npy image to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, HostTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensor);
        string dims = tensor.Shape.Length == 1
            ? tensor.Shape[0].ToString(CultureInfo.InvariantCulture) + ","
            : string.Join(", ", tensor.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
        // Preamble: magic (6) + version (2) + length (2 in v1.0, 4 in v2.0); total padded to 64 with the final '\n'.
        int preamble = 10;
        int total = Align64(preamble + dict.Length + 1);
        byte major = 1;
        if (total - preamble > ushort.MaxValue)
        {
            preamble = 12;
            total = Align64(preamble + dict.Length + 1);
            major = 2;
        }
        int headerLen = total - preamble;
        var head = new byte[total];
        Magic.CopyTo(head);
        head[6] = major;
        head[7] = 0;
        if (major == 1)
            BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(8), (ushort)headerLen);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(8), (uint)headerLen);
        int n = Encoding.ASCII.GetBytes(dict, head.AsSpan(preamble));
        head.AsSpan(preamble + n, headerLen - n - 1).Fill((byte)' ');
        head[total - 1] = (byte)'\n';
        stream.Write(head);

        var buffer = new byte[ChunkBytes];
        ReadOnlySpan<float> data = tensor.Data;
        const int perChunk = ChunkBytes / 4;
        for (int i = 0; i < data.Length; i += perChunk)
        {
            var part = data.Slice(i, Math.Min(perChunk, data.Length - i));
            for (int k = 0; k < part.Length; k++)
                BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4 * k), part[k]);
            stream.Write(buffer, 0, 4 * part.Length);
        }
    }

    /// <summary>Reads one array (numeric or string) from <paramref name="stream"/>; used by <see cref="Npz"/>,
    /// which knows the declared size of each entry (<paramref name="available"/>).</summary>
    internal static (HostTensor? Tensor, string[]? Strings) ReadAny(
        Stream stream, string name, long maxDataBytes, long? available)
    {
        var header = ReadHeader(stream, name, out long headerBytes);
        available -= headerBytes;
        return header.Kind == NpyKind.Unicode
            ? (null, ReadUnicode(stream, header, name, maxDataBytes, available))
            : (ReadNumeric(stream, header, name, maxDataBytes, available), null);
    }

    /// <summary>The file through <see cref="BoundedReader"/>, limited to the largest header and
    /// <paramref name="maxDataBytes"/> of data.</summary>
    private static Stream OpenRead(string path, long maxDataBytes) =>
        BoundedReader.OpenRead(path, 12 + MaxHeaderLength + Math.Max(0, maxDataBytes));

    private static long? Available(Stream s)
    {
        try
        {
            return s.CanSeek ? s.Length - s.Position : null;
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }

    private static int Align64(int n) => (n + 63) / 64 * 64;

    private static NpyHeader ReadHeader(Stream s, string name) => ReadHeader(s, name, out _);

    // headerBytes: what was consumed (magic, version, length field, header text).
    private static NpyHeader ReadHeader(Stream s, string name, out long headerBytes)
    {
        Span<byte> pre = stackalloc byte[12];
        if (ReadFully(s, pre[..8]) < 8 || !pre[..6].SequenceEqual(Magic))
            throw new InvalidInputException($"{name}: not a .npy file (bad magic)");
        byte major = pre[6], minor = pre[7];
        if (minor != 0 || major is < 1 or > 3)
            throw new InvalidInputException($"{name}: unsupported .npy format version {major}.{minor}");
        int lenBytes = major == 1 ? 2 : 4;
        if (ReadFully(s, pre.Slice(8, lenBytes)) < lenBytes)
            throw new InvalidInputException($"{name}: truncated .npy header");
        long headerLen = major == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(pre[8..])
            : BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        if (headerLen > MaxHeaderLength)
            throw new InvalidInputException(
                $"{name}: .npy header length {headerLen} exceeds the limit of {MaxHeaderLength} bytes");
        var raw = new byte[headerLen];
        if (ReadFully(s, raw) < headerLen)
            throw new InvalidInputException($"{name}: truncated .npy header");
        string text;
        try
        {
            // Versions 1.0 and 2.0 are latin-1 (NumPy only writes ASCII); 3.0 is UTF-8.
            text = major == 3
                ? new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw)
                : Encoding.Latin1.GetString(raw);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidInputException($"{name}: .npy header is not valid UTF-8", e);
        }
        headerBytes = 8 + lenBytes + headerLen;
        return NpyHeader.Parse(text, name);
    }

    private static void CheckSize(NpyHeader h, string name, long maxDataBytes, long? available)
    {
        long bytes = h.DataBytes;
        if (bytes / Math.Max(1, h.ItemSize) != h.Count || bytes > maxDataBytes)
            throw new InvalidInputException(
                $"{name}: array {TensorShape.Format(h.Shape)} of '{h.Descr}' needs {bytes} bytes, over the limit of {maxDataBytes}");
        if (available is long a && a < bytes)
            throw new InvalidInputException(
                $"{name}: truncated .npy data: shape {TensorShape.Format(h.Shape)} of '{h.Descr}' needs {bytes} bytes, {a} present");
    }

    private static HostTensor ReadNumeric(Stream s, NpyHeader h, string name, long maxDataBytes, long? available)
    {
        CheckSize(h, name, maxDataBytes, available);
        if (h.Count > Array.MaxLength)
            throw new InvalidInputException($"{name}: array {TensorShape.Format(h.Shape)} has more elements than one array holds");
        // With no trustworthy length (a pipe, a device, a bounded file stream) the array grows as data arrives, so a
        // header that claims gigabytes costs only what is actually read before the data runs out.
        var data = new float[available is null ? Math.Min(h.Count, ChunkBytes) : h.Count];
        var buffer = new byte[(int)Math.Min(ChunkBytes, Math.Max(h.DataBytes, 1))];
        long done = 0;
        while (done < h.Count)
        {
            int items = (int)Math.Min(buffer.Length / h.ItemSize, h.Count - done);
            int want = items * h.ItemSize;
            if (ReadFully(s, buffer.AsSpan(0, want)) < want)
                throw Truncated(h, name);
            if (done + items > data.Length)
                Array.Resize(ref data, (int)Math.Min(h.Count, Math.Max(2L * data.Length, done + items)));
            Convert(h.Kind, buffer.AsSpan(0, want), data.AsSpan((int)done, items));
            done += items;
        }
        EnsureEnd(s, name);
        return new HostTensor(h.Shape, data);
    }

    private static string[] ReadUnicode(Stream s, NpyHeader h, string name, long maxDataBytes, long? available)
    {
        CheckSize(h, name, maxDataBytes, available);
        if (h.DataBytes > Array.MaxLength)
            throw new InvalidInputException($"{name}: string array too large");
        byte[] raw;
        if (available is null)
        {
            // No trustworthy length: read what arrives (bounded by the declared size) instead of allocating it first.
            raw = ReadGrowing(s, h.DataBytes) ?? throw Truncated(h, name);
        }
        else
        {
            raw = new byte[h.DataBytes];
            if (ReadFully(s, raw) < raw.Length)
                throw Truncated(h, name);
        }
        EnsureEnd(s, name);
        var utf32 = new UTF32Encoding(bigEndian: false, byteOrderMark: false, throwOnInvalidCharacters: true);
        var result = new string[h.Count];
        for (long i = 0; i < h.Count; i++)
        {
            var item = raw.AsSpan((int)(i * h.ItemSize), h.ItemSize);
            int len = item.Length;
            while (len >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(item.Slice(len - 4)) == 0)
                len -= 4;
            try
            {
                result[i] = utf32.GetString(item[..len]);
            }
            catch (DecoderFallbackException e)
            {
                throw new InvalidInputException($"{name}: string element {i} is not valid UTF-32", e);
            }
        }
        return result;
    }

    /// <summary>Exactly <paramref name="count"/> bytes from <paramref name="s"/> in a buffer that doubles as they
    /// arrive; null when the stream ends first.</summary>
    private static byte[]? ReadGrowing(Stream s, long count)
    {
        var buffer = new byte[(int)Math.Min(count, ChunkBytes)];
        int length = 0;
        while (length < count)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(count, 2L * buffer.Length));
            int read = s.Read(buffer, length, buffer.Length - length);
            if (read == 0)
                return null;
            length += read;
        }
        return buffer;
    }

    private static InvalidInputException Truncated(NpyHeader h, string name) =>
        new($"{name}: truncated .npy data: shape {TensorShape.Format(h.Shape)} of '{h.Descr}' needs {h.DataBytes} bytes");

    private static void EnsureEnd(Stream s, string name)
    {
        Span<byte> one = stackalloc byte[1];
        if (s.Read(one) != 0)
            throw new InvalidInputException($"{name}: unexpected bytes after the .npy array data");
    }

    private static int ReadFully(Stream s, Span<byte> buffer) => s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);

    private static void Convert(NpyKind kind, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (kind)
        {
            case NpyKind.Float32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                }
                break;
            case NpyKind.Float64:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]);
                break;
            case NpyKind.Float16:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case NpyKind.Int8:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (sbyte)src[i];
                break;
            case NpyKind.UInt8:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = src[i];
                break;
            case NpyKind.Bool:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = src[i] != 0 ? 1f : 0f;
                break;
            case NpyKind.Int16:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadInt16LittleEndian(src[(2 * i)..]);
                break;
            case NpyKind.UInt16:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]);
                break;
            case NpyKind.Int32:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]);
                break;
            case NpyKind.UInt32:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * i)..]);
                break;
            case NpyKind.Int64:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]);
                break;
            case NpyKind.UInt64:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadUInt64LittleEndian(src[(8 * i)..]);
                break;
            default:
                throw new InvalidOperationException($"no numeric conversion for {kind}");
        }
    }
}
