using CamEngine.Imaging;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

[TestFixture]
public sealed class GridTests
{
    [Test]
    public void Glyphs_are_drawn_pixel_for_pixel_and_lower_case_maps_to_capitals()
    {
        var image = new RgbImage(12, 7);
        BitmapFont.Draw(image, "a-", 0, 0, 1, (255, 0, 0));
        string[] expected =
        [
            ".###........",
            "#...#.......",
            "#...#.......",
            "#...#.#####.",
            "#####.......",
            "#...#.......",
            "#...#.......",
        ];
        for (int y = 0; y < 7; y++)
        {
            for (int x = 0; x < 12; x++)
                Assert.That(image[x, y].R == 255, Is.EqualTo(expected[y][x] == '#'), $"pixel ({x},{y})");
        }
        Assert.That(BitmapFont.Glyph('?').ToArray(), Is.EqualTo(BitmapFont.Glyph('~').ToArray()), "unknown characters draw '?'");
        Assert.That(BitmapFont.MeasureWidth("ab", 2), Is.EqualTo(22));
    }

    [Test]
    public void Grid_places_enlarged_tiles_under_their_labels()
    {
        var red = new RgbImage(32, 32);
        var blue = new RgbImage(32, 32);
        for (int i = 0; i < red.Data.Length; i += 3)
        {
            red.Data[i] = 200;
            blue.Data[i + 2] = 200;
        }
        var sheet = Grid.Render([("gradcam", red), ("layercam", blue), ("x", red)]);
        // 3 tiles: 2 columns x 2 rows; 32 px tiles enlarged 4x to 128; label strip 7 + 2 * 3 = 13 px.
        int cell = 13 + 128;
        Assert.That((sheet.Width, sheet.Height), Is.EqualTo((Grid.Gap + 2 * (128 + Grid.Gap), Grid.Gap + 2 * (cell + Grid.Gap))));
        Assert.That(sheet[Grid.Gap + 64, Grid.Gap + 13 + 64], Is.EqualTo(((byte)200, (byte)0, (byte)0)));
        Assert.That(sheet[2 * Grid.Gap + 128 + 64, Grid.Gap + 13 + 64], Is.EqualTo(((byte)0, (byte)0, (byte)200)));
        // The label strip is white with black text: the first glyph 'G' starts with an empty top-left pixel
        // and a black one next to it (row 0 of G = .###.).
        Assert.That(sheet[Grid.Gap + 3, Grid.Gap + 3], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        Assert.That(sheet[Grid.Gap + 4, Grid.Gap + 3], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        Assert.That(() => Grid.Render([("a", red), ("b", new RgbImage(8, 8))]), Throws.TypeOf<CamEngineException>());
    }
}
