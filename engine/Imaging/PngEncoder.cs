using System.Buffers.Binary;
using System.IO.Compression;

namespace CamEngine.Imaging;

/// <summary>
/// A minimal PNG writer (8-bit RGB, no interlacing), written from the PNG specification: every row uses the Sub
/// filter (each byte minus the byte three to its left), which suits smooth heatmaps and photographs, and the
/// image data is deflated by the runtime's zlib at its fastest level. Writing the overlays of a run took a fifth of
/// a whole <c>cam explain</c> process with the general-purpose encoder; this one is several times faster, with
/// files somewhat larger.
/// </summary>
internal static class PngEncoder
{
    private static readonly uint[] s_crcTable = CrcTable();

    /// <summary>The PNG file of an RGB image (row-major, 3 bytes per pixel).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> rgb, int width, int height)
    {
        if (width < 1 || height < 1 || rgb.Length != checked(width * height * 3))
            throw new ArgumentException($"png: {rgb.Length} bytes for a {width}x{height} RGB image");
        int stride = width * 3;
        var filtered = new byte[(stride + 1) * height];
        for (int y = 0; y < height; y++)
        {
            var src = rgb.Slice(y * stride, stride);
            var dst = filtered.AsSpan(y * (stride + 1), stride + 1);
            dst[0] = 1; // Sub
            src[..3].CopyTo(dst.Slice(1, 3));
            for (int i = 3; i < stride; i++)
                dst[1 + i] = (byte)(src[i] - src[i - 3]);
        }
        using var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Fastest, leaveOpen: true))
            z.Write(filtered);

        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: RGB
        ihdr[10] = 0; // deflate
        ihdr[11] = 0; // adaptive filtering
        ihdr[12] = 0; // no interlace
        Chunk(png, "IHDR"u8, ihdr);
        Chunk(png, "IDAT"u8, idat.GetBuffer().AsSpan(0, (int)idat.Length));
        Chunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        s.Write(type);
        s.Write(data);
        uint crc = Crc(Crc(0xFFFFFFFFu, type), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        s.Write(word);
    }

    private static uint Crc(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
            crc = s_crcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The CRC-32 table of the PNG specification (polynomial 0xEDB88320, reflected).</summary>
    private static uint[] CrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
