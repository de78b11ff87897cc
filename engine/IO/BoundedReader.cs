using System.Text;

namespace CamEngine.IO;

/// <summary>
/// Reads files, devices and pipes with a limit on the bytes actually read: the file's stated length is only a
/// hint for the first buffer, so <c>/dev/zero</c>, a FIFO fed by <c>yes</c> or a file whose length reads as 0
/// are refused once <c>maxBytes + 1</c> bytes have arrived, never read to the end of memory. Every model,
/// ONNX, image, <c>.npy</c> and text-list file the engine reads goes through here; the command line uses it
/// for <c>--labels</c> and list files.
/// </summary>
public static class BoundedReader
{
    /// <summary>Default limit of a text file of names (labels, a list of images): 16 MiB.</summary>
    public const long DefaultTextBytes = 16L << 20;

    private const int FirstBuffer = 1 << 16;

    /// <summary>Opens <paramref name="path"/> for reading through a stream that throws
    /// <see cref="InvalidInputException"/> as soon as more than <paramref name="maxBytes"/> bytes have been read.</summary>
    /// <exception cref="InvalidInputException">The file is missing or cannot be opened.</exception>
    public static Stream OpenRead(string path, long maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        try
        {
            var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            return new LimitedReadStream(fs, maxBytes, path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidInputException($"{path}: cannot read: no such file", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new InvalidInputException($"{path}: cannot open: {e.Message}", e);
        }
    }

    /// <summary>Reads the whole file at <paramref name="path"/>, at most <paramref name="maxBytes"/> bytes.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, or longer than
    /// <paramref name="maxBytes"/> (reading stops at the limit).</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes)
    {
        using var stream = OpenRead(path, maxBytes);
        return ReadAllBytes(stream, maxBytes, path);
    }

    /// <summary>Reads <paramref name="stream"/> to its end, at most <paramref name="maxBytes"/> bytes;
    /// <paramref name="name"/> names the source in error messages.</summary>
    /// <exception cref="InvalidInputException">The stream holds more than <paramref name="maxBytes"/> bytes, or
    /// reading it fails.</exception>
    public static byte[] ReadAllBytes(Stream stream, long maxBytes, string name = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        maxBytes = Math.Min(maxBytes, Array.MaxLength - 1);
        var buffer = new byte[FirstSize(stream, maxBytes)];
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                    buffer = Grow(buffer, maxBytes, name);
                int read = stream.Read(buffer, length, buffer.Length - length);
                if (read == 0)
                    break;
                length += read;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new InvalidInputException($"{name}: cannot read: {e.Message}", e);
        }
        if (length != buffer.Length)
            Array.Resize(ref buffer, length);
        return buffer;
    }

    /// <summary>The asynchronous form of <see cref="ReadAllBytes(string, long)"/>: the same limit, counted the same way.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, or longer than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<byte[]> ReadAllBytesAsync(string path, long maxBytes, CancellationToken cancellationToken = default)
    {
        var stream = OpenRead(path, maxBytes);
        await using (stream.ConfigureAwait(false))
            return await ReadAllBytesAsync(stream, maxBytes, path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The asynchronous form of <see cref="ReadAllBytes(Stream, long, string)"/>.</summary>
    /// <exception cref="InvalidInputException">The stream holds more than <paramref name="maxBytes"/> bytes, or
    /// reading it fails.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<byte[]> ReadAllBytesAsync(
        Stream stream, long maxBytes, string name = "stream", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        maxBytes = Math.Min(maxBytes, Array.MaxLength - 1);
        var buffer = new byte[FirstSize(stream, maxBytes)];
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                    buffer = Grow(buffer, maxBytes, name);
                int read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    break;
                length += read;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new InvalidInputException($"{name}: cannot read: {e.Message}", e);
        }
        if (length != buffer.Length)
            Array.Resize(ref buffer, length);
        return buffer;
    }

    /// <summary><paramref name="stream"/> behind a stream that throws <see cref="InvalidInputException"/> once more
    /// than <paramref name="maxBytes"/> bytes have been read through it; disposing it disposes
    /// <paramref name="stream"/>.</summary>
    internal static Stream Limit(Stream stream, long maxBytes, string name) => new LimitedReadStream(stream, maxBytes, name);

    /// <summary>
    /// Reads a UTF-8 text file of at most <paramref name="maxBytes"/> bytes as lines, as
    /// <see cref="File.ReadAllLines(string)"/> splits them (<c>\n</c>, <c>\r\n</c> or <c>\r</c>; no empty last line
    /// for a final line break); a leading byte-order mark is dropped.
    /// </summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, longer than the limit, or not
    /// UTF-8 text.</exception>
    public static string[] ReadAllLines(string path, long maxBytes = DefaultTextBytes)
    {
        var lines = new List<string>();
        using var reader = new StringReader(ReadAllText(path, maxBytes));
        while (reader.ReadLine() is { } line)
            lines.Add(line);
        return [.. lines];
    }

    /// <summary>Reads a UTF-8 text file of at most <paramref name="maxBytes"/> bytes; a leading byte-order mark is
    /// dropped.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, longer than the limit, or not
    /// UTF-8 text.</exception>
    public static string ReadAllText(string path, long maxBytes = DefaultTextBytes)
    {
        var bytes = ReadAllBytes(path, maxBytes);
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidInputException($"{path}: not UTF-8 text (invalid byte at offset {e.Index})", e);
        }
        return text.Length > 0 && text[0] == '\uFEFF' ? text[1..] : text;
    }

