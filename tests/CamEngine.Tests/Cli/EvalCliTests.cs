using System.Globalization;
using System.Text.Json;
using CamEngine.Backends;
using CamEngine.Cli;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>`cam eval`: its table, CSV and JSON agree with the library calls; bad usage gives one line and exit 2.</summary>
[TestFixture]
public sealed class EvalCliTests : CliTestBase
{
    // The managed CPU backend: Grad-CAM++ and 2 x 12 perturbed forwards per method take about 25 s on ILGPU's CPU
    // accelerator and under a second here; the backends themselves are compared elsewhere.
    private const string Device = "cpu";

    [Test]
    public void Eval_prints_a_table_and_writes_csv_and_json_that_match_the_library()
    {
        string model = Bundled("tiny_resnet.safetensors"), photo = Bundled("images", "chelsea.png");
        string csv = Path.Combine(Dir, "m.csv"), json = Path.Combine(Dir, "m.json");
        var r = Cam("eval", model, photo, "--method", "gradcam,gradcampp", "--metric", "avgdrop,deletion,insertion",
            "--steps", "10", "--device", Device, "--csv", csv, "--json", json);
        Assert.That(r.Code, Is.Zero, r.Err);

        // The library, called directly on the same input.
        var file = ModelFile.Load(model);
        var input = InputLoader.Stack(InputLoader.Load(photo, file.Graph));
        using var backend = Devices.Open(Device);
        using var device = DeviceModel.Load(file, backend);
        var explainer = new Explainer(device);
        var maps = explainer.Explain(input, [new GradCam(), new GradCamPlusPlus()], new ExplainOptions());
        var metrics = new MetricEvaluator(explainer);
        var expected = new Dictionary<string, double[]>();
        foreach (var method in new[] { "gradcam", "gradcampp" })
        {
            var change = metrics.ConfidenceChange(input, maps[method]);
            var options = new DeletionInsertionOptions { Steps = 10 };
            expected[method] =
            [
                change.AverageDrop, change.IncreaseInConfidence,
                metrics.Deletion(input, maps[method], options).MeanAuc, metrics.Insertion(input, maps[method], options).MeanAuc,
            ];
        }

        var lines = File.ReadAllLines(csv);
        Assert.That(lines[0], Is.EqualTo("method,avgdrop,increase,deletion,insertion"));
        Assert.That(lines, Has.Length.EqualTo(3));
        var table = r.Out.Split('\n').Select(l => l.Trim()).ToList();
        int header = table.FindIndex(l => l.StartsWith("method", StringComparison.Ordinal));
        Assert.That(table[header].Split(' ', StringSplitOptions.RemoveEmptyEntries),
            Is.EqualTo(new[] { "method", "avgdrop", "increase", "deletion", "insertion" }));
        foreach (var (line, k) in lines.Skip(1).Select((l, k) => (l, k)))
        {
            var cells = line.Split(',');
            var values = cells.Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            TensorAssert.Close(values, expected[cells[0]], 1e-6, 1e-6, $"CSV row {cells[0]}");
            // The printed table rounds to 4 decimals.
            var printed = table[header + 1 + k].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(printed[0], Is.EqualTo(cells[0]));
            TensorAssert.Close(printed.Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray(),
                expected[cells[0]], 5.1e-5, 0, $"table row {cells[0]}");
        }
        Assert.That(expected["gradcam"][2], Is.InRange(0.0, 1.0), "softmax AUC");

        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var curve = doc.RootElement.GetProperty("methods").GetProperty("gradcam").GetProperty("deletion").GetProperty("curves")[0];
        Assert.That(curve.GetProperty("image").GetString(), Is.EqualTo("chelsea"));
        Assert.That(curve.GetProperty("fractions").GetArrayLength(), Is.EqualTo(11));
        Assert.That(curve.GetProperty("auc").GetDouble(), Is.EqualTo(expected["gradcam"][2]).Within(1e-6));
        Assert.That(curve.GetProperty("scores")[10].GetDouble(),
            Is.EqualTo(metrics.Deletion(input, maps["gradcam"], new DeletionInsertionOptions { Steps = 10 }).Curves[0].Scores[10]).Within(1e-6));

        // The files exist now: a second run needs --overwrite.
        AssertOneLineError(Cam("eval", model, photo, "--device", Device, "--csv", csv), "pass --overwrite");
    }

    [Test]
    public void Pointing_reads_the_box_file_and_road_and_sanity_columns_appear()
    {
        string model = Bundled("tiny_resnet.safetensors"), photo = Bundled("images", "chelsea.png");
        string boxes = Path.Combine(Dir, "boxes.csv");
        // The whole 32x32 input: every map maximum is a hit and all the mass is inside.
        File.WriteAllText(boxes, "image,x0,y0,x1,y1\nchelsea.png,0,0,31,31\n");
        var r = Cam("eval", model, photo, "--metric", "pointing,road,sanity", "--boxes", boxes, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        var lines = r.Out.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        var header = lines.First(l => l.Length > 0 && l[0] == "method");
        Assert.That(header, Is.EqualTo(new[] { "method", "road", "road-morf", "road-lerf", "pointing", "energy", "sanity" }));
        var row = lines.First(l => l.Length > 0 && l[0] == "gradcam");
        Assert.That(row[4], Is.EqualTo("1.0000"));
        Assert.That(row[5], Is.EqualTo("1.0000"));
        double rho = double.Parse(row[6], CultureInfo.InvariantCulture);
        Assert.That(rho, Is.InRange(-1.0, 1.0));

        File.WriteAllText(boxes, "chelsea,0,0,3\n");
        AssertOneLineError(Cam("eval", model, photo, "--metric", "pointing", "--boxes", boxes, "--device", "cpu"),
            "boxes.csv:1: expected 5 fields");
        File.WriteAllText(boxes, "coffee,0,0,3,3\n");
        AssertOneLineError(Cam("eval", model, photo, "--metric", "pointing", "--boxes", boxes, "--device", "cpu"),
            "no box for image 'chelsea'");
    }

    [Test]
    public void Bad_eval_usage_gives_exit_code_2_with_one_line()
    {
        string model = Bundled("tiny_resnet.safetensors"), photo = Bundled("images", "chelsea.png");
        AssertOneLineError(Cam("eval", model, photo, "--metric", "avgdrop,faithfulness"), "unknown metric 'faithfulness'");
        AssertOneLineError(Cam("eval", model, photo, "--metric", "pointing"), "needs --boxes");
        AssertOneLineError(Cam("eval", model, photo, "--baseline", "noise"), "unknown baseline 'noise'");
        AssertOneLineError(Cam("eval", model, photo, "--score", "prob"), "unknown score 'prob'");
        AssertOneLineError(Cam("eval", model, photo, "--tolerance", "-1"), "--tolerance");
        AssertOneLineError(Cam("eval", model, photo, "--method", "class-model"), "cannot be evaluated");
        AssertOneLineError(Cam("eval", model, photo, "--target", "cosine:x.png"), "similarity");
        AssertOneLineError(Cam("eval", model), "at least one image");
        Assert.That(Cam("eval", "--help").Out, Does.Contain("Usage:\n  cam eval <MODEL>"));
        Assert.That(Cam("--help").Out, Does.Contain("eval <MODEL> <IMAGE>"));
    }
}
