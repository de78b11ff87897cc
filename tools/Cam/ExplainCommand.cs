using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Reporting;

namespace CamEngine.Cli;

internal static class ExplainCommand
{
    private const string Help = """
        usage: cam explain MODEL IMAGE... --method NAME[,NAME...]|all [options]

        For every image and method writes STEM.METHOD.png (the map over the image, jet colormap unless
        --colormap says otherwise; for class-model the synthesized image itself) and, with
        --npy, STEM.METHOD.npy (the final map, float32 (H,W) in [0,1] at input resolution) and
        STEM.METHOD.raw.npy (the map at layer resolution before ReLU and normalization; for pixel-space
        methods the signed (C,H,W) attribution). With several methods also STEM.grid.png: one labelled tile
        per method. With a top-K target every name gets the class: STEM.METHOD.cC.png.
        Every run also writes manifest.json (model path and SHA-256, settings, device, versions, per-method
        times, the files written); with --report DIR, DIR/index.html shows the inputs and overlays in one
        self-contained page. Long runs show a progress line with an ETA on stderr (not when redirected).

        options:
          --method NAMES        comma-separated method names, or all (default gradcam); see `cam methods`
          --param K=V[,K=V...]  method parameters, e.g. samples=50,sigma=0.2 or sscam.samples=8 (METHOD.KEY for one
                                method); `cam methods` lists each method's keys and defaults
          --layer NAMES         layer(s) to explain: output tensor, node name or module path (e.g. layer4);
                                several layers are fused (see --fusion).
                                Default: the deepest spatial layer (see `cam info`)
          --target T            top1 (default), a class index C, topK (e.g. top3: one map per class),
                                softmax or softmax:C (softmax probability instead of the logit),
                                C1,C2,... (one class per image, in order), similar:IMAGE or cosine:IMAGE
                                (dot product or cosine of the output embedding with IMAGE's embedding)
          --convention C        paper | pytorch-grad-cam (default) | torchcam: formula variants and
                                post-processing order (see the README's Conventions table)
          --fusion F            mean | max | product: how several layers combine (default: mean for
                                pytorch-grad-cam, max for torchcam and paper)
          --aug-smooth          average over horizontal flip x pixel values times 0.9/1/1.1 (6 passes)
          --eigen-smooth        map = first principal component of the weighted activations
          --seed N              seed of every random draw (default 0): same seed, same map
          --out DIR             output folder (default: the current folder), created if missing
          --npy                 also write the maps as .npy files
          --colormap NAME       jet (default) | viridis | turbo | inferno
          --alpha A             weight of the heatmap over the image, 0 to 1 (default 0.5)
          --contour PCT         outline the top PCT% of each map (values >= its (100-PCT)th percentile) in
                                white, 2 px; PCT in (0, 100]
          --view V              full (default): the whole photo (at most 1600 px a side) with the map over the
                                model's crop, the crop outlined in white; crop: the model's crop only
          --sign S              absolute | positive | all: how pixel-space maps (guided-backprop, saliency,
                                integrated-gradients, deconvnet, smoothgrad, guided-gradcam) are drawn, as Captum
                                does (summed over channels, clipped at 99% of the attribution mass; blues, greens,
                                or red-white-green for all). Default: all for integrated-gradients, else absolute
          --report DIR          also write DIR/index.html: the run's facts, each input and its overlays
          --quiet               no progress line on stderr
          --overwrite           replace existing output files (otherwise an existing file is an error)
          --device D            auto|cpu|ilgpu-cpu|cuda|opencl|reference (default auto, or CAMENGINE_DEVICE)
          --batch N             images per forward pass (default 8)
          --perturbation-batch N  masked/ablated/noisy inputs per pass of scorecam, sscam, iscam, ablationcam,
                                smoothgrad, integrated-gradients (default 32)
          --labels FILE         class labels, one per line (default: the labels stored in the model)
        """;

    public static Convention ParseConvention(string text) => text.Trim().ToLowerInvariant() switch
    {
        "paper" => Convention.Paper,
        "pytorch-grad-cam" or "pgc" or "pytorch_grad_cam" => Convention.PytorchGradCam,
        "torchcam" or "tc" or "torch-cam" => Convention.TorchCam,
        _ => throw new UsageException($"unknown convention '{text}': use paper, pytorch-grad-cam or torchcam"),
    };

    public static LayerFusion ParseFusion(string text) => text.Trim().ToLowerInvariant() switch
    {
        "mean" => LayerFusion.Mean,
        "max" => LayerFusion.Max,
        "product" => LayerFusion.Product,
        _ => throw new UsageException($"unknown fusion '{text}': use mean, max or product"),
    };

