using System.Buffers.Binary;
using CamEngine.Imaging;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class ImageDecoderTests
{
    private static RgbImage Pattern(int w, int h)
    {
        var img = new RgbImage(w, h);
        for (int i = 0; i < img.Data.Length; i++)
            img.Data[i] = (byte)(i * 7 + i / 3);
        return img;
    }

    [Test]
    public void Png_WrittenByStbImageWrite_DecodesIdentically()
    {
        var img = Pattern(13, 6);
        var back = ImageDecoder.Decode(Overlay.EncodePng(img), "pattern.png");
        Assert.That(back.Width, Is.EqualTo(13));
        Assert.That(back.Height, Is.EqualTo(6));
        Assert.That(back.Data, Is.EqualTo(img.Data));
    }

    [Test]
    public void Png_FromPathAndStream()
    {
        string path = Path.Combine(Path.GetTempPath(), "camengine-dec-" + Guid.NewGuid().ToString("N") + ".png");
        try
        {
            var img = Pattern(5, 4);
            Overlay.WritePng(img, path);
            Assert.That(ImageDecoder.Load(path).Data, Is.EqualTo(img.Data));
            using var fs = File.OpenRead(path);
            Assert.That(ImageDecoder.Decode(fs, path).Data, Is.EqualTo(img.Data));
            Assert.That(ImageDecoder.LoadAsync(path).GetAwaiter().GetResult().Data, Is.EqualTo(img.Data));
            Assert.That(async () => await ImageDecoder.LoadAsync(path + ".missing"),
                Throws.InstanceOf<InvalidInputException>().With.Message.Contains(".missing: cannot read"));
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            Assert.That(async () => await ImageDecoder.LoadAsync(path, cancellationToken: cts.Token),
                Throws.InstanceOf<OperationCanceledException>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TruncatedJpeg_EndsWithInvalidInput_InsteadOfHanging()
    {
        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00];
        var task = Task.Run(() => ImageDecoder.Decode(jpeg, "trunc.jpg"));
        bool finished = Task.WaitAny([task], TimeSpan.FromSeconds(5)) == 0;
        if (!finished)
            Assert.Fail("decoding the 11-byte truncated JPEG did not finish within 2 s");
        Assert.That(task.Exception?.InnerException,
            Is.TypeOf<InvalidInputException>().With.Message.Contains("trunc.jpg"));
    }

    private static byte[] BmpHeader(int width, int height)
    {
        // BITMAPFILEHEADER (14 bytes) + BITMAPINFOHEADER (40 bytes), 24 bpp, uncompressed, no pixel data.
        var b = new byte[54 + 16];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), b.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        return b;
    }

    [Test]
    public void Bmp_WithHugeSide_IsRefusedBeforeDecoding()
    {
        Assert.That(() => ImageDecoder.Decode(BmpHeader(11_337_792, 64), "huge.bmp"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("huge.bmp").And.Message.Contains("side over 16384"));
    }

    [Test]
    public void Bmp_OverPixelBudget_IsRefusedBeforeDecoding()
    {
        Assert.That(() => ImageDecoder.Decode(BmpHeader(16000, 16000), "big.bmp"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("budget of 50000000"));
        Assert.That(() => ImageDecoder.Decode(BmpHeader(100, 100), "small.bmp", maxPixels: 9999),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("budget of 9999"));
    }

    [Test]
    public void Bmp_TruncatedPixels_IsInvalidInput()
    {
        Assert.That(() => ImageDecoder.Decode(BmpHeader(100, 100), "short.bmp"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("short.bmp").And.Message.Contains("truncated"));
    }

    [TestCase(new byte[] { 0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0 })] // GIF89a
    [TestCase(new byte[] { 0x00, 0x00, 0x00, 0x00 })]
    [TestCase(new byte[0])]
    public void UnknownMagic_IsRefused(byte[] data)
    {
        Assert.That(() => ImageDecoder.Decode(data, "x.gif"),
            Throws.TypeOf<InvalidInputException>().With.Message.EqualTo("not a PNG, JPEG or BMP image: x.gif"));
    }

    [Test]
    public void Sniff_RecognisesMagic()
    {
        Assert.That(ImageDecoder.Sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0]), Is.EqualTo(ImageFormat.Png));
        Assert.That(ImageDecoder.Sniff([0xFF, 0xD8, 0xFF, 0xDB]), Is.EqualTo(ImageFormat.Jpeg));
        Assert.That(ImageDecoder.Sniff("BM"u8), Is.EqualTo(ImageFormat.Bmp));
        Assert.That(ImageDecoder.Sniff([0x89, 0x50, 0x4E]), Is.EqualTo(ImageFormat.Unknown));
    }

    [Test]
    public void MissingFile_IsInvalidInput()
    {
        Assert.That(() => ImageDecoder.Load("/nonexistent/camengine/x.png"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("x.png"));
    }
}
