using System.Buffers.Binary;
using System.IO.Compression;

namespace CamEngine.Imaging;

/// <summary>
/// Structural checks that run before StbImageSharp decodes a file, for what the decoder accepts silently:
/// <list type="bullet">
/// <item>PNG: the image data (the IDAT chunks, a zlib stream) must not inflate past what the IHDR dimensions need.
/// stb_image grows its output buffer as long as the stream goes on, so a 4 MB 1x1 PNG inflating to 4 GiB took
/// gigabytes before it was refused; here inflating stops one byte past the expected size.</item>
/// <item>JPEG: the segments are walked from the start-of-image marker; a file that ends before the end-of-image
/// marker (inside a segment or inside a scan's entropy-coded data) is truncated. stb_image pads a scan that runs
/// out with zeros and returns a picture.</item>
/// </list>
/// </summary>
internal static class ImageStructure
{
    /// <summary>Checks that the PNG's image data inflates to at most the size its header implies.</summary>
    /// <exception cref="InvalidInputException">The image data inflates past that size, or the chunk layout is
    /// broken before the image data ends.</exception>
    public static void CheckPng(byte[] data, string name)
    {
        int pos = 8;
        long expected = -1;
        var idat = new List<(int Offset, int Length)>();
        while (pos + 8 <= data.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            var type = data.AsSpan(pos + 4, 4);
            if (length > int.MaxValue || pos + 12L + length > data.Length)
                break; // a chunk running past the end: the decoder reports it
            int body = pos + 8;
            if (type.SequenceEqual("IHDR"u8) && length >= 13)
                expected = RawBytes(data.AsSpan(body, 13));
            else if (type.SequenceEqual("IDAT"u8))
                idat.Add((body, (int)length));
            else if (type.SequenceEqual("IEND"u8))
                break;
            pos = body + (int)length + 4;
        }
        if (expected < 0 || idat.Count == 0)
            return; // no usable header or no data: the decoder refuses the file with its own message
        long produced = Inflate(data, idat, expected + 1);
        if (produced > expected)
            throw new InvalidInputException(
                $"corrupt image: {name}: PNG image data inflates to more than the {expected} bytes its header needs");
    }

    /// <summary>Filtered bytes a PNG needs, from its IHDR fields: each row is a filter byte plus the packed pixels;
    /// an Adam7-interlaced image is seven such sub-images. -1 when a field is out of range (the decoder refuses it).</summary>
    private static long RawBytes(ReadOnlySpan<byte> ihdr)
    {
        long w = BinaryPrimitives.ReadUInt32BigEndian(ihdr);
        long h = BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
        int depth = ihdr[8], colour = ihdr[9], interlace = ihdr[12];
        int channels = colour switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        if (channels == 0 || depth is not (1 or 2 or 4 or 8 or 16) || w == 0 || h == 0 || w > 1 << 24 || h > 1 << 24)
            return -1;
        long bits = (long)channels * depth;
        if (interlace == 0)
            return h * (1 + (w * bits + 7) / 8);
        // Adam7 passes: (x start, y start, x step, y step).
        ReadOnlySpan<int> passes = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
        long total = 0;
        for (int p = 0; p < 7; p++)
        {
            long pw = (w - passes[4 * p] + passes[4 * p + 2] - 1) / passes[4 * p + 2];
            long ph = (h - passes[4 * p + 1] + passes[4 * p + 3] - 1) / passes[4 * p + 3];
            if (pw > 0 && ph > 0)
                total += ph * (1 + (pw * bits + 7) / 8);
        }
        return total;
    }

    /// <summary>Inflates the concatenated IDAT data, stopping once <paramref name="limit"/> bytes have come out;
    /// returns how many came out. A corrupt stream ends the count (the decoder names the problem).</summary>
    private static long Inflate(byte[] data, List<(int Offset, int Length)> idat, long limit)
    {
        using var zlib = new ZLibStream(new ChunkStream(data, idat), CompressionMode.Decompress);
        var sink = new byte[1 << 16];
        long produced = 0;
        try
        {
            while (produced < limit)
            {
                int n = zlib.Read(sink, 0, (int)Math.Min(sink.Length, limit - produced));
                if (n == 0)
                    break;
                produced += n;
            }
        }
        catch (InvalidDataException)
        {
            // Corrupt deflate data: not this check's concern.
        }
        return produced;
    }

    /// <summary>Checks that the JPEG's segments and scans reach the end-of-image marker.</summary>
    /// <exception cref="InvalidInputException">The file ends before the end-of-image marker, or bytes that should be
    /// a marker are not one.</exception>
    public static void CheckJpeg(byte[] data, string name)
    {
        int pos = 2; // after SOI (FF D8), which the sniffer checked
        while (true)
        {
            if (pos >= data.Length)
                throw Truncated(name, "the file ends between segments");
            if (data[pos] != 0xFF)
                throw new InvalidInputException(
                    $"corrupt image: {name}: JPEG byte 0x{data[pos]:X2} at offset {pos} where a marker should start");
            while (pos < data.Length && data[pos] == 0xFF)
                pos++; // fill bytes before a marker
            if (pos >= data.Length)
                throw Truncated(name, "the file ends between segments");
            byte marker = data[pos++];
            if (marker == 0xD9)
                return; // EOI
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7))
                continue; // TEM and RSTn carry no length
            if (marker is 0x00 or 0xD8)
                throw new InvalidInputException($"corrupt image: {name}: unexpected JPEG marker FF{marker:X2} at offset {pos - 2}");
            if (pos + 2 > data.Length)
                throw Truncated(name, $"the segment at offset {pos - 2} is cut off");
            int length = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos));
            if (length < 2)
                throw new InvalidInputException($"corrupt image: {name}: JPEG segment FF{marker:X2} at offset {pos - 2} has length {length}");
            if (pos + (long)length > data.Length)
                throw Truncated(name, $"the segment FF{marker:X2} at offset {pos - 2} runs past the end of the file");
            pos += length;
            if (marker == 0xDA)
                pos = SkipEntropyData(data, pos, name);
        }
    }

    /// <summary>The offset of the marker that ends the entropy-coded data starting at <paramref name="pos"/>: inside
    /// it FF is followed by 00 (a stuffed byte) or D0-D7 (a restart marker); any other FFxx ends the scan.</summary>
    private static int SkipEntropyData(byte[] data, int pos, string name)
    {
        while (true)
        {
            int ff = Array.IndexOf(data, (byte)0xFF, pos);
            if (ff < 0 || ff + 1 >= data.Length)
                throw Truncated(name, "a scan's data runs to the end of the file");
            byte next = data[ff + 1];
            if (next == 0x00 || next is >= 0xD0 and <= 0xD7)
                pos = ff + 2;
            else if (next == 0xFF)
                pos = ff + 1; // fill byte before a marker
            else
                return ff;
        }
    }

    private static InvalidInputException Truncated(string name, string why) =>
        new($"truncated image: {name}: the JPEG ends before its end-of-image marker: {why}");

    /// <summary>The IDAT chunks' data as one forward-only stream.</summary>
    private sealed class ChunkStream(byte[] data, List<(int Offset, int Length)> chunks) : Stream
    {
        private int _chunk;
        private int _at;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            while (_chunk < chunks.Count && _at == chunks[_chunk].Length)
            {
                _chunk++;
                _at = 0;
            }
            if (_chunk == chunks.Count || buffer.IsEmpty)
                return 0;
            var (offset, length) = chunks[_chunk];
            int n = Math.Min(buffer.Length, length - _at);
            data.AsSpan(offset + _at, n).CopyTo(buffer);
            _at += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