    public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var a = Args.Parse(argv,
            ["--method", "--layer", "--target", "--out", "--device", "--batch", "--labels", "--convention", "--fusion", "--seed",
             "--perturbation-batch", "--param", "--report", .. OverlayArgs.Options],
            ["--npy", "--aug-smooth", "--eigen-smooth", Outputs.Flag, "--quiet"]);
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count < 2)
            throw new UsageException("expected a model file and at least one image");
        var methodNames = Args.List(a.Get("--method", "gradcam"));
        var methods = methodNames.Count == 1 && methodNames[0] == "all"
            ? MethodCatalog.All.ToList()
            : methodNames.Select(MethodCatalog.Get).DistinctBy(m => m.Name).ToList();
        if (methods.Count == 0)
            throw new UsageException("--method is empty");
        methods = [.. MethodCatalog.WithParameters(methods, a.Get("--param"))];
        string targetText = a.Get("--target", "top1").Trim();
        int batch = a.GetInt("--batch", 8, 1, 4096);
        int seed = a.GetInt("--seed", 0, int.MinValue, int.MaxValue);
        string outDir = a.Get("--out", ".");
        bool npy = a.Has("--npy");
        bool overwrite = a.Has(Outputs.Flag);
        var convention = ParseConvention(a.Get("--convention", "pytorch-grad-cam"));
        LayerFusion? fusion = a.Get("--fusion") is { } f ? ParseFusion(f) : null;
        int perturbationBatch = a.GetInt("--perturbation-batch", 32, 1, 65536);
        var overlayOptions = OverlayArgs.Parse(a);
        string? reportDir = a.Get("--report");
        string manifestPath = Path.Combine(outDir, RunManifest.FileName);
        Outputs.CheckWritable(manifestPath, overwrite);
        if (reportDir != null)
            Outputs.CheckWritable(Path.Combine(reportDir, HtmlReport.FileName), overwrite);

        var clock = Stopwatch.StartNew();
        var file = ModelFile.Load(a.Positionals[0]);
        string[]? labels = a.Get("--labels") is { } lf ? File.ReadAllLines(lf) : file.Graph.Labels;
        var images = a.Positionals.Skip(1).SelectMany(p => InputLoader.Load(p, file.Graph)).ToList();
        var stems = images.GroupBy(i => i.Stem).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (stems.Count > 0)
            throw new CamEngineException($"two inputs share the output name '{stems[0]}'; rename one of them");
        Directory.CreateDirectory(outDir);

        using var backend = Devices.Open(a.Get("--device"));
        using var model = DeviceModel.Load(file, backend);
        var explainer = new Explainer(model);
        var target = ResolveTarget(targetText, explainer, file, images.Count);
        var options = new ExplainOptions
        {
            Layers = Args.List(a.Get("--layer")), Target = target.Target, Convention = convention, Fusion = fusion,
            AugSmooth = a.Has("--aug-smooth"), EigenSmooth = a.Has("--eigen-smooth"), Seed = seed,
            PerturbationBatch = perturbationBatch,
        };
        var layers = methods.Any(m => m.UsesLayers) ? explainer.ResolveLayers(options.Layers) : [];
        stdout.WriteLine($"device: {backend.Name} ({backend.DeviceDescription})");
        if (layers.Count > 0)
            stdout.WriteLine($"layer{(layers.Count > 1 ? "s" : "")}: {string.Join(", ", layers.Select(l => l.Output))}");

        var written = new List<string>();
        var timings = methods.ToDictionary(m => m.Name, _ => 0.0, StringComparer.Ordinal);
        var reportImages = new List<ReportImage>();
        using var progress = ConsoleProgress.ForStderr("explain", images.Count * methods.Count, stderr, a.Has("--quiet"));
        int done = 0;
        for (int start = 0; start < images.Count; start += batch)
        {
            var chunk = images.Skip(start).Take(batch).ToList();
            var chunkOptions = target.PerImage is { } all
                ? new ExplainOptions
                {
                    Layers = options.Layers, Target = Target.PerImage(all[start..(start + chunk.Count)]),
                    Convention = options.Convention, Fusion = options.Fusion, AugSmooth = options.AugSmooth,
                    EigenSmooth = options.EigenSmooth, Seed = options.Seed, PerturbationBatch = options.PerturbationBatch,
                }
                : options;
            // One call per method, so that each method's time is its own (its forward pass included).
            var input = InputLoader.Stack(chunk);
            var results = new Dictionary<string, IReadOnlyList<Explanation>>(StringComparer.Ordinal);
            foreach (var method in methods)
            {
                long t0 = Stopwatch.GetTimestamp();
                results[method.Name] = explainer.Explain(input, method, chunkOptions);
                timings[method.Name] += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                progress.Advance(chunk.Count);
            }
            bool perClass = results[methods[0].Name].Count > chunk.Count;
            var tiles = chunk.Select(_ => new List<(string, RgbImage)>()).ToList();
            var tileMaps = chunk.Select(_ => new List<Explanation>()).ToList();
            foreach (var method in methods)
            {
                foreach (var e in results[method.Name])
                {
                    var img = chunk[e.Image];
                    string suffix = perClass ? string.Create(CultureInfo.InvariantCulture, $".c{e.TargetClass}") : "";
                    string baseName = Path.Combine(outDir, $"{img.Stem}.{method.Name}{suffix}");
                    var picture = OverlayArgs.Picture(img, e, overlayOptions, file.Graph.Preprocessing);
                    Outputs.CheckWritable(baseName + ".png", overwrite);
                    Overlay.WritePng(picture, baseName + ".png");
                    written.Add(baseName + ".png");
                    // Grid tiles share one size: the class-model image (input resolution) is scaled to the overlays'.
                    var tile = OverlayArgs.Tile(picture, img, overlayOptions);
                    tiles[e.Image].Add((perClass ? $"{method.Name} {e.TargetClass}" : method.Name, tile));
                    tileMaps[e.Image].Add(e);
                    if (npy)
                    {
                        Outputs.CheckWritable(baseName + ".npy", overwrite);
                        Outputs.CheckWritable(baseName + ".raw.npy", overwrite);
                        Npy.Write(baseName + ".npy", e.Map);
                        Npy.Write(baseName + ".raw.npy", e.Raw);
                        written.Add(baseName + ".npy");
                        written.Add(baseName + ".raw.npy");
                    }
                }
            }
            if (methods.Count > 1 || perClass)
            {
                for (int i = 0; i < chunk.Count; i++)
                {
                    string grid = Path.Combine(outDir, $"{chunk[i].Stem}.grid.png");
                    Outputs.CheckWritable(grid, overwrite);
                    Overlay.WritePng(OverlayArgs.Grid(tiles[i], tileMaps[i], chunk[i].Stem, stdout), grid);
                    written.Add(grid);
                }
            }
            if (reportDir != null)
            {
                for (int i = 0; i < chunk.Count; i++)
                    reportImages.Add(new ReportImage { Name = chunk[i].Stem, Input = OverlayArgs.Input(chunk[i], overlayOptions), Overlays = tiles[i] });
            }
            progress.Clear();
            string names = methods.Count == 1 ? methods[0].Name : "{" + string.Join(",", methods.Select(m => m.Name)) + "}";
            foreach (var e in results[methods[0].Name])
            {
                done++;
                string what = e.TargetClass < 0
                    ? "similarity"
                    : $"class {e.TargetClass}" + (labels != null && e.TargetClass < labels.Length ? $" ({labels[e.TargetClass]})" : "");
                string suffix = perClass ? string.Create(CultureInfo.InvariantCulture, $".c{e.TargetClass}") : "";
                int total = images.Count * results[methods[0].Name].Count / chunk.Count;
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{done}/{total}] {chunk[e.Image].Stem}: {what}, score {e.Score:G5} -> {Path.Combine(outDir, chunk[e.Image].Stem)}.{names}{suffix}.png"));
            }
        }
        progress.Finish();

        var manifest = new RunManifest
        {
            Command = "explain", ModelPath = a.Positionals[0], ModelSha256 = RunManifest.Sha256Of(a.Positionals[0]),
            Methods = methods.Select(m => m.Name).ToList(), Layers = layers.Select(l => l.Output).ToList(),
            Target = targetText, Convention = ConventionName(convention),
            Fusion = (fusion ?? CamPostprocess.DefaultFusion(convention)).ToString().ToLowerInvariant()
                     + (fusion == null ? " (convention default)" : ""),
            Seed = seed, Device = backend.Name, DeviceDescription = backend.DeviceDescription,
            TimingsMs = timings,
            Settings = OverlayArgs.Table(
            [
                .. OverlayArgs.Settings(overlayOptions),
                ("aug_smooth", options.AugSmooth ? "true" : "false"),
                ("eigen_smooth", options.EigenSmooth ? "true" : "false"),
                ("images", images.Count.ToString(CultureInfo.InvariantCulture)),
            ]),
        };
        if (reportDir != null)
        {
            var content = new ReportContent
            {
                Title = $"CamEngine explain: {Path.GetFileName(a.Positionals[0])}",
                Info = manifest.ToInfo(),
                Images = reportImages,
            };
            written.Add(HtmlReport.Write(reportDir, content));
        }
        string manifestDir = Path.GetFullPath(outDir);
        manifest = manifest with
        {
            Files = written.Select(f => Path.GetRelativePath(manifestDir, Path.GetFullPath(f)).Replace('\\', '/')).ToList(),
            CreatedUtc = DateTime.UtcNow,
        };
        manifest.Write(manifestPath);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{images.Count} image(s), {methods.Count} method(s) in {clock.Elapsed.TotalSeconds:F2} s"));
        if (reportDir != null)
            stdout.WriteLine($"report: {Path.Combine(reportDir, HtmlReport.FileName)}");
        return 0;
    }

    internal static string ConventionName(Convention c) => c switch
    {
        Convention.Paper => "paper",
        Convention.PytorchGradCam => "pytorch-grad-cam",
        Convention.TorchCam => "torchcam",
        _ => c.ToString(),
    };

    /// <summary>The target, with similarity references embedded by the model and per-image lists kept whole
    /// (they are sliced per batch).</summary>
    private static (Target Target, int[]? PerImage) ResolveTarget(string text, Explainer explainer, ModelFile file, int imageCount)
    {
        string lower = text.ToLowerInvariant();
        foreach (var (prefix, cosine) in new[] { ("similar:", false), ("cosine:", true) })
        {
            if (!lower.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            var reference = InputLoader.Load(text[prefix.Length..], file.Graph);
            if (reference.Count != 1)
                throw new CamEngineException($"the reference '{text[prefix.Length..]}' holds {reference.Count} images; give one");
            return (Target.Similarity(explainer.Outputs(InputLoader.Stack(reference)), cosine), null);
        }
        if (text.Contains(',', StringComparison.Ordinal))
        {
            var parts = Args.List(text);
            var classes = new int[parts.Count];
            for (int i = 0; i < parts.Count; i++)
            {
                if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out classes[i]))
                    throw new UsageException($"--target '{text}': '{parts[i]}' is not a class index");
            }
            if (classes.Length != imageCount)
                throw new UsageException($"--target names {classes.Length} classes for {imageCount} image(s); give one per image");
            return (Target.PerImage(classes), classes);
        }
        return (Target.Parse(text), null);
    }
}

