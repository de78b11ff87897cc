using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

/// <summary>Grids that say when tiles coincide and why: grouping within the tolerance, the reasons, and the
/// labels and caption drawn into the sheet.</summary>
public class MapCoincidenceTests
{
    private static Explanation Map(string method, float[] values, float[]? weights = null) => new()
    {
        Image = 0, Method = method, TargetClass = 0, Score = 0, Layers = [], Weights = weights,
        Map = new HostTensor([2, 2], values), Raw = new HostTensor([2, 2], values),
    };

    [Test]
    public void Maps_within_the_tolerance_group_with_the_identities_that_explain_them()
    {
        var tiles = new (string, Explanation)[]
        {
            ("cam", Map("cam", [0, 0.5f, 1, 0.25f])),
            ("gradcam", Map("gradcam", [0, 0.5f, 1, 0.25f])),
            ("layercam", Map("layercam", [1, 0, 0, 0])),
            ("hirescam", Map("hirescam", [0.00005f, 0.5f, 1, 0.25f])),
            ("eigencam", Map("eigencam", [0, 0.5f, 1, 0.2505f])),  // 5e-4 away: distinct
            ("gradcam-elementwise", Map("gradcam-elementwise", [1, 0, 0, 0])),
        };
        var groups = MapCoincidence.Find(tiles);
        Assert.That(groups, Has.Count.EqualTo(2));
        Assert.That(groups[0].Labels, Is.EqualTo(new[] { "cam", "gradcam", "hirescam" }));
        Assert.That(groups[0].ToString(), Is.EqualTo(
            "cam = gradcam = hirescam: CAM = Grad-CAM on a GAP-linear head; gradient constant over each channel "
            + "(GAP then linear): HiResCAM = Grad-CAM; gradient constant over each channel (GAP then linear): HiResCAM = CAM"));
        Assert.That(groups[1].ToString(), Is.EqualTo(
            "layercam = gradcam-elementwise: non-negative activations: ReLU(g*A) = ReLU(g)*A"));
        Assert.That(MapCoincidence.Find([("a", Map("scorecam", [0, 1, 0, 1])), ("b", Map("ablationcam", [0, 1, 0, 1]))])[0].Reason,
            Is.EqualTo("identical maps"));
    }

    [Test]
    public void One_channel_weights_name_the_channel()
    {
        float[] map = [0, 1, 0.5f, 0];
        var groups = MapCoincidence.Find(
        [
            ("gradcam", Map("gradcam", map, [0, 0, 0.25f, 0])),
            ("xgradcam", Map("xgradcam", map, [0, 0, 7f, 0])),
            ("layercam", Map("layercam", map)),
        ]);
        Assert.That(groups.Single().Labels, Has.Count.EqualTo(3));
        Assert.That(groups.Single().Reason, Does.StartWith("the target's gradient reaches channel 2 of the layer only"));
        // Gradient methods carry no weights: Grad-CAM++ coinciding with Grad-CAM names the same case.
        groups = MapCoincidence.Find([("gradcam", Map("gradcam", map)), ("gradcampp", Map("gradcampp", map)), ("hirescam", Map("hirescam", map))]);
        Assert.That(groups.Single().Reason, Does.StartWith("Grad-CAM++ = Grad-CAM: the target's gradient reaches one channel"));
    }

    [Test]
    public void The_grid_relabels_repeats_and_writes_a_caption()
    {
        var red = new RgbImage(128, 128);
        for (int i = 0; i < red.Data.Length; i += 3)
            red.Data[i] = 200;
        var tiles = new (string, RgbImage)[] { ("cam", red), ("gradcam", red), ("layercam", red) };
        var maps = new[] { Map("cam", [0, 1, 1, 0]), Map("gradcam", [0, 1, 1, 0]), Map("layercam", [1, 1, 1, 0]) };
        var plain = Grid.Render(tiles);
        var sheet = MapCoincidence.Grid(tiles, maps, out var groups);
        Assert.That(groups.Single().ToString(), Is.EqualTo("cam = gradcam: CAM = Grad-CAM on a GAP-linear head"));
        // Same width (268: 42 characters a line); the 51-character caption takes two lines of 10 font rows at
        // scale 1, plus padding and a gap below the tiles.
        Assert.That(sheet.Width, Is.EqualTo(plain.Width));
        Assert.That(sheet.Height, Is.EqualTo(plain.Height + 2 * 10 + 2 * 3 + Grid.Gap));
        // The caption strip is white with black text; the tiles above are unchanged.
        int y0 = plain.Height;
        Assert.That(sheet[Grid.Gap, y0], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        int black = 0;
        for (int y = y0; y < sheet.Height; y++)
        {
            for (int x = 0; x < sheet.Width; x++)
                black += sheet[x, y] == (0, 0, 0) ? 1 : 0;
        }
        Assert.That(black, Is.GreaterThan(100), "the caption's text");
        // The second tile's label strip reads "gradcam = cam": wider ink than "gradcam" alone.
        int x1 = Grid.Gap + (128 + Grid.Gap), inkPlain = 0, inkSheet = 0;
        for (int y = Grid.Gap; y < Grid.Gap + 13; y++)
        {
            for (int x = x1; x < x1 + 128; x++)
            {
                inkPlain += plain[x, y] == (0, 0, 0) ? 1 : 0;
                inkSheet += sheet[x, y] == (0, 0, 0) ? 1 : 0;
            }
        }
        Assert.That(inkSheet, Is.GreaterThan(inkPlain));
        Assert.That(Grid.Wrap("aaa bbb cc", 6 * 7 - 1, 1), Is.EqualTo(new[] { "aaa bbb", "cc" }));
        Assert.That(Grid.Wrap("abcdefghij", 6 * 4 - 1, 1), Is.EqualTo(new[] { "abcd", "efgh", "ij" }));
    }
}
