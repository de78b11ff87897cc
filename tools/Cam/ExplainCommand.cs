using System.CommandLine;
using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Reporting;

namespace CamEngine.Cli;

/// <summary><c>cam explain</c>: the maps of every input and method, written as the output plan says.</summary>
internal sealed class ExplainCommand
{
    private const string Description = """
        For every image and method writes STEM.METHOD.png (the map over the image; for class-model the synthesized
        image) and, with --npy, STEM.METHOD.npy (the final map, float32 (H,W) in [0,1] at input resolution) and
        STEM.METHOD.raw.npy (the map at layer resolution before ReLU and normalization; for pixel-space methods the
        signed (C,H,W) attribution). With several methods also STEM.grid.png; with a top-K target every name gets the
        class: STEM.METHOD.cC.png. Inputs of a folder keep their subfolders (OUT/SUB/STEM...). Every run adds its rows
        to OUT/results.csv (input, class, label, score, probability, method, layer, files, ms, run) and writes its own
        OUT/manifest.RUN.json (model SHA-256, settings, device, versions, times, files). Every output is planned and
        checked before any work; an existing one stops the run unless --overwrite or --resume.
        """;

    private readonly CliContext _cli;
    private readonly Argument<string> _model = CliOptions.Model();
    private readonly InputArgs _inputs;
    private readonly OverlayArgs _overlay;
    private readonly Option<string> _method = CliOptions.Text("--method", "NAMES", "comma-separated method names, or all (default gradcam); pytorch-grad-cam and TorchCAM class names work too (GradCAMPlusPlus, KPCA_CAM...); see `cam methods`");
    private readonly Option<string> _param = CliOptions.Text("--param", "K=V[,K=V...]", "method parameters, e.g. samples=50,sigma=0.2 or sscam.samples=8; `cam methods` lists each method's keys");
    private readonly Option<string> _layer = CliOptions.Text("--layer", "NAMES", "layer(s) to explain: output tensor, node name or module path (e.g. layer4); several are fused (--fusion). Default: the first layer `cam info` suggests");
    private readonly Option<string> _layout = CliOptions.Text("--layout", "L", "auto (default) | nchw | nhwc | tokens | tokens:K: how the layer's tensor is read as a (C, h, w) grid; nhwc reads channels last (Swin, ConvNeXt blocks), tokens:K drops K leading tokens (default 1, a class token) and reads the rest as a square grid (ViT); auto decides per layer from the graph and prints the decision");
    private readonly Option<string> _target = CliOptions.Text("--target", "T", "top1 (default), a class index C or label (e.g. Sneaker), topK (one map per class), softmax or softmax:C, C1,C2,... (one class or label per image), similar:IMAGE or cosine:IMAGE (embedding similarity)");
    private readonly Option<string> _convention = CliOptions.Text("--convention", "C", "paper | pytorch-grad-cam (default) | torchcam: formula variants and post-processing order");
    private readonly Option<string> _fusion = CliOptions.Text("--fusion", "F", "mean | max | product: how several layers combine (default: mean for pytorch-grad-cam, max for torchcam and paper)");
    private readonly Option<bool> _augSmooth = CliOptions.Flag("--aug-smooth", "average over horizontal flip x pixel values times 0.9/1/1.1 (6 passes)");
    private readonly Option<bool> _eigenSmooth = CliOptions.Flag("--eigen-smooth", "map = first principal component of the weighted activations");
    private readonly Option<string> _seed = CliOptions.Text("--seed", "N", "seed of every random draw (default 0): same seed, same map");
    private readonly Option<string> _out = CliOptions.Text("--out", "DIR", "output folder (default: the current folder), created if missing");
    private readonly Option<bool> _npy = CliOptions.Flag("--npy", "also write the maps as .npy files");
    private readonly Option<string> _report = CliOptions.Text("--report", "DIR", "also write DIR/index.html: the run's facts, each input and its overlays (the first 100 inputs)");
    private readonly Option<bool> _quiet = CliOptions.Quiet();
    private readonly Option<bool> _overwrite = CliOptions.Overwrite();
    private readonly Option<string> _device = CliOptions.Device();
    private readonly Option<string> _batch = CliOptions.Text("--batch", "N", "images per forward pass (default 8); inputs are read a batch at a time");
    private readonly Option<string> _perturbationBatch = CliOptions.Text("--perturbation-batch", "N", "at most N masked/ablated/noisy inputs per pass of scorecam, sscam, iscam, ablationcam, rise, occlusion, reciprocam, smoothgrad, integrated-gradients (default 32; --memory-budget may give fewer)");
    private readonly Option<string> _memoryBudget = CliOptions.Text("--memory-budget", "SIZE", "memory the explanation may plan for, e.g. 1.5G or 800M (K, M, G, T: powers of 1024): it sizes how many images are explained at once and every re-run batch (Score-CAM masks, ablations, noisy copies...); too small for one image is refused with both numbers (default: a quarter of the machine's available memory, at most 1G; on a GPU 60% of its free memory)");
    private readonly Option<string> _labels = CliOptions.Labels();