internal static class PredictCommand
{
    private const string Help = """
        usage: cam predict MODEL IMAGE... [options]

        Prints the K highest raw scores (logits) and softmax probabilities per image.

        options:
          --top K               classes per image, highest first (default 5)
          --labels FILE         class labels, one per line (default: the labels stored in the model)
          --device D            auto|cpu|ilgpu-cpu|cuda|opencl|reference (default auto, or CAMENGINE_DEVICE)
          --batch N             images per forward pass (default 8)
        """;

    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv, ["--top", "--labels", "--device", "--batch"], []);
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count < 2)
            throw new UsageException("expected a model file and at least one image");
        int top = a.GetInt("--top", 5, 1, 1_000_000);
        int batch = a.GetInt("--batch", 8, 1, 4096);
        var file = ModelFile.Load(a.Positionals[0]);
        string[]? labels = a.Get("--labels") is { } lf ? File.ReadAllLines(lf) : file.Graph.Labels;
        var images = a.Positionals.Skip(1).SelectMany(p => InputLoader.Load(p, file.Graph)).ToList();
        using var backend = Devices.Open(a.Get("--device"));
        using var model = DeviceModel.Load(file, backend);
        for (int start = 0; start < images.Count; start += batch)
        {
            var chunk = images.Skip(start).Take(batch).ToList();
            using var x = backend.Upload(InputLoader.Stack(chunk));
            using var pass = model.Forward(x);
            var y = backend.Download(pass.Output);
            int k = y.Length / chunk.Count;
            for (int i = 0; i < chunk.Count; i++)
            {
                var row = y.AsSpan(i * k, k).ToArray();
                double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
                stdout.WriteLine(chunk[i].Stem);
                foreach (int c in Enumerable.Range(0, k).OrderByDescending(c => row[c]).Take(top))
                {
                    string label = labels != null && c < labels.Length ? $" {labels[c]}" : "";
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {c,5}{label}: logit {row[c]:G5}, p {Math.Exp(row[c] - max) / sum:F4}"));
                }
            }
        }
        return 0;
    }
}
