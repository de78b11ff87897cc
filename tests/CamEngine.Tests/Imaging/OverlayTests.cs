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

    [Test]
    public void Blend_with_options_uses_their_colormap_and_alpha()
    {
        var img = new RgbImage(2, 1, [100, 50, 200, 0, 0, 0]);
        var map = new HostTensor([1, 2], [0f, 1f]);
        var o = Overlay.Blend(img, map, new OverlayOptions { Colormap = ColormapKind.Viridis, Alpha = 0.25f });
        // pixel 0: 0.75 * (100, 50, 200) + 0.25 * 255 * (0.267004, 0.004874, 0.329415) = (92.02, 37.81, 171.00)
        // pixel 1: 0.25 * 255 * (0.993248, 0.906157, 0.143936) = (63.32, 57.77, 9.18)
        Assert.That(o.Data, Is.EqualTo(new byte[] { 92, 38, 171, 63, 58, 9 }));
        Assert.That(Overlay.Blend(img, map, OverlayOptions.Default).Data, Is.EqualTo(Overlay.Blend(img, map).Data),
            "the default options are the old behaviour: jet, alpha 0.5, no contour");
        var h = Overlay.Heatmap(map, new OverlayOptions { Colormap = ColormapKind.Inferno });
        // 255 * (0.001462, 0.000466, 0.013866) = (0.37, 0.12, 3.54); 255 * (0.988362, 0.998364, 0.644924) = (252.03, 254.58, 164.46)
        Assert.That(h.Data, Is.EqualTo(new byte[] { 0, 0, 4, 252, 255, 164 }));
        Assert.That(() => Overlay.Blend(img, map, new OverlayOptions { Alpha = 1.5f }), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void TopThreshold_is_numpys_linear_percentile()
    {
        float[] values = [7, 1, 10, 3, 2, 9, 4, 8, 6, 5];
        // np.percentile(1..10, 80): rank 0.8 * 9 = 7.2 -> 8 + 0.2 * (9 - 8) = 8.2
        Assert.That(Overlay.TopThreshold(values, 20), Is.EqualTo(8.2f).Within(1e-6f));
        // np.percentile(1..10, 0) = 1; np.percentile(1..10, 50) = 5.5
        Assert.That(Overlay.TopThreshold(values, 100), Is.EqualTo(1f));
        Assert.That(Overlay.TopThreshold(values, 50), Is.EqualTo(5.5f));
        Assert.That(() => Overlay.TopThreshold(values, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => Overlay.TopThreshold(values, 101), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Contour_of_a_square_region_is_its_boundary_ring()
    {
        // 7x7 zeros with a 3x3 block of ones: 9 of 49 values. Top 18%: np.percentile(map, 82) has rank
        // 0.82 * 48 = 39.36 between s[39] = 0 and s[40] = 1, so the threshold is 0.36 and the region is the block.
        var map = MapFromRows("0000000", "0000000", "0011100", "0011100", "0011100", "0000000", "0000000");
        AssertMask(Overlay.Contour(map, 18, width: 1), 7,
            ".......", ".......", "..###..", "..#.#..", "..###..", ".......", ".......");
        AssertMask(Overlay.Contour(map, 18, width: 2), 7,
            ".......", "..###..", ".#####.", ".##.##.", ".#####.", "..###..", ".......");
        // 100% is the whole map: no boundary at all.
        Assert.That(Overlay.Contour(map, 100, 2), Has.None.True);
        Assert.That(() => Overlay.Contour(map, 18, 3), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Contour_stays_open_at_the_image_edge()
    {
        // Top 25% of 16 values: rank 0.75 * 15 = 11.25 between 0 and 1 -> 0.25; the region is the top-left 2x2.
        var map = MapFromRows("1100", "1100", "0000", "0000");
        AssertMask(Overlay.Contour(map, 25, 1), 4, ".#..", "##..", "....", "....");
        AssertMask(Overlay.Contour(map, 25, 2), 4, ".##.", "###.", "##..", "....");
    }

    [Test]
    public void Blend_draws_the_contour_colour_over_the_plain_overlay()
    {
        var map = MapFromRows("0000000", "0000000", "0011100", "0011100", "0011100", "0000000", "0000000");
        var img = new RgbImage(7, 7, Enumerable.Repeat((byte)90, 7 * 7 * 3).ToArray());
        var plain = Overlay.Blend(img, map);
        var options = new OverlayOptions { ContourPercent = 18, ContourColor = (255, 0, 255), ContourWidth = 1 };
        var outlined = Overlay.Blend(img, map, options);
        var contour = Overlay.Contour(map, 18, 1);
        int drawn = 0;
        for (int i = 0; i < 49; i++)
        {
            var expected = contour[i] ? ((byte)255, (byte)0, (byte)255) : plain[i % 7, i / 7];
            Assert.That(outlined[i % 7, i / 7], Is.EqualTo(expected), $"pixel {i}");
            drawn += contour[i] ? 1 : 0;
        }
        Assert.That(drawn, Is.EqualTo(8));
        var heat = Overlay.Heatmap(map, options);
        Assert.That(heat[2, 2], Is.EqualTo(((byte)255, (byte)0, (byte)255)));
        Assert.That(heat[3, 3], Is.EqualTo(((byte)128, (byte)0, (byte)0)), "the block's centre keeps jet(1)");
    }

    private static HostTensor MapFromRows(params string[] rows)
    {
        var data = rows.SelectMany(r => r.Select(c => c == '1' ? 1f : 0f)).ToArray();
        return new HostTensor([rows.Length, rows[0].Length], data);
    }

    private static void AssertMask(bool[] mask, int width, params string[] expected)
    {
        var actual = Enumerable.Range(0, expected.Length)
            .Select(y => new string(Enumerable.Range(0, width).Select(x => mask[y * width + x] ? '#' : '.').ToArray()))
            .ToArray();
        Assert.That(actual, Is.EqualTo(expected));
    }
}
