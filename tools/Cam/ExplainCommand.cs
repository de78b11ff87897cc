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
    private readonly Option<string> _layer = CliOptions.Text("--layer", "NAMES", "layer(s) to explain: output tensor, node name or module path (e.g. layer4); several are fused (--fusion). Default: the deepest spatial layer (see `cam info`)");
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
    private readonly Option<string> _perturbationBatch = CliOptions.Text("--perturbation-batch", "N", "masked/ablated/noisy inputs per pass of scorecam, sscam, iscam, ablationcam, smoothgrad, integrated-gradients (default 32)");
    private readonly Option<string> _labels = CliOptions.Labels();

    /// <summary>Images shown in the report at most (each holds pictures in memory until the report is written).</summary>
    public const int MaxReportImages = 100;

    private ExplainCommand(CliContext cli, Command command)
    {
        _cli = cli;
        command.Arguments.Add(_model);
        _inputs = InputArgs.AddTo(command, shard: true, resume: true);
        foreach (var o in new Option[] { _method, _param, _layer, _target, _convention, _fusion, _augSmooth, _eigenSmooth, _seed, _out, _npy })
            command.Options.Add(o);
        _overlay = OverlayArgs.AddTo(command);
        foreach (var o in new Option[] { _report, _quiet, _overwrite, _device, _batch, _perturbationBatch, _labels })
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
        int seed = r.GetInt(_seed, 0, int.MinValue, int.MaxValue);
        var convention = ParseConvention(r.Get(_convention, "pytorch-grad-cam"));
        LayerFusion? fusion = r.Get(_fusion) is { } f
            ? CliOptions.Choice("--fusion", f, "mean", "max", "product") switch { "mean" => LayerFusion.Mean, "max" => LayerFusion.Max, _ => LayerFusion.Product }
            : null;
        int perturbationBatch = r.GetInt(_perturbationBatch, 32, 1, 65536);
        var overlay = _overlay.Parse(r);
        bool npy = r.GetValue(_npy), overwrite = r.GetValue(_overwrite), resume = _inputs.Resume(r);
        if (overwrite && resume)
            throw new UsageException("--overwrite and --resume exclude each other: replace everything, or skip what is done");
        string targetText = r.Get(_target, "top1").Trim();
        var (all, mine) = _inputs.Resolve(r);
        string modelPath = r.GetValue(_model)!;

        using var run = new RunHarness(_cli, "explain", modelPath, _inputs.GetShard(r));
        var plan = run.UseOutputFolder(r.Get(_out, "."), overwrite, resume, canResume: true);
        string? reportPath = r.Get(_report) is { } rd ? Path.Combine(rd, HtmlReport.FileName) : null;
        if (reportPath != null)
            RunHarness.PlanExtra(reportPath, overwrite);
        var model = run.LoadModel(r.Get(_device), batch, r.Get(_labels));
        var target = model.ParseTarget(targetText);
        if (target.PerImageCount > 0 && run.Shard.Count > 1)
            throw new UsageException("a per-image --target C1,C2,... names classes in input order; it cannot be combined with --shard");
        if (target.PerImageCount > 0 && target.PerImageCount != all.Count && !all.Any(i => i.Path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase)))
            throw new UsageException($"--target names {target.PerImageCount} classes for {all.Count} image(s); give one per image");
        var options = new ExplainOptions
        {
            Layers = CliOptions.List(r.Get(_layer)), Target = target, Convention = convention, Fusion = fusion,
            AugSmooth = r.GetValue(_augSmooth), EigenSmooth = r.GetValue(_eigenSmooth), Seed = seed, PerturbationBatch = perturbationBatch,
        };
        var layers = methods.Any(m => m.UsesLayers) ? model.ResolveLayers(options.Layers) : [];

        // The plan: every file of every input, checked before any work.
        int k = target.TopCount;
        bool perClass = k > 1;
        IEnumerable<string> Planned(string stem)
        {
            foreach (var m in methods)
            {
                string name = $"{stem}.{m.Name}{(perClass ? ".c*" : "")}";
                yield return name + ".png";
                if (npy)
                {
                    yield return name + ".npy";
                    yield return name + ".raw.npy";
                }
            }
            if (methods.Count > 1 || perClass)
                yield return stem + ".grid.png";
        }
        bool Complete(InputFile f) => Planned(f.OutputStem).All(n => plan.Count(n) >= (n.Contains('*', StringComparison.Ordinal) ? k : 1));
        var todo = resume ? mine.Where(f => !Complete(f)).ToList() : mine;
        if (!resume)
            plan.CheckFree(mine.SelectMany(f => Planned(f.OutputStem)));

        _cli.Out.WriteLine($"device: {RunHarness.Show(model.DeviceName)} ({RunHarness.Show(model.DeviceDescription)})");
        if (layers.Count > 0)
            _cli.Out.WriteLine($"layer{(layers.Count > 1 ? "s" : "")}: {string.Join(", ", layers.Select(RunHarness.Show))}");
        if (run.Shard.Count > 1 || todo.Count < mine.Count)
            _cli.Out.WriteLine($"inputs: {todo.Count} of {all.Count} (shard {run.Shard}{(resume ? $", {mine.Count - todo.Count} done before" : "")})");
        if (plan.RemovedTemps > 0)
            _cli.Out.WriteLine($"removed {plan.RemovedTemps} temp file(s) left by runs that did not finish");

        var timings = methods.ToDictionary(m => m.Name, _ => 0.0, StringComparer.Ordinal);
        var reportImages = new List<ReportImage>();
        var batchFiles = new List<string>();
        int done = 0, images = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var progress = ConsoleProgress.ForStderr("explain", Math.Max(1, todo.Count), _cli.Error, r.GetValue(_quiet));
        try
        {
            foreach (var chunk in run.Batches(todo, batch))
            {
                batchFiles.Clear();
                run.Stage($"explaining inputs {images + 1} to {images + chunk.Count}");
                var batchOptions = target.PerImageCount > 0 ? WithTarget(options, target.ForImages(images, chunk.Count)) : options;
                var batchTimes = new Dictionary<string, double>(StringComparer.Ordinal);
                var results = model.Explain(chunk.Select(c => c.Input).ToList(), methods, batchOptions, batchTimes);
                var probabilities = model.IsEmbedding ? null : Softmax(model.Outputs(chunk.Select(c => c.Input).ToList()), chunk.Count);
                run.Stage($"writing the outputs of inputs {images + 1} to {images + chunk.Count}");
                var rows = new List<ResultRow>();
                for (int i = 0; i < chunk.Count; i++)
                {
                    var (stem, path, _) = chunk[i];
                    var mineResults = results.Where(x => x.ImageIndex == i).ToList();
                    var tiles = new List<CamResult>();
                    foreach (var res in mineResults)
                    {
                        string name = $"{stem}.{res.Method}{(perClass ? string.Create(CultureInfo.InvariantCulture, $".c{res.ClassIndex}") : "")}";
                        var files = new List<string> { name + ".png" };
                        plan.Write(name + ".png", OverlayArgs.Png(res, overlay));
                        if (npy)
                        {
                            plan.Write(name + ".npy", res.EncodeMapNpy());
                            plan.Write(name + ".raw.npy", res.EncodeRawNpy());
                            files.Add(name + ".npy");
                            files.Add(name + ".raw.npy");
                        }
                        batchFiles.AddRange(files);
                        tiles.Add(res);
                        double? p = probabilities != null && res.ClassIndex >= 0 ? probabilities[i][res.ClassIndex] : null;
                        rows.Add(new ResultRow(path, res.ClassIndex, res.Label, res.Score, p, res.Method, string.Join(';', res.Layers), files,
                            batchTimes[res.Method] / chunk.Count));
                    }
                    if (methods.Count > 1 || perClass)
                    {
                        plan.Write(stem + ".grid.png", OverlayArgs.GridPng(tiles, overlay));
                        batchFiles.Add(stem + ".grid.png");
                        foreach (int j in Enumerable.Range(rows.Count - tiles.Count, tiles.Count))
                            rows[j] = rows[j] with { Files = [.. rows[j].Files, stem + ".grid.png"] };
                    }
                    if (reportPath != null && reportImages.Count < MaxReportImages)
                    {
                        reportImages.Add(new ReportImage
                        {
                            Name = stem, Input = chunk[i].Input.Picture,
                            Overlays = tiles.Select(t => (perClass ? $"{t.Method} {t.ClassIndex}" : t.Method, OverlayArgs.Picture(t, overlay))).ToList(),
                        });
                    }
                    progress.Clear();
                    foreach (var first in mineResults.Where(x => x.Method == methods[0].Name))
                    {
                        string what = first.ClassIndex < 0 ? "similarity" : $"class {first.ClassIndex}" + (first.Label != null ? $" ({RunHarness.Show(first.Label)})" : "");
                        _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"[{done + 1}/{todo.Count}] {RunHarness.Show(stem)}: {what}, score {first.Score:G5} -> {RunHarness.Show(Path.Combine(plan.Folder, stem))}.{(methods.Count == 1 ? methods[0].Name : "{" + string.Join(",", methods.Select(m => m.Name)) + "}")}{(perClass ? string.Create(CultureInfo.InvariantCulture, $".c{first.ClassIndex}") : "")}.png"));
                    }
                    if (chunk.Count == 1 || i == chunk.Count - 1 || chunk[i + 1].Path != path)
                    {
                        done++;
                        progress.Advance(1);
                    }
                }
                foreach (var (method, ms) in batchTimes)
                    timings[method] += ms;
                images += chunk.Count;
                run.Results!.Add(rows);
                batchFiles.Clear();
            }
            progress.Finish();
            if (target.PerImageCount > 0 && target.PerImageCount != images)
                throw new UsageException($"--target names {target.PerImageCount} classes for {images} image(s); give one per image");
            run.Results!.Flush();
            if (reportPath != null)
            {
                run.WriteExtra(reportPath, System.Text.Encoding.UTF8.GetBytes(HtmlReport.Render(new ReportContent
                {
                    Title = $"CamEngine explain: {Path.GetFileName(modelPath)}",
                    Info = Manifest(run, methods, layers, targetText, convention, fusion, seed, timings, overlay, options, images).ToInfo(),
                    Images = reportImages,
                })), overwrite);
            }
            run.WriteManifest(Manifest(run, methods, layers, targetText, convention, fusion, seed, timings, overlay, options, images));
        }
        catch
        {
            var unfinished = new HashSet<string>(batchFiles, StringComparer.Ordinal);
            run.RollBack(resume ? name => !unfinished.Contains(name) : null);
            throw;
        }
        _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{images} image(s), {methods.Count} method(s) in {clock.Elapsed.TotalSeconds:F2} s; {run.Results!.Rows} row(s) added to {Path.Combine(plan.Folder, ResultsIndex.FileName)}; manifest {Path.Combine(plan.Folder, run.ManifestName)}"));
        if (reportPath != null)
            _cli.Out.WriteLine($"report: {reportPath}");
        return 0;
    }

    private static RunManifest Manifest(
        RunHarness run, IReadOnlyList<CamMethod> methods, IReadOnlyList<string> layers, string target, Convention convention,
        LayerFusion? fusion, int seed, Dictionary<string, double> timings, OverlayOptions overlay, ExplainOptions options, int images)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in OverlayArgs.Settings(overlay))
            settings[key] = value;
        settings["aug_smooth"] = options.AugSmooth ? "true" : "false";
        settings["eigen_smooth"] = options.EigenSmooth ? "true" : "false";
        settings["images"] = images.ToString(CultureInfo.InvariantCulture);
        settings["shard"] = run.Shard.ToString();
        settings["run"] = run.RunId;
        string fusionText = fusion is { } f ? f.ToString().ToLowerInvariant()
            : (convention == Convention.PytorchGradCam ? "mean" : "max") + " (convention default)";
        return run.Manifest(methods.Select(m => m.Name).ToList(), layers, target, ConventionName(convention), fusionText, seed, timings, settings);
    }

    private static ExplainOptions WithTarget(ExplainOptions o, Target target) => new()
    {
        Layers = o.Layers, Target = target, Convention = o.Convention, Fusion = o.Fusion, AugSmooth = o.AugSmooth,
        EigenSmooth = o.EigenSmooth, Seed = o.Seed, PerturbationBatch = o.PerturbationBatch, MemoryBudgetBytes = o.MemoryBudgetBytes,
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
