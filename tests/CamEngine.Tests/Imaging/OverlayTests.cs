using CamEngine.Imaging;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class OverlayTests
{
    [Test]
    public void Blend_IsHandComputedMix()
    {
        var img = new RgbImage(2, 1, [100, 50, 200, 0, 0, 0]);
        var map = new HostTensor([1, 2], [0f, 1f]);
        var o = Overlay.Blend(img, map);
        // pixel 0: 0.5 * (100, 50, 200) + 0.5 * 255 * (0, 0, 0.5) = (50, 25, 163.75) -> (50, 25, 164)
        // pixel 1: 0.5 * 0 + 0.5 * 255 * (0.5, 0, 0) = (63.75, 0, 0) -> (64, 0, 0)
        Assert.That(o.Data, Is.EqualTo(new byte[] { 50, 25, 164, 64, 0, 0 }));
        var o3 = Overlay.Blend(img, map, alpha: 0.25f);
        // 0.75 * 200 + 0.25 * 127.5 = 181.875 -> 182
        Assert.That(o3[0, 0], Is.EqualTo(((byte)75, (byte)38, (byte)182)));
    }

    [Test]
    public void Heatmap_RendersColormapAlone()
    {
        var h = Overlay.Heatmap(new HostTensor([1, 1, 1, 3], [0f, 0.5f, 1f]));
        // 255 * (0.490196, 1, 0.477546) = (125, 255, 121.77)
        Assert.That(h.Data, Is.EqualTo(new byte[] { 0, 0, 128, 125, 255, 122, 128, 0, 0 }));
    }

    [Test]
    public void Blend_RejectsMismatchAndNaN()
    {
        var img = new RgbImage(2, 2);
        Assert.That(() => Overlay.Blend(img, new HostTensor(3, 2)),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("does not match"));
        Assert.That(() => Overlay.Blend(img, new HostTensor([2, 2], [0, float.NaN, 0, 0])),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("overlay"));
    }

    [Test]
    public void WritePng_IsAtomicAndDecodable()
    {
        string dir = Path.Combine(Path.GetTempPath(), "camengine-ovl-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "cat.gradcam.png");
            var img = Overlay.Heatmap(new HostTensor([2, 3], [0f, 0.2f, 0.4f, 0.6f, 0.8f, 1f]));
            Overlay.WritePng(new RgbImage(1, 1), path);
            Overlay.WritePng(img, path);
            Assert.That(Directory.GetFiles(dir), Is.EqualTo(new[] { path }));
            Assert.That(ImageDecoder.Load(path).Data, Is.EqualTo(img.Data));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