    /// <summary>Images shown in the report at most (each holds pictures in memory until the report is written).</summary>
    public const int MaxReportImages = 100;

    private ExplainCommand(CliContext cli, Command command)
    {
        _cli = cli;
        command.Arguments.Add(_model);
        _inputs = InputArgs.AddTo(command, shard: true, resume: true);
        foreach (var o in new Option[] { _method, _param, _layer, _layout, _target, _convention, _fusion, _augSmooth, _eigenSmooth, _seed, _out, _npy })
            command.Options.Add(o);
        _overlay = OverlayArgs.AddTo(command);
        foreach (var o in new Option[] { _report, _quiet, _overwrite, _device, _batch, _perturbationBatch, _memoryBudget, _labels })
            command.Options.Add(o);
    }

    public static Command Build(CliContext cli)
    {
        var command = new Command("explain", Description.ReplaceLineEndings(" "));
        var explain = new ExplainCommand(cli, command);
        command.SetAction(explain.Run);
        return command;
    }

    public static Convention ParseConvention(string text) => CliOptions.Choice("--convention", text, "paper", "pytorch-grad-cam", "torchcam") switch
    {
        "paper" => Convention.Paper,
        "torchcam" => Convention.TorchCam,
        _ => Convention.PytorchGradCam,
    };

    internal static string ConventionName(Convention c) => c switch
    {
        Convention.Paper => "paper",
        Convention.TorchCam => "torchcam",
        _ => "pytorch-grad-cam",
    };

    private int Run(ParseResult r)
    {
        var methods = MethodCatalog.WithParameters(CamNames.ResolveMethods(r.Get(_method, "gradcam")), r.Get(_param));
        int batch = r.GetInt(_batch, 8, 1, 4096);
        var overlay = _overlay.Parse(r);
        bool overwrite = r.GetValue(_overwrite), resume = _inputs.Resume(r);
        if (overwrite && resume)
            throw new UsageException("--overwrite and --resume exclude each other: replace everything, or skip what is done");
        var (all, mine) = _inputs.Resolve(r);
        string modelPath = r.GetValue(_model)!;

        using var run = new RunHarness(_cli, "explain", modelPath, _inputs.GetShard(r));
        var plan = run.UseOutputFolder(r.Get(_out, "."), overwrite, resume, canResume: true);
        string? reportPath = r.Get(_report) is { } rd ? Path.Combine(rd, HtmlReport.FileName) : null;
        if (reportPath != null)
            RunHarness.PlanExtra(reportPath, overwrite);
        var model = run.LoadModel(r.Get(_device), batch, r.Get(_labels));
        var options = Options(r, model);
        var target = options.Target;
        methods = run.MethodsFor(methods, target, CamNames.IsAll(r.Get(_method, "gradcam")), options.Layers);
        if (target.PerImageCount > 0 && (run.Shard.Count > 1 || (target.PerImageCount != all.Count && !all.Any(i => i.Path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase)))))
            throw new UsageException($"--target names {target.PerImageCount} classes for {all.Count} image(s) in input order; give one per image (and no --shard)");
        var layers = methods.Any(m => m.UsesLayers) ? model.ResolveLayers(options.Layers) : [];
        var readings = layers.Count > 0 ? model.ReadLayers(options.Layers, options.Layout) : [];
        var outputs = new ExplainOutputs(plan, methods, r.GetValue(_npy), target.TopCount, overlay);
        var todo = outputs.Todo(mine, resume);