    private static int FirstSize(Stream stream, long maxBytes)
    {
        long hint = 0;
        try
        {
            if (stream.CanSeek)
                hint = stream.Length - stream.Position;
        }
        catch (Exception e) when (e is NotSupportedException or IOException)
        {
            hint = 0; // devices and pipes: no length to trust
        }
        // One byte more than the expected length, so the end is seen without growing; never past the limit + 1.
        return (int)(Math.Min(Math.Max(hint, FirstBuffer - 1), maxBytes) + 1);
    }

    /// <summary>A full buffer: holding maxBytes + 1 bytes means the source is too long; otherwise it doubles, up to
    /// maxBytes + 1 (that one byte past the limit is enough to know).</summary>
    private static byte[] Grow(byte[] buffer, long maxBytes, string name)
    {
        if (buffer.Length > maxBytes)
            throw TooLarge(name, maxBytes);
        Array.Resize(ref buffer, (int)Math.Min(Math.Max(2L * buffer.Length, FirstBuffer), maxBytes + 1));
        return buffer;
    }

    private static InvalidInputException TooLarge(string name, long maxBytes) =>
        new($"{name}: more than {maxBytes} bytes, the limit for this file (reading stopped there)");

    /// <summary>A read-only stream that refuses to deliver more than a limit of bytes in total.</summary>
    private sealed class LimitedReadStream(Stream inner, long limit, string name) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        // Forward only, with no length: readers count what arrives instead of trusting a stated size.
        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException("a bounded read stream has no length");

        public override long Position
        {
            get => throw new NotSupportedException("a bounded read stream reads forward only");
            set => throw new NotSupportedException("a bounded read stream reads forward only");
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            ValidateBufferArguments(buffer, offset, count);
            return Read(buffer.AsSpan(offset, count));
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty)
                return 0;
            // Ask for at most one byte past the limit: that byte proves the source is too long.
            long allowed = limit - _read + 1;
            int n = inner.Read(allowed < buffer.Length ? buffer[..(int)allowed] : buffer);
            _read += n;
            if (_read > limit)
                throw TooLarge(name, limit);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty)
                return 0;
            long allowed = limit - _read + 1;
            int n = await inner.ReadAsync(allowed < buffer.Length ? buffer[..(int)allowed] : buffer, cancellationToken)
                .ConfigureAwait(false);
            _read += n;
            if (_read > limit)
                throw TooLarge(name, limit);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) =>
            throw new NotSupportedException("a bounded read stream reads forward only");

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
