namespace CamEngine.Imaging;

/// <summary>
/// A read-only view of a byte buffer whose <see cref="Seek"/> and <see cref="Position"/> clamp to [0, Length].
/// StbImageSharp skips segments with <c>Seek(n, Current)</c> and detects the end by <c>Position == Length</c>;
/// a <see cref="MemoryStream"/> seeks past the end, so a truncated JPEG (e.g. the 11 bytes
/// <c>FF D8 FF E0 00 10 4A 46 49 46 00</c>) makes it loop forever. Clamping makes the end reachable.
/// </summary>
internal sealed class ClampedReadOnlyStream(byte[] data) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => data.Length;

    public override long Position
    {
        get => _position;
        set => _position = Math.Clamp(value, 0, data.Length);
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Min(buffer.Length, data.Length - _position);
        data.AsSpan((int)_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override int ReadByte() => _position < data.Length ? data[_position++] : -1;

    public override long Seek(long offset, SeekOrigin origin)
    {
        long basePos = origin switch
        {
            SeekOrigin.Begin => 0,
            SeekOrigin.Current => _position,
            SeekOrigin.End => data.Length,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        // Saturate instead of overflowing on hostile skip lengths.
        long target = offset > 0 && basePos > long.MaxValue - offset ? long.MaxValue : basePos + offset;
        Position = target;
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
