using System.Buffers.Binary;
using System.IO.Compression;
using CamEngine.Imaging;
using NUnit.Framework;
using StbImageWriteSharp;

namespace CamEngine.Tests.Imaging;

/// <summary>Issue 18's decoding cases: a PNG whose image data inflates far past its size, truncated JPEGs, top-down
/// BMPs, and decoder errors that must reach the user as one printable line.</summary>
public sealed class HostileImageTests
{
    private static byte[] Rgb(int w, int h)
    {
        var rgb = new byte[w * h * 3];
        for (int i = 0; i < rgb.Length; i++)
            rgb[i] = (byte)(i * 37 % 251);
        return rgb;
    }

    private static byte[] Encode(string format, int w = 48, int h = 40)
    {
        using var ms = new MemoryStream();
        var writer = new ImageWriter();
        if (format == "jpeg")
            writer.WriteJpg(Rgb(w, h), w, h, ColorComponents.RedGreenBlue, ms, 90);
        else
            writer.WriteBmp(Rgb(w, h), w, h, ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    private static byte[] Chunk(string type, byte[] body)
    {
        var c = new byte[12 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(c, body.Length);
        System.Text.Encoding.ASCII.GetBytes(type, c.AsSpan(4));
        body.CopyTo(c, 8);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + body.Length), Crc32(c.AsSpan(4, 4 + body.Length)));
        return c;
    }

    /// <summary>The CRC-32 PNG chunks carry (ISO 3309, reflected polynomial 0xEDB88320).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A 1x1 RGB PNG whose IDAT holds <paramref name="inflated"/> zero bytes, deflated.</summary>
    private static byte[] InflationBomb(long inflated)
    {
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var zeros = new byte[1 << 20];
            for (long done = 0; done < inflated; done += zeros.Length)
                zs.Write(zeros, 0, (int)Math.Min(zeros.Length, inflated - done));
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, 1);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), 1);
        ihdr[8] = 8;
        ihdr[9] = 2;
        byte[] sig = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        return [.. sig, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])];
    }

    [Test]
    public void A_1x1_png_inflating_to_256_MiB_is_refused_before_inflating_it()
    {
        var bomb = InflationBomb(256L << 20);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<InvalidInputException>(() => ImageDecoder.Decode(bomb, "bomb.png"))!;
        Assert.That(e.Message, Does.Contain("inflates to more than the 4 bytes its header needs"));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), "refused after a few bytes of output, not 256 MiB");
    }

    [Test]
    public void A_plain_png_at_its_exact_size_still_decodes()
    {
        var img = new RgbImage(13, 7);
        for (int i = 0; i < img.Data.Length; i++)
            img.Data[i] = (byte)(i * 11);
        Assert.That(ImageDecoder.Decode(Overlay.EncodePng(img), "ok.png").Data, Is.EqualTo(img.Data));
    }

    /// <summary>An 8-bit RGB PNG of <paramref name="img"/>, Adam7-interlaced: seven sub-images, each row with filter
    /// byte 0, one zlib stream; <paramref name="extra"/> zero bytes appended to the filtered data.</summary>
    private static byte[] InterlacedPng(RgbImage img, int extra = 0)
    {
        int[] x0 = [0, 4, 0, 2, 0, 1, 0], y0 = [0, 0, 4, 0, 2, 0, 1], dx = [8, 8, 4, 4, 2, 2, 1], dy = [8, 8, 8, 4, 4, 2, 2];
        var raw = new List<byte>();
        for (int p = 0; p < 7; p++)
        {
            for (int y = y0[p]; y < img.Height; y += dy[p])
            {
                if (x0[p] >= img.Width)
                    break;
                raw.Add(0);
                for (int x = x0[p]; x < img.Width; x += dx[p])
                    raw.AddRange(img.Data.AsSpan(3 * (y * img.Width + x), 3).ToArray());
            }
        }
        raw.AddRange(new byte[extra]);
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
            zs.Write(raw.ToArray());
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, img.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), img.Height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        ihdr[12] = 1;
        byte[] sig = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        return [.. sig, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])];
    }

    [TestCase(13, 7)]
    [TestCase(1, 1)]
    [TestCase(3, 10)]
    [TestCase(16, 16)]
    public void An_interlaced_png_at_its_exact_size_decodes_and_one_byte_more_is_refused(int w, int h)
    {
        var img = new RgbImage(w, h);
        for (int i = 0; i < img.Data.Length; i++)
            img.Data[i] = (byte)(i * 29 + 3);
        Assert.That(ImageDecoder.Decode(InterlacedPng(img), "adam7.png").Data, Is.EqualTo(img.Data));
        Assert.That(() => ImageDecoder.Decode(InterlacedPng(img, extra: 1), "adam7+1.png"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("inflates to more than"));
    }

    [TestCase(600)]
    [TestCase(-2)]
    [TestCase(-1)]
    public void A_truncated_jpeg_is_refused(int cut)
    {
        var jpeg = Encode("jpeg", 96, 80);
        Assert.That(ImageDecoder.Decode(jpeg, "whole.jpg").Width, Is.EqualTo(96));
        int length = cut > 0 ? cut : cut == -2 ? jpeg.Length / 2 : jpeg.Length - 2;
        var e = Assert.Throws<InvalidInputException>(() => ImageDecoder.Decode(jpeg[..length], "cut.jpg"))!;
        Assert.That(e.Message, Does.StartWith("truncated image: cut.jpg: the JPEG ends before its end-of-image marker: "));
    }

    [Test]
    public void A_jpeg_with_bytes_after_its_end_marker_decodes()
    {
        var jpeg = Encode("jpeg");
        byte[] padded = [.. jpeg, 0, 0, 0x12, 0x34];
        Assert.That(ImageDecoder.Decode(padded, "padded.jpg").Data, Is.EqualTo(ImageDecoder.Decode(jpeg).Data));
    }

    [Test]
    public void A_top_down_bmp_reads_as_the_same_picture()
    {
        const int w = 7, h = 5;
        var bottomUp = Encode("bmp", w, h);
        int offset = BinaryPrimitives.ReadInt32LittleEndian(bottomUp.AsSpan(10));
        int bpp = BinaryPrimitives.ReadUInt16LittleEndian(bottomUp.AsSpan(28));
        int stride = (w * bpp + 31) / 32 * 4;
        var topDown = (byte[])bottomUp.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(topDown.AsSpan(22), -h);
        for (int y = 0; y < h; y++)
            bottomUp.AsSpan(offset + y * stride, stride).CopyTo(topDown.AsSpan(offset + (h - 1 - y) * stride));
        var expected = ImageDecoder.Decode(bottomUp, "bottom-up.bmp");
        var actual = ImageDecoder.Decode(topDown, "top-down.bmp");
        Assert.That((actual.Width, actual.Height), Is.EqualTo((w, h)));
        Assert.That(actual.Data, Is.EqualTo(expected.Data));
        Assert.That(() => ImageDecoder.Decode(topDown[..(topDown.Length - stride)], "short.bmp"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("truncated BMP"));
    }

    [Test]
    public void Every_decoder_error_is_one_printable_line()
    {
        // A corrupt PNG and a corrupt BMP: StbImageSharp's messages are C strings; none of it may reach the
        // user as control bytes.
        var png = InflationBomb(3);
        png[20] ^= 0x55;
        var bmp = Encode("bmp");
        bmp[28] = 7; // bits per pixel
        foreach (var (bytes, name) in new[] { (png, "bad\u001b[31m.png"), (bmp, "bad\n.bmp") })
        {
            var e = Assert.Throws<InvalidInputException>(() => ImageDecoder.Decode(bytes, name))!;
            Assert.That(e.Message.Any(PrintableText.NeedsEscape), Is.False, e.Message);
        }
    }

    [Test]
    public void Printable_text_escapes_controls_and_keeps_the_rest()
    {
        Assert.That(PrintableText.Escape("a\0b\nc\u001b[2Jd\u202Ee\u0085é"), Is.EqualTo("a\\0b\\nc\\x1B[2Jd\\u202Ee\\x85é"));
        Assert.That(new CamEngineException("x\0y\r\n").Message, Is.EqualTo("x\\0y\\r\\n"));
        const string plain = "plain text, with ünïcode";
        Assert.That(PrintableText.Escape(plain), Is.SameAs(plain));
    }
}
