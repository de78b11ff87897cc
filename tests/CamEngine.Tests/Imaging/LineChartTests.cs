using CamEngine.Imaging;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

[TestFixture]
public sealed class LineChartTests
{
    private static readonly (byte R, byte G, byte B) s_white = (255, 255, 255);
    private static readonly (byte R, byte G, byte B) s_black = (0, 0, 0);

    private static readonly LineChartOptions s_unitAxes = new()
    {
        Title = "Deletion", XLabel = "fraction removed", YLabel = "score", XMin = 0, XMax = 1, YMin = 0, YMax = 1,
    };

    [Test]
    public void Nice_steps_are_1_2_or_5_times_a_power_of_ten()
    {
        Assert.That(LineChart.NiceStep(1), Is.EqualTo(0.2).Within(1e-12));
        Assert.That(LineChart.NiceStep(10), Is.EqualTo(2).Within(1e-12));
        Assert.That(LineChart.NiceStep(3), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(LineChart.NiceStep(0.37), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(LineChart.NiceStep(120), Is.EqualTo(20).Within(1e-9));
        Assert.That(LineChart.Ticks(0, 1, 0.2), Has.Count.EqualTo(6));
        Assert.That(LineChart.Ticks(-0.3, 0.45, 0.2), Is.EqualTo(new[] { -0.2, 0, 0.2, 0.4 }).Within(1e-12));
        Assert.That(LineChart.TickLabel(0.6000000000000001, 0.2), Is.EqualTo("0.6"));
        Assert.That(LineChart.TickLabel(1, 0.2), Is.EqualTo("1.0"));
        Assert.That(LineChart.TickLabel(40, 20), Is.EqualTo("40"));
        Assert.That(LineChart.TickLabel(-1e-17, 0.2), Is.EqualTo("0.0"), "no negative zero");
        Assert.That(LineChart.TickLabel(3e-7, 1e-7), Is.EqualTo("3E-07"), "too long as 0.0000003: 3 significant digits");
        Assert.That(() => LineChart.NiceStep(0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void A_horizontal_line_at_half_lands_on_the_middle_row()
    {
        // 640x400: frame columns 76..623, rows 34..364; y = 0.5 maps to row 364 - 0.5 * (364 - 34) = 199.
        Assert.That(LineChart.PlotArea(640, 400), Is.EqualTo((76, 34, 623, 364)));
        var blue = ((byte)0, (byte)90, (byte)200);
        var image = LineChart.Render([new ChartSeries("half", [(0, 0.5), (1, 0.5)])], s_unitAxes);
        Assert.That((image.Width, image.Height), Is.EqualTo((640, 400)));
        // Width 2: row 199 fully covered, rows 198 and 200 half (255 * 0.5 + c * 0.5, rounded), 197 and 201 untouched.
        foreach (int x in new[] { 77, 150, 300, 450, 622 })
        {
            Assert.That(image[x, 199], Is.EqualTo(blue), $"column {x}");
            Assert.That(image[x, 198], Is.EqualTo(((byte)128, (byte)173, (byte)228)), $"column {x}");
            Assert.That(image[x, 200], Is.EqualTo(((byte)128, (byte)173, (byte)228)), $"column {x}");
        }
        Assert.That(image[300, 197], Is.EqualTo(s_white));
        Assert.That(image[300, 201], Is.EqualTo(s_white));
        // The frame is black; the 0.2 grid line (row 364 - 66 = 298) is light grey.
        Assert.That(image[76, 250], Is.EqualTo(s_black));
        Assert.That(image[623, 250], Is.EqualTo(s_black));
        Assert.That(image[300, 34], Is.EqualTo(s_black));
        Assert.That(image[300, 298], Is.EqualTo(((byte)230, (byte)230, (byte)230)));
        Assert.That(image[5, 5], Is.EqualTo(s_white));
    }

    [Test]
    public void Legend_shows_each_series_colour_and_labels_are_drawn()
    {
        var image = LineChart.Render(
        [
            new ChartSeries("deletion", [(0, 0.5), (1, 0.5)]),
            new ChartSeries("insertion", [(0, 0.25), (1, 0.25)]) { Color = (200, 0, 0) },
        ], s_unitAxes);
        // No line crosses the top right: the legend goes there. Box width 2 * 4 + 16 + 4 + width("insertion") 53
        // = 81, so it spans columns 623 - 6 - 81 = 536..616 from row 40; swatches rows 46..48 and 57..59 at 540..555.
        Assert.That(image[536, 40], Is.EqualTo(((byte)150, (byte)150, (byte)150)), "legend border");
        Assert.That(image[547, 47], Is.EqualTo(((byte)0, (byte)90, (byte)200)), "first palette colour");
        Assert.That(image[547, 58], Is.EqualTo(((byte)200, (byte)0, (byte)0)), "explicit colour");
        Assert.That(CountDark(image, 560, 44, 56, 18), Is.GreaterThan(20), "legend names");
        // Tick labels: y label "0.4" right-aligned at column 69 around row 364 - 0.4 * 330 = 232;
        // x label "0.6" centred under column 76 + 0.6 * 547 = 404, rows 372..378.
        Assert.That(CountDark(image, 52, 229, 18, 7), Is.GreaterThan(5), "y tick label");
        Assert.That(CountDark(image, 395, 372, 18, 7), Is.GreaterThan(5), "x tick label");
        Assert.That(CountDark(image, 0, 8, 640, 14), Is.GreaterThan(40), "title");
        Assert.That(CountDark(image, 6, 34, 7, 331), Is.GreaterThan(30), "y axis title");
        Assert.That(CountDark(image, 76, 385, 548, 7), Is.GreaterThan(30), "x axis title");
    }

    [Test]
    public void A_diagonal_is_antialiased_and_symmetric()
    {
        var image = LineChart.Render([new ChartSeries("up", [(0, 0), (1, 1)])],
            s_unitAxes with { Width = 400, Height = 400, LineWidth = 1 });
        var (left, top, right, bottom) = LineChart.PlotArea(400, 400);
        Assert.That((right - left, bottom - top), Is.EqualTo((307, 330)));
        // Exactly on the line at both ends and the middle: full colour, and partly covered pixels next to it.
        Assert.That(image[left, bottom], Is.EqualTo(((byte)0, (byte)90, (byte)200)));
        Assert.That(image[right, top], Is.EqualTo(((byte)0, (byte)90, (byte)200)));
        var partial = 0;
        for (int y = top + 1; y < bottom; y++)
        {
            for (int x = left + 1; x < right; x++)
            {
                var (r, g, b) = image[x, y];
                if (b > 200 && r > 0 && r < 255 && g > 90 && g < 255)
                    partial++;
            }
        }
        Assert.That(partial, Is.GreaterThan(200), "edge pixels blend the line colour with white");
    }

    [Test]
    public void Bad_series_are_refused_with_a_clear_message()
    {
        Assert.That(() => LineChart.Render([]), Throws.TypeOf<CamEngineException>().With.Message.Contains("at least one series"));
        Assert.That(() => LineChart.Render([new ChartSeries("empty", [])]),
            Throws.TypeOf<CamEngineException>().With.Message.EqualTo("chart series 'empty' has no points"));
        Assert.That(() => LineChart.Render([new ChartSeries("d", [(0, 1), (0.5, double.NaN)])]),
            Throws.TypeOf<CamEngineException>().With.Message.EqualTo("chart series 'd' point 1 is (0.5, NaN); every coordinate must be finite"));
        Assert.That(() => LineChart.Render([new ChartSeries("d", [(double.PositiveInfinity, 1)])]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("finite"));
        Assert.That(() => LineChart.Render([new ChartSeries("d", [(0, 1)])], new LineChartOptions { YMin = 1, YMax = 0 }),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("below the maximum"));
        Assert.That(() => LineChart.Render([new ChartSeries("d", [(0, 1)])], new LineChartOptions { Width = 100 }),
            Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void One_point_and_constant_series_autoscale_without_trouble()
    {
        // A single point: the data range widens by 0.5 each way (x: -0.5..0.5, y: 2.5..3.5), then out to the 0.2
        // ticks (x: -0.6..0.6, y: 2.4..3.6); a line-width square is drawn at the point.
        var dot = LineChart.Render([new ChartSeries("p", [(0, 3)])]);
        var (left, top, right, bottom) = LineChart.PlotArea(640, 400);
        int cx = (int)Math.Round(left + 0.6 / 1.2 * (right - left)), cy = (int)Math.Round(bottom - 0.6 / 1.2 * (bottom - top));
        Assert.That(dot[cx, cy], Is.EqualTo(((byte)0, (byte)90, (byte)200)), "x axis -0.6..0.6, y axis 2.4..3.6");
        var flat = LineChart.Render([new ChartSeries("c", [(0, 0.3), (10, 0.3), (20, 0.3)])]);
        Assert.That(CountColour(flat, (0, 90, 200)), Is.GreaterThan(right - left));
    }

    private static int CountDark(RgbImage image, int x0, int y0, int w, int h)
    {
        int n = 0;
        for (int y = y0; y < y0 + h; y++)
        {
            for (int x = x0; x < x0 + w; x++)
                n += image[x, y] == s_black ? 1 : 0;
        }
        return n;
    }

    private static int CountColour(RgbImage image, (byte R, byte G, byte B) c)
    {
        int n = 0;
        for (int i = 0; i < image.Data.Length; i += 3)
            n += image.Data[i] == c.R && image.Data[i + 1] == c.G && image.Data[i + 2] == c.B ? 1 : 0;
        return n;
    }
}