        _cli.Out.WriteLine($"device: {RunHarness.Show(model.DeviceName)} ({RunHarness.Show(model.DeviceDescription)})");
        if (layers.Count > 0)
            _cli.Out.WriteLine($"layer{(layers.Count > 1 ? "s" : "")}: {string.Join(", ", readings.Select(l => $"{RunHarness.Show(l.Layer)} ({RunHarness.Show(l.Describe())})"))}");
        if (run.Shard.Count > 1 || todo.Count < mine.Count)
            _cli.Out.WriteLine($"inputs: {todo.Count} of {all.Count} (shard {run.Shard}{(resume ? $", {mine.Count - todo.Count} done before" : "")})");
        if (plan.RemovedTemps > 0)
            _cli.Out.WriteLine($"removed {plan.RemovedTemps} temp file(s) left by runs that did not finish");

        var timings = methods.ToDictionary(m => m.Name, _ => 0.0, StringComparer.Ordinal);
        var ledger = new PassLedger();
        var reportImages = new List<ReportImage>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int images = run.ForEachBatch(todo, batch, "explain", r.GetValue(_quiet), b =>
        {
            if (target.PerImageCount > 0 && b.First + b.Inputs.Count > target.PerImageCount)
                throw new UsageException($"--target names {target.PerImageCount} classes for more image(s); give one per image");
            var batchOptions = target.PerImageCount > 0 ? WithTarget(options, target.ForImages(b.First, b.Inputs.Count)) : options;
            var ms = new Dictionary<string, double>(StringComparer.Ordinal);
            var inputs = b.Inputs.Select(c => c.Input).ToList();
            var results = model.Explain(inputs, methods, batchOptions, ms, ledger);
            var probabilities = model.IsEmbedding ? null : Softmax(model.Outputs(inputs), inputs.Count);
            foreach (var (method, t) in ms)
                timings[method] += t;
            run.Stage($"writing the outputs of inputs {b.First + 1} to {b.First + inputs.Count}");
            var rows = new List<ResultRow>();
            for (int i = 0; i < inputs.Count; i++)
            {
                var (stem, path, input) = b.Inputs[i];
                var mineResults = results.Where(x => x.ImageIndex == i).ToList();
                var (imageRows, report, notes) = outputs.Write(stem, path, input, mineResults, probabilities?[i],
                    ms.ToDictionary(p => p.Key, p => p.Value / inputs.Count, StringComparer.Ordinal));
                rows.AddRange(imageRows);
                if (reportPath != null && reportImages.Count < MaxReportImages)
                    reportImages.Add(report);
                b.Progress.Clear();
                foreach (var first in mineResults.Where(x => x.Method == methods[0].Name))
                    _cli.Out.WriteLine(outputs.Line(b.Done(i) + 1, todo.Count, stem, first));
                foreach (var note in notes)
                    _cli.Out.WriteLine(note);
            }
            return rows;
        });
        if (target.PerImageCount > 0 && target.PerImageCount != images)
        {
            run.RollBack();
            throw new UsageException($"--target names {target.PerImageCount} classes for {images} image(s); give one per image");
        }
        run.Finish(reportPath, () => new ReportContent
        {
            Title = $"CamEngine explain: {Path.GetFileName(modelPath)}",
            Info = Manifest(run, methods, layers, readings, r.Get(_target, "top1").Trim(), options, timings, overlay, images, ledger).ToInfo(),
            Images = reportImages,
        }, overwrite, Manifest(run, methods, layers, readings, r.Get(_target, "top1").Trim(), options, timings, overlay, images, ledger));
        _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{images} image(s), {methods.Count} method(s) in {clock.Elapsed.TotalSeconds:F2} s; {run.Results!.Rows} row(s) added to {Path.Combine(plan.Folder, ResultsIndex.FileName)}; manifest {Path.Combine(plan.Folder, run.ManifestName)}"));
        if (reportPath != null)
            _cli.Out.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>The explanation options from the command line: layers, target (resolved by the model: labels,
    /// similarity references), convention, fusion, smoothing, seed, perturbation batch.</summary>
    private ExplainOptions Options(ParseResult r, CamModel model) => new()
    {
        Layers = CliOptions.List(r.Get(_layer)),
        Layout = LayerLayout.Parse(r.Get(_layout, "auto")),
        Target = model.ParseTarget(r.Get(_target, "top1").Trim()),
        Convention = ParseConvention(r.Get(_convention, "pytorch-grad-cam")),
        Fusion = r.Get(_fusion) is { } f
            ? CliOptions.Choice("--fusion", f, "mean", "max", "product") switch { "mean" => LayerFusion.Mean, "max" => LayerFusion.Max, _ => LayerFusion.Product }
            : null,
        AugSmooth = r.GetValue(_augSmooth), EigenSmooth = r.GetValue(_eigenSmooth),
        Seed = r.GetInt(_seed, 0, int.MinValue, int.MaxValue),
        PerturbationBatch = r.GetInt(_perturbationBatch, 32, 1, 65536),
        MemoryBudgetBytes = r.GetBytes(_memoryBudget),
    };

    private static RunManifest Manifest(
        RunHarness run, IReadOnlyList<CamMethod> methods, IReadOnlyList<string> layers, IReadOnlyList<LayerReading> readings,
        string target, ExplainOptions options,
        Dictionary<string, double> timings, OverlayOptions overlay, int images, PassLedger ledger)
    {
        var (convention, fusion, seed) = (options.Convention, options.Fusion, options.Seed);
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in OverlayArgs.Settings(overlay))
            settings[key] = value;
        settings["aug_smooth"] = options.AugSmooth ? "true" : "false";
        settings["eigen_smooth"] = options.EigenSmooth ? "true" : "false";
        settings["layout"] = options.Layout.ToString();
        if (readings.Count > 0)
            settings["layer_layouts"] = string.Join("; ", readings.Select(l => $"{l.Layer}: {l.Describe()}"));
        settings["images"] = images.ToString(CultureInfo.InvariantCulture);
        settings["shard"] = run.Shard.ToString();
        settings["run"] = run.RunId;
        string fusionText = fusion is { } f ? f.ToString().ToLowerInvariant()
            : (convention == Convention.PytorchGradCam ? "mean" : "max") + " (convention default)";
        var breakdown = ledger.Snapshot();
        settings["memory_budget"] = breakdown.MemoryBudgetBytes.ToString(CultureInfo.InvariantCulture);
        settings["perturbation_batch"] = options.PerturbationBatch.ToString(CultureInfo.InvariantCulture);
        return run.Manifest(methods.Select(m => m.Name).ToList(), layers, target, ConventionName(convention), fusionText, seed, timings, settings)
            with { Breakdown = breakdown };
    }

    private static ExplainOptions WithTarget(ExplainOptions o, Target target) => new()
    {
        Layers = o.Layers, Target = target, Convention = o.Convention, Fusion = o.Fusion, AugSmooth = o.AugSmooth,
        EigenSmooth = o.EigenSmooth, Seed = o.Seed, PerturbationBatch = o.PerturbationBatch, MemoryBudgetBytes = o.MemoryBudgetBytes,
        Layout = o.Layout,
    };

    /// <summary>Softmax over each image's outputs (in double, maximum subtracted).</summary>
    internal static double[][] Softmax(float[] outputs, int images)
    {
        int k = outputs.Length / images;
        var p = new double[images][];
        for (int i = 0; i < images; i++)
        {
            var row = outputs.AsSpan(i * k, k);
            double max = double.NegativeInfinity;
            foreach (float v in row)
                max = Math.Max(max, v);
            double sum = 0;
            p[i] = new double[k];
            for (int c = 0; c < k; c++)
                sum += p[i][c] = Math.Exp(row[c] - max);
            for (int c = 0; c < k; c++)
                p[i][c] /= sum;
        }
        return p;
    }
}
