using System.Buffers.Binary;
using System.IO.Compression;

namespace CamEngine.IO;

/// <summary>An IDX array (the MNIST / Fashion-MNIST format): dimensions and unsigned-byte data.</summary>
internal sealed record IdxArray(int[] Dimensions, byte[] Data);

/// <summary>
/// Reads IDX files (LeCun's MNIST format), raw or gzip-compressed (by the 1F 8B magic). Untrusted input rules:
/// magic 00 00 08 n (unsigned bytes only, 1 &lt;= n &lt;= 4 dimensions), every dimension positive, the element
/// count checked against <see cref="MaxElements"/> before allocating, and the data length exactly the product
/// of the dimensions. Errors are <see cref="InvalidInputException"/> naming the file and the problem.
/// </summary>
internal static class Idx
{
    /// <summary>Largest element count accepted (Fashion-MNIST's training images have 47 million).</summary>
    public const long MaxElements = 256L << 20;

    /// <summary>Reads an IDX file from <paramref name="path"/>.</summary>
    public static IdxArray Read(string path)
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
            return Read(fs, path);
    }

    /// <summary>Reads an IDX array from <paramref name="stream"/> (gzip-compressed or raw).</summary>
    public static IdxArray Read(Stream stream, string name = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            var head = new byte[2];
            int got = ReadFully(stream, head);
            Stream body = got == 2 && head[0] == 0x1F && head[1] == 0x8B
                ? new GZipStream(new PrefixedStream(head, stream), CompressionMode.Decompress)
                : new PrefixedStream(head.AsSpan(0, got).ToArray(), stream);
            using (body)
                return Parse(body, name);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidInputException($"{name}: corrupt gzip data: {e.Message}", e);
        }
    }

    private static IdxArray Parse(Stream s, string name)
    {
        var magic = new byte[4];
        if (ReadFully(s, magic) != 4)
            throw new InvalidInputException($"{name}: truncated IDX header");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidInputException($"{name}: not an IDX file (bad magic)");
        if (magic[2] != 0x08)
            throw new InvalidInputException($"{name}: IDX element type 0x{magic[2]:X2} is not supported (only unsigned bytes, 0x08)");
        int rank = magic[3];
        if (rank < 1 || rank > 4)
            throw new InvalidInputException($"{name}: IDX rank {rank} is not supported (1 to 4)");
        var dimBytes = new byte[4 * rank];
        if (ReadFully(s, dimBytes) != dimBytes.Length)
            throw new InvalidInputException($"{name}: truncated IDX dimensions");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(dimBytes.AsSpan(4 * i));
            if (d == 0 || d > int.MaxValue)
                throw new InvalidInputException($"{name}: IDX dimension {i} is {d}");
            dims[i] = (int)d;
            count *= d;
            if (count > MaxElements)
                throw new InvalidInputException($"{name}: IDX array of more than {MaxElements} elements refused");
        }
        var data = new byte[count];
        int n = ReadFully(s, data);
        if (n != data.Length)
            throw new InvalidInputException($"{name}: IDX data truncated: {n} of {data.Length} bytes");
        if (s.ReadByte() != -1)
            throw new InvalidInputException($"{name}: IDX file has bytes after the {data.Length} data bytes");
        return new IdxArray(dims, data);
    }

    private static int ReadFully(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    /// <summary>A read-only stream that first returns some already-read bytes, then the rest of another stream.</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream rest) : Stream
    {
        private int _at;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_at < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _at);
                prefix.AsSpan(_at, n).CopyTo(buffer);
                _at += n;
                return n;
            }
            return rest.Read(buffer);
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
