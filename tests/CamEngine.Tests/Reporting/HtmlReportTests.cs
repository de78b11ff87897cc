using System.Text.RegularExpressions;
using CamEngine.Imaging;
using CamEngine.Reporting;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Reporting;

[TestFixture]
public sealed class HtmlReportTests
{
    private string _dir = "";

    [SetUp]
    public void CreateFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cam-report-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_dir, recursive: true);

    /// <summary>A 64x64 jet heatmap of a horizontal ramp, a flat grey input, a chart and a two-row table.</summary>
    internal static ReportContent Sample(string hostile = "cat")
    {
        var ramp = new float[64 * 64];
        for (int i = 0; i < ramp.Length; i++)
            ramp[i] = i % 64 / 63f;
        var heat = Overlay.Heatmap(new HostTensor([64, 64], ramp));
        var input = new RgbImage(64, 64, Enumerable.Repeat((byte)128, 64 * 64 * 3).ToArray());
        var chart = LineChart.Render([new ChartSeries("gradcam", [(0, 1), (0.5, 0.4), (1, 0.1)])],
            new LineChartOptions { Title = "Deletion", Width = 320, Height = 200, YMin = 0, YMax = 1 });
        return new ReportContent
        {
            Title = "Report " + hostile,
            Info = [("model", hostile), ("seed", "0")],
            Images = [new ReportImage { Name = hostile, Input = input, Overlays = [("gradcam", heat), (hostile, heat)] }],
            Table = new ReportTable { Headers = ["method", "deletion AUC"], Rows = [["gradcam", "0.1234"], [hostile, "0.5"]] },
            Charts = [("deletion " + hostile, chart)],
        };
    }

    [Test]
    public void Every_string_is_escaped_and_every_picture_is_an_embedded_png()
    {
        const string hostile = "<script>alert('x')</script> & \"q\"";
        string html = HtmlReport.Render(Sample(hostile));
        Assert.That(html, Does.Not.Contain("<script"));
        Assert.That(html, Does.Contain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        Assert.That(html, Does.StartWith("<!DOCTYPE html>"));
        Assert.That(html, Does.Not.Contain("http://").And.Not.Contain("https://"), "no external requests");
        // input + 2 overlays + 1 chart, each a PNG that decodes to the pixels given.
        var sources = Regex.Matches(html, "src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.That(sources, Has.Count.EqualTo(4));
        var sample = Sample(hostile);
        Assert.That(ImageDecoder.Decode(Convert.FromBase64String(sources[0])).Data, Is.EqualTo(sample.Images[0].Input!.Data));
        Assert.That(ImageDecoder.Decode(Convert.FromBase64String(sources[1])).Data, Is.EqualTo(sample.Images[0].Overlays[0].Image.Data));
        Assert.That(ImageDecoder.Decode(Convert.FromBase64String(sources[3])).Data, Is.EqualTo(sample.Charts[0].Image.Data));
        // 64 px pictures are shown 3x (192 px), pixelated; the 320 px chart at its own size.
        Assert.That(Regex.Count(html, "<img class=\"pixelated\" width=\"192\" height=\"192\""), Is.EqualTo(3));
        Assert.That(html, Does.Contain("<img width=\"320\" height=\"200\""));
        Assert.That(html, Does.Contain("<td class=\"num\">0.1234</td>"));
        Assert.That(HtmlReport.Escape(null), Is.Empty);
    }

    [Test]
    public void Display_width_enlarges_small_and_reduces_large_pictures()
    {
        Assert.That(HtmlReport.DisplayWidth(32), Is.EqualTo(192));
        Assert.That(HtmlReport.DisplayWidth(100), Is.EqualTo(200));
        Assert.That(HtmlReport.DisplayWidth(267), Is.EqualTo(267));
        Assert.That(HtmlReport.DisplayWidth(1000), Is.EqualTo(384));
    }

    [Test]
    public void Tables_may_be_empty_but_not_ragged()
    {
        string empty = HtmlReport.Render(new ReportContent { Table = new ReportTable { Headers = ["a", "b"] } });
        Assert.That(empty, Does.Contain("<th>a</th><th>b</th>").And.Contain("colspan=\"2\">no rows</td>"));
        Assert.That(HtmlReport.Render(new ReportContent()), Does.Not.Contain("<table"), "no table, no info: no tables");
        var ragged = new ReportContent { Table = new ReportTable { Headers = ["a", "b"], Rows = [["1"]] } };
        Assert.That(() => HtmlReport.Render(ragged),
            Throws.TypeOf<CamEngineException>().With.Message.EqualTo("report table row 0 has 1 cells for 2 headers"));
    }

    [Test]
    public void Write_creates_the_folder_and_leaves_only_the_page()
    {
        string folder = Path.Combine(_dir, "nested", "report");
        string path = HtmlReport.Write(folder, Sample());
        Assert.That(path, Is.EqualTo(Path.Combine(folder, "index.html")));
        Assert.That(Directory.GetFiles(folder), Is.EqualTo(new[] { path }));
        Assert.That(File.ReadAllText(path), Is.EqualTo(HtmlReport.Render(Sample())));
        HtmlReport.Write(folder, new ReportContent { Title = "second" });
        Assert.That(File.ReadAllText(path), Does.Contain("<h1>second</h1>"));
        Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1));
    }
}
