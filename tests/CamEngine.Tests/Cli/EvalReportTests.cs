using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Cli;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Model;
using CamEngine.Reporting;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>`cam eval --report DIR --out DIR`: the HTML page, the curve charts, the manifest, and refusing to
/// replace them without --overwrite.</summary>
[TestFixture]
public sealed partial class EvalReportTests : CliTestBase
{
    private const string Device = "cpu";

    private static readonly string[] s_methods = ["gradcam", "gradcampp"];

    private static string Model => Bundled("tiny_resnet.safetensors");

    private static string[] Photos => [Bundled("images", "chelsea.png"), Bundled("images", "coffee.png")];

    [GeneratedRegex("data:image/png;base64,([A-Za-z0-9+/=]+)")]
    private static partial Regex EmbeddedPng();

    [GeneratedRegex("<table class=\"metrics\">(.*?)</table>", RegexOptions.Singleline)]
    private static partial Regex MetricsTable();

    [GeneratedRegex("<tr>(.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex TableRow();

    [GeneratedRegex("<t[hd][^>]*>(.*?)</t[hd]>", RegexOptions.Singleline)]
    private static partial Regex TableCell();

    [GeneratedRegex("<figcaption>(.*?)</figcaption>", RegexOptions.Singleline)]
    private static partial Regex Caption();

    private static string[] EvalArgs(string outDir, string reportDir, string csv, params string[] extra) =>
        ["eval", Model, .. Photos, "--method", string.Join(",", s_methods), "--metric", "avgdrop,deletion,insertion,road",
         "--steps", "10", "--device", Device, "--colormap", "viridis", "--alpha", "0.7", "--out", outDir, "--report", reportDir,
         "--csv", csv, .. extra];

    private static Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))) + File.GetLastWriteTimeUtc(f).Ticks);

    [Test]
    public void Report_charts_and_manifest_agree_with_the_table_and_are_kept_without_overwrite()
    {
        string outDir = Path.Combine(Dir, "out"), reportDir = Path.Combine(outDir, "report"), csv = Path.Combine(outDir, "m.csv");
        var r = Cam(EvalArgs(outDir, reportDir, csv));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Err, Is.Empty, "no progress line when stderr is not the console");
        Assert.That(r.Out, Does.Contain("report: " + Path.Combine(reportDir, "index.html")));

        // The HTML table is the console table: the CSV's full-precision numbers to 4 decimals, same rows and columns.
        string html = File.ReadAllText(Path.Combine(reportDir, "index.html"));
        var csvLines = File.ReadAllLines(csv);
        Assert.That(csvLines[0], Is.EqualTo("method,avgdrop,increase,deletion,insertion,road,road-morf,road-lerf"));
        var rows = TableRow().Matches(MetricsTable().Match(html).Groups[1].Value)
            .Select(m => TableCell().Matches(m.Groups[1].Value).Select(c => c.Groups[1].Value).ToArray())
            .ToList();
        Assert.That(rows, Has.Count.EqualTo(1 + s_methods.Length));
        Assert.That(rows[0], Is.EqualTo(csvLines[0].Split(',')));
        var csvValues = new Dictionary<string, double[]>();
        for (int k = 1; k < csvLines.Length; k++)
        {
            var cells = csvLines[k].Split(',');
            csvValues[cells[0]] = cells.Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.That(rows[k][0], Is.EqualTo(cells[0]));
            Assert.That(rows[k].Skip(1), Is.EqualTo(csvValues[cells[0]].Select(v => v.ToString("F4", CultureInfo.InvariantCulture))),
                $"row {cells[0]}");
        }
        Assert.That(csvValues.Keys, Is.EqualTo(s_methods));

        // Pictures: per image the input and one overlay per method, then the deletion, insertion and ROAD charts.
        var pngs = EmbeddedPng().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.That(pngs, Has.Count.EqualTo(Photos.Length * (1 + s_methods.Length) + 3));
        string[] charts = ["eval.deletion.png", "eval.insertion.png", "eval.road.png"];
        for (int c = 0; c < charts.Length; c++)
        {
            Assert.That(pngs[^(charts.Length - c)], Is.EqualTo(Convert.ToBase64String(File.ReadAllBytes(Path.Combine(outDir, charts[c])))),
                $"the report embeds {charts[c]} as written");
        }

        // The charts are shown pixel for pixel (their bitmap text would blur if scaled down).
        Assert.That(Regex.Count(html, "<img width=\"640\" height=\"400\""), Is.EqualTo(charts.Length));

        // The inputs are the whole photos (the default view) and the overlays follow --colormap and --alpha: recomputed here with the
        // library, they encode to the very bytes embedded.
        var file = ModelFile.Load(Model);
        var images = Photos.SelectMany(p => InputLoader.Load(p, file.Graph)).ToList();
        var input = InputLoader.Stack(images);
        using var backend = Devices.Open(Device);
        using var device = DeviceModel.Load(file, backend);
        var explainer = new Explainer(device);
        var gradcam = explainer.Explain(input, new GradCam());
        var options = new OverlayOptions { Colormap = ColormapKind.Viridis, Alpha = 0.7f };
        for (int i = 0; i < images.Count; i++)
        {
            int first = i * (1 + s_methods.Length);
            Assert.That(pngs[first], Is.EqualTo(Convert.ToBase64String(Overlay.EncodePng(images[i].Photo!.Photo))), $"input {i}");
            Assert.That(pngs[first + 1],
                Is.EqualTo(Convert.ToBase64String(Overlay.EncodePng(ExplanationPicture.Map(gradcam[i].Map, images[i].Display, images[i].Photo, options)))),
                $"gradcam overlay {i}");
        }

        // The deletion chart: each method's legend colour is there, and its caption gives the CSV's AUCs.
        var deletion = ImageDecoder.Load(Path.Combine(outDir, "eval.deletion.png"));
        Assert.That((deletion.Width, deletion.Height), Is.EqualTo((640, 400)));
        for (int m = 0; m < s_methods.Length; m++)
            Assert.That(Count(deletion, LineChart.Palette[m]), Is.GreaterThanOrEqualTo(16 * 3), $"{s_methods[m]}'s colour");
        Assert.That(Count(deletion, LineChart.Palette[s_methods.Length]), Is.Zero, "no third series");
        var road = ImageDecoder.Load(Path.Combine(outDir, "eval.road.png"));
        for (int m = 0; m < s_methods.Length; m++)
        {
            Assert.That(Count(road, LineChart.Palette[m]), Is.GreaterThanOrEqualTo(16 * 3), $"{s_methods[m]} MoRF");
            Assert.That(Count(road, MetricCharts.Tint(LineChart.Palette[m])), Is.GreaterThanOrEqualTo(16 * 3), $"{s_methods[m]} LeRF");
        }
        var captions = Caption().Matches(html).Select(m => m.Groups[1].Value).ToList();
        string Auc(string method, int column) => csvValues[method][column].ToString("F4", CultureInfo.InvariantCulture);
        Assert.That(captions[^3], Does.StartWith("Deletion: mean softmax probability").And.Contain("over 2 images")
            .And.EndWith($"gradcam {Auc("gradcam", 2)}, gradcampp {Auc("gradcampp", 2)}"));
        Assert.That(captions[^2], Does.StartWith("Insertion:").And.EndWith($"gradcam {Auc("gradcam", 3)}, gradcampp {Auc("gradcampp", 3)}"));
        Assert.That(captions[^1], Does.StartWith("ROAD:").And.EndWith($"gradcam {Auc("gradcam", 4)}, gradcampp {Auc("gradcampp", 4)}"));

        // The manifest: the run's facts, a time per method and per method and metric, exactly the files on disk.
        using var json = JsonDocument.Parse(File.ReadAllText(Manifest(outDir)));
        var manifest = json.RootElement;
        Assert.That(manifest.GetProperty("command").GetString(), Is.EqualTo("eval"));
        Assert.That(manifest.GetProperty("model_sha256").GetString(),
            Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Model)))));
        Assert.That(manifest.GetProperty("methods").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(s_methods));
        Assert.That(manifest.GetProperty("device").GetString(), Is.EqualTo(Device));
        var settings = manifest.GetProperty("settings");
        Assert.That(settings.GetProperty("metrics").GetString(), Is.EqualTo("avgdrop,deletion,insertion,road"));
        Assert.That(settings.GetProperty("steps").GetString(), Is.EqualTo("10"));
        Assert.That(settings.GetProperty("colormap").GetString(), Is.EqualTo("viridis"));
        Assert.That(settings.GetProperty("alpha").GetString(), Is.EqualTo("0.7"));
        var timings = manifest.GetProperty("timings_ms").EnumerateObject().ToList();
        Assert.That(timings.Select(t => t.Name), Is.EqualTo(s_methods.SelectMany(m =>
            new[] { m, m + " avgdrop", m + " deletion", m + " insertion", m + " road" })));
        Assert.That(timings.Select(t => t.Value.GetDouble()), Has.All.GreaterThan(0));
        var listed = manifest.GetProperty("files").EnumerateArray().Select(e => e.GetString()!).ToList();
        var onDisk = Directory.GetFiles(outDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(outDir, f).Replace('\\', '/'))
            .Where(f => !IsRunFile(f))
            .ToList();
        Assert.That(listed, Is.EquivalentTo(onDisk));
        Assert.That(listed, Is.EqualTo(new[] { "m.csv", "eval.deletion.png", "eval.insertion.png", "eval.road.png", "report/index.html" }));

        // Each output alone stops a second run before any work, and leaves every file as it was.
        var before = Snapshot(outDir);
        var again = Cam(EvalArgs(outDir, reportDir, csv));
        Assert.That(again.Code, Is.EqualTo(2));
        Assert.That(again.Err, Does.Contain("nothing was computed; pass --overwrite"));
        string elsewhere = Path.Combine(Dir, "elsewhere");
        var reportOnly = Cam(EvalArgs(Path.Combine(elsewhere, "out"), reportDir, Path.Combine(elsewhere, "m.csv")));
        Assert.That(reportOnly.Code, Is.EqualTo(2));
        Assert.That(reportOnly.Err, Does.Contain("index.html exists; nothing was computed; pass --overwrite"));
        var outOnly = Cam(EvalArgs(outDir, Path.Combine(elsewhere, "report"), Path.Combine(elsewhere, "m.csv")));
        Assert.That(outOnly.Code, Is.EqualTo(2));
        Assert.That(outOnly.Err, Does.Contain("nothing was computed; pass --overwrite"));
        Assert.That(Snapshot(outDir), Is.EqualTo(before));
        Assert.That(Directory.Exists(elsewhere), Is.False, "nothing written for a refused run");

        // With --overwrite the run replaces them, and lists the same files.
        var replaced = Cam(EvalArgs(outDir, reportDir, csv, "--overwrite"));
        Assert.That(replaced.Code, Is.Zero, replaced.Err);
        using var json2 = JsonDocument.Parse(File.ReadAllText(Manifest(outDir)));
        Assert.That(json2.RootElement.GetProperty("files").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(listed));
    }

    [Test]
    public void Charts_follow_the_metrics_asked_for()
    {
        // Insertion only: one chart in the folder and the report; no table column or chart for the others.
        string outDir = Path.Combine(Dir, "out"), reportDir = Path.Combine(Dir, "report");
        var r = Cam("eval", Model, Photos[0], "--method", "gradcam", "--metric", "insertion", "--steps", "5", "--device", Device,
            "--out", outDir, "--report", reportDir, "--quiet");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName).Where(f => !IsRunFile(f!)), Is.EquivalentTo(new[] { "eval.insertion.png" }));
        Assert.That(Manifests(outDir), Has.Count.EqualTo(1));
        string html = File.ReadAllText(Path.Combine(reportDir, "index.html"));
        Assert.That(EmbeddedPng().Matches(html), Has.Count.EqualTo(1 + 1 + 1));
        Assert.That(Caption().Matches(html).Select(m => m.Groups[1].Value).Last(), Does.StartWith("Insertion:").And.Contain("over 1 image;"));
        // The manifest lists the report outside its folder by a relative path.
        var listed = ListedFiles(outDir);
        Assert.That(listed, Is.EqualTo(new[] { "eval.insertion.png", "../report/index.html" }));
    }

    [Test]
    public void Mean_curves_average_the_images_point_by_point()
    {
        var a = new PerturbationCurve(0, 3, [0, 0.5, 1], [0.9, 0.4, 0.1], 0.45);
        var b = new PerturbationCurve(1, 7, [0, 0.5, 1], [0.5, 0.2, 0.3], 0.3);
        var mean = MetricCharts.MeanCurve([a, b]);
        Assert.That(mean.Select(p => p.X), Is.EqualTo(new[] { 0, 0.5, 1 }));
        Assert.That(mean.Select(p => p.Y), Is.EqualTo(new[] { 0.7, 0.3, 0.2 }).Within(1e-12));
        var road = new RoadResult
        {
            Score = MetricScore.Softmax, Percentiles = [10, 50], Original = [1, 1],
            MostRelevantFirst = [[0.5, 0.25], [0.25, 0.75]], LeastRelevantFirst = [[1, 1], [1, 1]],
        };
        Assert.That(MetricCharts.MeanRoad(road, road.MostRelevantFirst), Is.EqualTo(new[] { (10.0, 0.375), (50.0, 0.5) }));
        Assert.That(MetricCharts.Tint((0, 90, 200)), Is.EqualTo(((byte)128, (byte)173, (byte)228)));
    }

    [Test]
    public void Stage_progress_moves_the_line_within_the_stage_share()
    {
        var now = TimeSpan.Zero;
        using var line = new StringWriter();
        var progress = new ConsoleProgress("eval", 6, line, () => now);
        var stage = new StageProgress(progress, 3);
        stage.Begin();
        stage.Report(new MetricProgress("deletion", 10, 30));
        Assert.That(progress.Done, Is.EqualTo(1));
        stage.Report(new MetricProgress("deletion", 29, 30));
        Assert.That(progress.Done, Is.EqualTo(2), "rounded down");
        stage.End();
        Assert.That(progress.Done, Is.EqualTo(3));
        stage.Begin();
        now = TimeSpan.FromSeconds(10);
        stage.Report(new MetricProgress("road", 2, 3));
        Assert.That(progress.Done, Is.EqualTo(5));
        Assert.That(line.ToString(), Does.EndWith("eval: 5/6 (83%), 00:10 elapsed, ETA 00:02"));
    }

    private static List<string> ListedFiles(string outDir)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Manifest(outDir)));
        return json.RootElement.GetProperty("files").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    private static int Count(RgbImage image, (byte R, byte G, byte B) color)
    {
        int n = 0;
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                if (image[x, y] == color)
                    n++;
            }
        }
        return n;
    }
}
