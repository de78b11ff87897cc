using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

/// <summary>
/// The photos bundled in models/images are the skimage originals the fixture inputs were made from (PIL
/// bilinear resize of the shorter side to 36, centre crop 32, ImageNet normalization): decoding and
/// preprocessing them here must reproduce those inputs.
/// </summary>
[TestFixture]
public sealed class BundledImageTests
{
    private static string Bundled(string file) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", file);

    [Test]
    public void Chelsea_png_preprocesses_to_the_fixture_input()
    {
        var input = ImagePreprocessor.ToInput(ImageDecoder.Load(Bundled("chelsea.png")), Preprocessing.ImageNet(32, 32));
        var expected = Npy.Read(FixturePaths.Input("chelsea"));
        Assert.That(input.Shape, Is.EqualTo(expected.Shape));
        // Lossless PNG and a PIL-exact resize: equal up to float rounding of (v / 255 - mean) / std.
        TensorAssert.Close(input.Data, expected.Data, 1e-5, 1e-5, "chelsea input");
    }

    [Test]
    public void Rocket_jpeg_decodes_like_libjpeg()
    {
        // The fixture's rocket input was not made from this file (Pillow's own pipeline on it differs from
        // the fixture by up to 1.37), so compare the decode with Pillow 9.4 (libjpeg) on this file instead:
        // channel means and two pixels, measured offline. JPEG decoders may differ by a few grey levels.
        var img = ImageDecoder.Load(Bundled("rocket.jpg"));
        Assert.That((img.Width, img.Height), Is.EqualTo((640, 427)));
        double[] pilMeans = [52.265742, 61.294299, 82.271136];
        for (int c = 0; c < 3; c++)
        {
            double sum = 0;
            for (int i = c; i < img.Data.Length; i += 3)
                sum += img.Data[i];
            Assert.That(sum / (img.Width * img.Height), Is.EqualTo(pilMeans[c]).Within(0.5), $"mean of channel {c}");
        }
        var (r, g, b) = img[300, 200];
        Assert.That(new[] { (int)r, g, b }, Is.EqualTo(new[] { 52, 68, 104 }).Within(4));
        (r, g, b) = img[600, 50];
        Assert.That(new[] { (int)r, g, b }, Is.EqualTo(new[] { 4, 21, 37 }).Within(4));
    }
}
