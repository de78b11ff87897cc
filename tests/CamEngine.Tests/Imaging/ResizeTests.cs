using CamEngine.Imaging;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class ResizeTests
{
    [Test]
    public void Upsample2x_HalfPixel_MatchesPyTorchDocs()
    {
        var m = new HostTensor([2, 2], [1, 2, 3, 4]);
        var r = Resize.Bilinear(m, 4, 4);
        Assert.That(r.Shape, Is.EqualTo(new[] { 4, 4 }));
        Assert.That(r.Data[..4], Is.EqualTo(new[] { 1f, 1.25f, 1.75f, 2f }).Within(1e-6f));
        Assert.That(r.Data[4..8], Is.EqualTo(new[] { 1.5f, 1.75f, 2.25f, 2.5f }).Within(1e-6f));
        Assert.That(r.Data[12..], Is.EqualTo(new[] { 3f, 3.25f, 3.75f, 4f }).Within(1e-6f));
    }

    [Test]
    public void Upsample2x_AlignCorners_MatchesPyTorchDocs()
    {
        var m = new HostTensor([2, 2], [1, 2, 3, 4]);
        var r = Resize.Bilinear(m, 4, 4, alignCorners: true);
        Assert.That(r.Data[..4], Is.EqualTo(new[] { 1f, 4f / 3, 5f / 3, 2f }).Within(1e-6f));
        Assert.That(r.Data[4..8], Is.EqualTo(new[] { 1f + 2f / 3, 2f, 7f / 3, 2f + 2f / 3 }).Within(1e-6f));
        Assert.That(r.Data[12..], Is.EqualTo(new[] { 3f, 10f / 3, 11f / 3, 4f }).Within(1e-6f));
    }

    [Test]
    public void MultiChannel_ResizesEachPlane()
    {
        var m = new HostTensor([2, 1, 2], [0, 1, 10, 30]);
        var r = Resize.Bilinear(m, 1, 4);
        Assert.That(r.Shape, Is.EqualTo(new[] { 2, 1, 4 }));
        Assert.That(r.Data, Is.EqualTo(new[] { 0f, 0.25f, 0.75f, 1f, 10f, 15f, 25f, 30f }).Within(1e-6f));
    }

    [Test]
    public void Downsample_HalfPixel_SamplesBetweenPixels()
    {
        // 4 -> 2: src = (o + 0.5) * 2 - 0.5 = 0.5, 2.5: means of neighbours, no antialiasing.
        var r = Resize.Bilinear(new HostTensor([1, 4], [0, 10, 20, 40]), 1, 2);
        Assert.That(r.Data, Is.EqualTo(new[] { 5f, 30f }).Within(1e-6f));
        var a = Resize.Bilinear(new HostTensor([1, 4], [0, 10, 20, 40]), 1, 2, alignCorners: true);
        Assert.That(a.Data, Is.EqualTo(new[] { 0f, 40f }).Within(1e-6f));
    }

    [Test]
    public void ConstantMap_StaysConstant([Values(false, true)] bool alignCorners)
    {
        var m = new HostTensor([3, 5], Enumerable.Repeat(0.7f, 15).ToArray());
        foreach (var (h, w) in new[] { (1, 1), (2, 9), (32, 32), (3, 5) })
            Assert.That(Resize.Bilinear(m, h, w, alignCorners).Data, Is.All.EqualTo(0.7f).Within(1e-6f));
    }

    [Test]
    public void ImageBilinear_FourToTwo_MatchesHandComputedPilWeights()
    {
        // Shrink by 2: support 2, centres 1 and 3; taps (0.75, 0.75, 0.25) / 1.75 = (3/7, 3/7, 1/7) on pixels 0-2,
        // and (1/7, 3/7, 3/7) on pixels 1-3. 500/7 = 71.4 -> 71; 1465/7 = 209.3 -> 209 (Pillow 9.4 agrees).
        var img = new RgbImage(4, 1, [0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
        var r = Resize.ImageBilinear(img, 2, 1);
        Assert.That(r.Data, Is.EqualTo(new byte[] { 71, 71, 71, 209, 209, 209 }));
        var img2 = new RgbImage(4, 1, [10, 0, 0, 20, 0, 0, 40, 0, 0, 80, 0, 0]);
        Assert.That(Resize.ImageBilinear(img2, 2, 1).Data, Is.EqualTo(new byte[] { 19, 0, 0, 54, 0, 0 }));
    }

    [Test]
    public void ImageBilinear_ConstantImage_StaysConstant()
    {
        var img = new RgbImage(17, 11, Enumerable.Repeat((byte)137, 17 * 11 * 3).ToArray());
        foreach (var (w, h) in new[] { (3, 2), (40, 30), (17, 5), (1, 1) })
            Assert.That(Resize.ImageBilinear(img, w, h).Data, Is.All.EqualTo((byte)137));
    }

    internal static RgbImage Pattern(int w, int h)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                for (int c = 0; c < 3; c++)
                    img.Data[(y * w + x) * 3 + c] = (byte)((x * 37 + y * 91 + c * 53 + x * y * 13) % 256);
            }
        }
        return img;
    }

    // Expected bytes from Pillow 9.4: Image.fromarray(Pattern(7, 5)).resize(size, Image.BILINEAR).
    private static readonly object[] PilCases =
    [
        new object[] { 3, 2, new byte[] { 110, 138, 145, 141, 138, 146, 141, 136, 142, 122, 150, 122, 145, 123, 131, 137, 110, 151 } },
        new object[] { 4, 9, new byte[] { 19, 72, 125, 77, 130, 183, 145, 198, 200, 203, 122, 65, 52, 105, 154, 116, 145, 154, 131, 160, 179, 172, 135, 115, 106, 159, 201, 182, 171, 106, 108, 97, 144, 119, 158, 198, 155, 159, 146, 156, 147, 126, 134, 124, 118, 121, 126, 173, 203, 146, 65, 108, 110, 163, 173, 175, 95, 137, 80, 121, 122, 126, 113, 145, 136, 115, 150, 140, 134, 159, 89, 137, 66, 119, 150, 165, 154, 83, 133, 107, 160, 168, 100, 153, 114, 167, 143, 117, 146, 121, 144, 84, 137, 123, 123, 176, 142, 195, 139, 88, 141, 143, 150, 70, 123, 96, 136, 189 } },
        new object[] { 11, 3, new byte[] { 39, 92, 145, 59, 112, 165, 85, 138, 181, 112, 165, 139, 139, 152, 136, 167, 110, 163, 124, 137, 190, 111, 164, 177, 138, 191, 111, 165, 139, 125, 185, 91, 144, 125, 178, 89, 154, 142, 118, 181, 105, 147, 131, 145, 115, 132, 144, 124, 172, 111, 164, 139, 151, 114, 138, 152, 102, 178, 102, 142, 141, 98, 151, 105, 101, 154, 69, 122, 175, 107, 160, 147, 147, 200, 110, 107, 160, 93, 120, 133, 116, 173, 116, 169, 156, 76, 129, 129, 76, 129, 89, 129, 182, 129, 123, 176, 167, 111, 164 } },
    ];

    [TestCaseSource(nameof(PilCases))]
    public void ImageBilinear_MatchesPillowBitForBit(int w, int h, byte[] expected)
    {
        var r = Resize.ImageBilinear(Pattern(7, 5), w, h);
        Assert.That(r.Width, Is.EqualTo(w));
        Assert.That(r.Height, Is.EqualTo(h));
        Assert.That(r.Data, Is.EqualTo(expected));
    }
}
