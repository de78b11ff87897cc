using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Model;
using CamEngine.Reporting;
using CamEngine.Tensors;

namespace CamEngine.Cli;

/// <summary>One method's metric results, as the library returns them (null where the metric was not asked for).</summary>
internal sealed class MethodEvaluation
{
    public required string Method { get; init; }

    public required IReadOnlyList<Explanation> Explanations { get; init; }

    public ConfidenceChangeResult? AverageDrop { get; set; }

    public ConfidenceChangeResult? AverageDropPgc { get; set; }

    public DeletionInsertionResult? Deletion { get; set; }

    public DeletionInsertionResult? Insertion { get; set; }

    public RoadResult? Road { get; set; }

    public PointingGameResult? Pointing { get; set; }

    public SanityCheckResult? Sanity { get; set; }

    /// <summary>The table's columns for this method, in <see cref="EvalCommand.Columns"/> order.</summary>
    public IEnumerable<(string Column, double Value)> Summary()
    {
        if (AverageDrop is { } a)
        {
            yield return ("avgdrop", a.AverageDrop);
            yield return ("increase", a.IncreaseInConfidence);
        }
        if (AverageDropPgc is { } p)
        {
            yield return ("drop-pgc", p.DropInConfidence);
            yield return ("increase-pgc", p.IncreaseInConfidence);
        }
        if (Deletion is { } d)
            yield return ("deletion", d.MeanAuc);
        if (Insertion is { } i)
            yield return ("insertion", i.MeanAuc);
        if (Road is { } r)
        {
            yield return ("road", r.MeanCombined);
            yield return ("road-morf", r.MeanMostRelevantFirst);
            yield return ("road-lerf", r.MeanLeastRelevantFirst);
        }
        if (Pointing is { } g)
        {
            yield return ("pointing", g.HitRate);
            yield return ("energy", g.MeanEnergy);
        }
        if (Sanity is { } s)
            yield return ("sanity", s.FinalCorrelation);
    }
}

internal static class EvalCommand
{
    private const string Help = """
        usage: cam eval MODEL IMAGE... --method NAMES --metric NAMES [options]

        Computes each method's maps for the images, then faithfulness metrics of those maps, and prints a table
        (one row per method, one column per number, averaged over the images). Perturbed inputs go through the
        model --batch at a time. Perturbations act on the preprocessed input (0 = the mean colour).

        metrics (columns):
          avgdrop       average drop (%, lower is better) and increase in confidence (%, higher is better) when
                        the input is multiplied by the map (Grad-CAM++ paper); columns avgdrop, increase
          avgdrop-pgc   pytorch-grad-cam's DropInConfidence: mean of max(0, Y - O) on raw logits, not divided
                        by Y; and its IncreaseInConfidence on logits (%); columns drop-pgc, increase-pgc
          deletion      area under the score curve as the most relevant pixels are replaced by the baseline
                        (RISE; lower is better)
          insertion     area under the score curve as the most relevant pixels are put into the baseline
                        (RISE; higher is better)
          road          ROAD combined score, mean over percentiles 10..90 of (LeRF - MoRF) / 2 (higher is
                        better), with noisy linear imputation; also road-morf and road-lerf: mean score change
          pointing      pointing game hit rate (map maximum within --tolerance pixels of the box) and energy
                        (share of map mass inside the box); needs --boxes
          sanity        cascading weight randomization from the output layer down: Spearman correlation of the
                        maps with the original ones once every layer is random (lower is better)
        Default: avgdrop,deletion,insertion. all: every metric (pointing only with --boxes).

        options:
          --method NAMES        comma-separated method names, or all (default gradcam); see `cam methods`
          --metric NAMES        comma-separated metric names (above)
          --layer NAMES         layer(s) the methods explain (default: the deepest spatial layer)
          --target T            top1 (default), a class index C, or C1,C2,... (one class per image)
          --score S             softmax (default) or logit: the number avgdrop, deletion, insertion and road read
          --convention C        paper | pytorch-grad-cam (default) | torchcam
          --device D            auto|cpu|ilgpu-cpu|cuda|opencl|reference (default auto, or CAMENGINE_DEVICE)
          --batch N             perturbed inputs per forward pass, for the metrics and the perturbation methods
                                (default 32)
          --steps N             deletion/insertion intervals (default 20)
          --baseline B          zeros (default) | blur | mean: what deleted pixels become
          --blur-sigma S        Gaussian sigma in input pixels of the blur baseline (default 5)
          --noise S             ROAD imputation noise standard deviation (default 0.01)
          --boxes FILE          CSV of boxes image,x0,y0,x1,y1 (image: file name or stem; inclusive pixel
                                coordinates at the model's input resolution; several lines make a union)
          --tolerance PX        pointing game tolerance in pixels (default 15)
          --seed N              seed of ROAD's noise, the sanity check's weights and stochastic methods (default 0)
          --csv FILE            also write the table as CSV (invariant culture)
          --json FILE           also write every number (per-image scores, curves, steps) as JSON
          --out DIR             also write the curves as PNG line charts, DIR/eval.deletion.png,
                                DIR/eval.insertion.png and DIR/eval.road.png (for the metrics asked for: the
                                score averaged over the images, one line per method), and DIR/manifest.json (model
                                path and SHA-256, settings, device, versions, times per method and metric, the
                                files written)
          --report DIR          also write DIR/index.html, one self-contained page: the run's facts, each input
                                with every method's overlay, the table and the charts
          --colormap NAME       overlays of the report: jet (default) | viridis | turbo | inferno
          --alpha A             weight of the heatmap over the image in the report, 0 to 1 (default 0.5)
          --contour PCT         outline the top PCT% of each map in the report's overlays (white, 2 px)
          --view V              report overlays: full (default), the whole photo (at most 1600 px a side) with the map over the
                                model's crop, the crop outlined in white; crop: the model's crop only
          --sign S              absolute | positive | all: how pixel-space maps (guided-backprop, saliency,
                                integrated-gradients, deconvnet, smoothgrad, guided-gradcam) are drawn, as Captum
                                does (summed over channels, clipped at 99% of the attribution mass; blues, greens,
                                or red-white-green for all). Default: all for integrated-gradients, else absolute
          --quiet               no progress line on stderr (it shows only when stderr is a console)
          --overwrite           replace existing output files (otherwise an existing file is an error)
        """;

    /// <summary>Metric names in table order.</summary>
    internal static readonly string[] MetricNames = ["avgdrop", "avgdrop-pgc", "deletion", "insertion", "road", "pointing", "sanity"];

    /// <summary>The metrics with a chart (eval.NAME.png), in chart order.</summary>
    internal static readonly string[] ChartMetrics = ["deletion", "insertion", "road"];

    /// <summary>Every column the table can have, in order.</summary>
    internal static readonly string[] Columns =
        ["avgdrop", "increase", "drop-pgc", "increase-pgc", "deletion", "insertion", "road", "road-morf", "road-lerf", "pointing", "energy", "sanity"];

    public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var a = Args.Parse(argv,
            ["--method", "--metric", "--layer", "--target", "--score", "--convention", "--device", "--batch", "--steps", "--baseline",
             "--blur-sigma", "--noise", "--boxes", "--tolerance", "--seed", "--csv", "--json", "--out", "--report",
             .. OverlayArgs.Options],
            [Outputs.Flag, "--quiet"]);
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count < 2)
            throw new UsageException("expected a model file and at least one image");
        var metrics = ParseMetrics(a.Get("--metric", "avgdrop,deletion,insertion"), a.Has("--boxes"));
        if (metrics.Contains("pointing") && !a.Has("--boxes"))
            throw new UsageException("the pointing metric needs --boxes FILE (CSV: image,x0,y0,x1,y1)");
        var methodNames = Args.List(a.Get("--method", "gradcam"));
        var methods = methodNames.Count == 1 && methodNames[0] == "all"
            ? MethodCatalog.All.Where(m => m is not ClassModel).ToList()
            : methodNames.Select(MethodCatalog.Get).DistinctBy(m => m.Name).ToList();
        if (methods.Count == 0)
            throw new UsageException("--method is empty");
        if (methods.OfType<ClassModel>().Any())
            throw new UsageException("class-model synthesizes an image, not a map of the input; it cannot be evaluated");
        var score = a.Get("--score", "softmax").Trim().ToLowerInvariant() switch
        {
            "softmax" => MetricScore.Softmax,
            "logit" => MetricScore.Logit,
            var s => throw new UsageException($"unknown score '{s}': use softmax or logit"),
        };
        var baseline = a.Get("--baseline", "zeros").Trim().ToLowerInvariant() switch
        {
            "zeros" or "zero" => PerturbationBaseline.Zeros,
            "blur" => PerturbationBaseline.Blur,
            "mean" => PerturbationBaseline.Mean,
            var s => throw new UsageException($"unknown baseline '{s}': use zeros, blur or mean"),
        };
        int batch = a.GetInt("--batch", 32, 1, 65536);
        int steps = a.GetInt("--steps", 20, 1, 100_000);
        int seed = a.GetInt("--seed", 0, int.MinValue, int.MaxValue);
        double blurSigma = GetDouble(a, "--blur-sigma", 5, 1e-3, 1000);
        double noise = GetDouble(a, "--noise", NoisyLinearImputation.DefaultNoise, 0, 1e6);
        double tolerance = GetDouble(a, "--tolerance", PointingGame.DefaultTolerance, 0, 1e9);
        var convention = ExplainCommand.ParseConvention(a.Get("--convention", "pytorch-grad-cam"));
        string targetText = a.Get("--target", "top1");
        var target = ParseTarget(targetText);
        var overlayOptions = OverlayArgs.Parse(a);
        bool overwrite = a.Has(Outputs.Flag);
        string? csvPath = a.Get("--csv"), jsonPath = a.Get("--json"), outDir = a.Get("--out"), reportDir = a.Get("--report");
        // Every output is checked before any work, so that a refused run costs nothing and leaves the files alone.
        var chartNames = ChartMetrics.Where(metrics.Contains).ToList();
        string? manifestPath = outDir == null ? null : Path.Combine(outDir, RunManifest.FileName);
        var chartPaths = outDir == null ? [] : chartNames.Select(n => Path.Combine(outDir, $"eval.{n}.png")).ToList();
        string? reportPath = reportDir == null ? null : Path.Combine(reportDir, HtmlReport.FileName);
        foreach (var path in new[] { csvPath, jsonPath, manifestPath, reportPath }.Concat(chartPaths))
        {
            if (path != null)
                Outputs.CheckWritable(path, overwrite);
        }

        var clock = Stopwatch.StartNew();
        var file = ModelFile.Load(a.Positionals[0]);
        var images = new List<InputImage>();
        var sources = new List<string>();
        foreach (var path in a.Positionals.Skip(1))
        {
            foreach (var image in InputLoader.Load(path, file.Graph))
            {
                images.Add(image);
                sources.Add(path);
            }
        }
        List<GroundTruth>? truths = null;
        if (metrics.Contains("pointing"))
        {
            string boxPath = a.Get("--boxes")!;
            var boxes = BoxFile.Read(boxPath);
            int h = file.Graph.InputShape[1], w = file.Graph.InputShape[2];
            truths = images.Select((img, i) => GroundTruth.FromBoxes(h, w,
                BoxFile.Find(boxes, sources[i], img.Stem)
                ?? throw new InvalidInputException($"{boxPath}: no box for image '{img.Stem}' ({Path.GetFileName(sources[i])})"))).ToList();
        }

        using var backend = Devices.Open(a.Get("--device"));
        using var model = DeviceModel.Load(file, backend);
        var explainer = new Explainer(model);
        var input = InputLoader.Stack(images);
        var explainOptions = new ExplainOptions
        {
            Layers = Args.List(a.Get("--layer")), Target = target, Convention = convention, Seed = seed, PerturbationBatch = batch,
        };
        stdout.WriteLine($"device: {backend.Name} ({backend.DeviceDescription})");
        if (methods.Any(m => m.UsesLayers))
            stdout.WriteLine($"layer: {string.Join(", ", explainer.ResolveLayers(explainOptions.Layers).Select(l => l.Output))}");

        var evaluator = new MetricEvaluator(explainer);
        var curveOptions = new DeletionInsertionOptions
        {
            Steps = steps, Baseline = baseline, BlurSigma = blurSigma, BatchSize = batch, Score = score,
        };
        // Progress counts one unit per image, method and stage (the maps, then each metric); a metric's own
        // progress reports move the line within its share.
        using var progress = ConsoleProgress.ForStderr("eval", images.Count * methods.Count * (1 + metrics.Count), stderr,
            a.Has("--quiet"));
        var stage = new StageProgress(progress, images.Count);
        // Milliseconds per method (its maps) and per "method metric".
        var timings = new Dictionary<string, double>(StringComparer.Ordinal);
        T Timed<T>(string key, Func<IProgress<MetricProgress>, T> work)
        {
            long t0 = Stopwatch.GetTimestamp();
            stage.Begin();
            var result = work(stage);
            stage.End();
            timings[key] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            return result;
        }
        var results = new List<MethodEvaluation>();
        foreach (var method in methods)
        {
            // One call per method, so that each method's time is its own (its forward pass included).
            var explanations = Timed(method.Name, _ => explainer.Explain(input, method, explainOptions));
            var r = new MethodEvaluation { Method = method.Name, Explanations = explanations };
            string key = method.Name + " ";
            if (metrics.Contains("avgdrop"))
            {
                r.AverageDrop = Timed(key + "avgdrop", p => evaluator.ConfidenceChange(input, explanations,
                    new MetricOptions { BatchSize = batch, Score = score }, p));
            }
            if (metrics.Contains("avgdrop-pgc"))
            {
                r.AverageDropPgc = Timed(key + "avgdrop-pgc", p => evaluator.ConfidenceChange(input, explanations,
                    new MetricOptions { BatchSize = batch, Score = MetricScore.Logit }, p));
            }
            if (metrics.Contains("deletion"))
                r.Deletion = Timed(key + "deletion", p => evaluator.Deletion(input, explanations, curveOptions, p));
            if (metrics.Contains("insertion"))
                r.Insertion = Timed(key + "insertion", p => evaluator.Insertion(input, explanations, curveOptions, p));
            if (metrics.Contains("road"))
            {
                r.Road = Timed(key + "road", p => evaluator.Road(input, explanations,
                    new RoadOptions { BatchSize = batch, Score = score, Noise = noise, Seed = seed }, p));
            }
            if (truths != null)
            {
                r.Pointing = Timed(key + "pointing", _ => PointingGame.Evaluate(explanations.Select(e => e.Map).ToList(),
                    explanations.Select(e => truths[e.Image]).ToList(), tolerance));
            }
            if (metrics.Contains("sanity"))
            {
                r.Sanity = Timed(key + "sanity", p => evaluator.SanityCheck(input, method, explainOptions,
                    new SanityCheckOptions { Seed = seed }, p));
            }
            results.Add(r);
        }
        progress.Finish();

        var columns = Columns.Where(c => results[0].Summary().Any(s => s.Column == c)).ToList();
        WriteTable(stdout, results, columns);
        var written = new List<string>();
        foreach (var path in new[] { csvPath, jsonPath, manifestPath })
        {
            if (path != null && Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder)
                Directory.CreateDirectory(folder);
        }
        if (csvPath != null)
        {
            AtomicFile.Write(csvPath, s => WriteCsv(s, results, columns));
            written.Add(csvPath);
        }
        if (jsonPath != null)
        {
            AtomicFile.Write(jsonPath, s => WriteJson(s, results, images.Select(i => i.Stem).ToList(), file, backend, metrics,
                score, curveOptions, noise, tolerance, seed, target));
            written.Add(jsonPath);
        }
        var charts = outDir != null || reportDir != null ? EvalCharts.Build(results, score, images.Count) : [];
        if (outDir != null)
        {
            foreach (var chart in charts)
            {
                string path = Path.Combine(outDir, chart.FileName);
                Overlay.WritePng(chart.Image, path);
                written.Add(path);
            }
        }

        var layers = methods.Any(m => m.UsesLayers) ? explainer.ResolveLayers(explainOptions.Layers) : [];
        var manifest = new RunManifest
        {
            Command = "eval", ModelPath = a.Positionals[0], ModelSha256 = RunManifest.Sha256Of(a.Positionals[0]),
            Methods = methods.Select(m => m.Name).ToList(), Layers = layers.Select(l => l.Output).ToList(),
            Target = targetText, Convention = ExplainCommand.ConventionName(convention),
            Fusion = CamPostprocess.DefaultFusion(convention).ToString().ToLowerInvariant() + " (convention default)",
            Seed = seed, Device = backend.Name, DeviceDescription = backend.DeviceDescription, TimingsMs = timings,
            Settings = OverlayArgs.Table(Settings(a, metrics, score, curveOptions, noise, tolerance, images.Count, reportDir != null,
                overlayOptions)),
        };
        if (reportDir != null)
        {
            var content = new ReportContent
            {
                Title = $"CamEngine eval: {Path.GetFileName(a.Positionals[0])}",
                Info = manifest.ToInfo(),
                Images = images.Select((img, i) => new ReportImage
                {
                    Name = img.Stem,
                    Input = OverlayArgs.Input(img, overlayOptions),
                    Overlays = results.Select(r => (r.Method, OverlayArgs.Picture(img, r.Explanations[i], overlayOptions, file.Graph.Preprocessing))).ToList(),
                }).ToList(),
                Table = new ReportTable
                {
                    Caption = $"Metrics (mean over {images.Count} image(s))",
                    Headers = ["method", .. columns],
                    Rows = TableRows(results, columns),
                },
                Charts = charts.Select(c => (c.Caption, c.Image)).ToList(),
            };
            written.Add(HtmlReport.Write(reportDir, content));
        }
        if (outDir != null)
        {
            string manifestDir = Path.GetFullPath(outDir);
            manifest = manifest with
            {
                Files = written.Select(f => Path.GetRelativePath(manifestDir, Path.GetFullPath(f)).Replace('\\', '/')).ToList(),
                CreatedUtc = DateTime.UtcNow,
            };
            manifest.Write(manifestPath!);
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{images.Count} image(s), {methods.Count} method(s), {metrics.Count} metric(s) in {clock.Elapsed.TotalSeconds:F2} s"));
        if (outDir != null)
            stdout.WriteLine($"charts and manifest: {outDir}");
        if (reportPath != null)
            stdout.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>The run's settings beyond the manifest's own fields, in a fixed order (only those that apply).</summary>
    private static IEnumerable<(string Key, string Value)> Settings(
        Args a, IReadOnlyList<string> metrics, MetricScore score, DeletionInsertionOptions curves, double noise,
        double tolerance, int images, bool report, OverlayOptions overlay)
    {
        string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        yield return ("metrics", string.Join(",", metrics));
        yield return ("score", score == MetricScore.Softmax ? "softmax" : "logit");
        yield return ("batch", curves.BatchSize.ToString(CultureInfo.InvariantCulture));
        if (metrics.Contains("deletion") || metrics.Contains("insertion"))
        {
            yield return ("steps", curves.Steps.ToString(CultureInfo.InvariantCulture));
            yield return ("baseline", curves.Baseline.ToString().ToLowerInvariant());
            if (curves.Baseline == PerturbationBaseline.Blur)
                yield return ("blur_sigma", Text(curves.BlurSigma));
        }
        if (metrics.Contains("road"))
            yield return ("noise", Text(noise));
        if (metrics.Contains("pointing"))
        {
            yield return ("boxes", a.Get("--boxes")!);
            yield return ("tolerance", Text(tolerance));
        }
        yield return ("images", images.ToString(CultureInfo.InvariantCulture));
        if (report)
        {
            foreach (var setting in OverlayArgs.Settings(overlay))
                yield return setting;
        }
    }

    internal static List<string> ParseMetrics(string text, bool haveBoxes)
    {
        var names = Args.List(text).Select(n => n.ToLowerInvariant()).ToList();
        if (names.Count == 1 && names[0] == "all")
            return MetricNames.Where(m => m != "pointing" || haveBoxes).ToList();
        if (names.Count == 0)
            throw new UsageException("--metric is empty");
        foreach (var n in names)
        {
            if (!MetricNames.Contains(n))
                throw new UsageException($"unknown metric '{n}'; use {string.Join(", ", MetricNames)} or all");
        }
        return MetricNames.Where(names.Contains).ToList();
    }

    private static Target ParseTarget(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t.StartsWith("similar:", StringComparison.Ordinal) || t.StartsWith("cosine:", StringComparison.Ordinal))
            throw new UsageException("the metrics score a class; similarity targets cannot be evaluated");
        if (t.StartsWith("softmax", StringComparison.Ordinal))
            throw new UsageException("--target picks the class; choose the score the metrics read with --score softmax|logit");
        return Target.Parse(text);
    }

    private static double GetDouble(Args a, string name, double fallback, double min, double max)
    {
        string? v = a.Get(name);
        if (v == null)
            return fallback;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double r) || !(r >= min && r <= max))
            throw new UsageException($"{name} must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}, got '{v}'");
        return r;
    }

    private static string Number(double v) =>
        double.IsNaN(v) ? "nan" : v.ToString("F4", CultureInfo.InvariantCulture);

    /// <summary>The table's rows as printed: the method, then each column's value to 4 decimals.</summary>
    internal static List<IReadOnlyList<string>> TableRows(IReadOnlyList<MethodEvaluation> results, IReadOnlyList<string> columns) =>
        results.Select(r =>
        {
            var values = r.Summary().ToDictionary(s => s.Column, s => s.Value, StringComparer.Ordinal);
            return (IReadOnlyList<string>)[r.Method, .. columns.Select(c => Number(values[c]))];
        }).ToList();

    internal static void WriteTable(TextWriter o, IReadOnlyList<MethodEvaluation> results, IReadOnlyList<string> columns)
    {
        var rows = TableRows(results, columns).Select(r => r.ToArray()).ToList();
        string[] header = ["method", .. columns];
        var widths = header.Select((h, k) => Math.Max(h.Length, rows.Max(r => r[k].Length))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, k) => k == 0 ? c.PadRight(widths[k]) : c.PadLeft(widths[k])));
        o.WriteLine(Line(header));
        foreach (var row in rows)
            o.WriteLine(Line(row));
    }

    private static void WriteCsv(Stream stream, IReadOnlyList<MethodEvaluation> results, IReadOnlyList<string> columns)
    {
        using var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
        w.Write("method");
        foreach (var c in columns)
            w.Write("," + c);
        w.Write('\n');
        foreach (var r in results)
        {
            var values = r.Summary().ToDictionary(s => s.Column, s => s.Value, StringComparer.Ordinal);
            w.Write(r.Method);
            foreach (var c in columns)
                w.Write("," + (double.IsNaN(values[c]) ? "nan" : values[c].ToString("R", CultureInfo.InvariantCulture)));
            w.Write('\n');
        }
    }

    private static void WriteJson(
        Stream stream, IReadOnlyList<MethodEvaluation> results, List<string> stems, ModelFile file, Backend backend,
        IReadOnlyList<string> metrics, MetricScore score, DeletionInsertionOptions curves, double noise, double tolerance, int seed,
        Target target)
    {
        using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteString("cam", Program.Version);
        j.WriteString("device", backend.Name);
        j.WriteString("target", target.ToString());
        j.WriteString("score", score == MetricScore.Softmax ? "softmax" : "logit");
        j.WriteNumber("inputHeight", file.Graph.InputShape[1]);
        j.WriteNumber("inputWidth", file.Graph.InputShape[2]);
        Strings(j, "metrics", metrics);
        Strings(j, "images", stems);
        j.WriteStartObject("options");
        j.WriteNumber("batch", curves.BatchSize);
        j.WriteNumber("steps", curves.Steps);
        j.WriteString("baseline", curves.Baseline.ToString().ToLowerInvariant());
        j.WriteNumber("blurSigma", curves.BlurSigma);
        j.WriteNumber("noise", noise);
        j.WriteNumber("tolerance", tolerance);
        j.WriteNumber("seed", seed);
        j.WriteEndObject();
        j.WriteStartObject("methods");
        foreach (var r in results)
        {
            j.WriteStartObject(r.Method);
            j.WriteStartObject("summary");
            foreach (var (column, value) in r.Summary())
                Num(j, column, value);
            j.WriteEndObject();
            j.WriteStartArray("explanations");
            foreach (var e in r.Explanations)
            {
                j.WriteStartObject();
                j.WriteString("image", stems[e.Image]);
                j.WriteNumber("class", e.TargetClass);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            foreach (var (name, change) in new[] { ("avgdrop", r.AverageDrop), ("avgdrop-pgc", r.AverageDropPgc) })
            {
                if (change == null)
                    continue;
                j.WriteStartObject(name);
                j.WriteString("score", change.Score == MetricScore.Softmax ? "softmax" : "logit");
                Nums(j, "original", change.Original);
                Nums(j, "masked", change.Masked);
                Num(j, "averageDrop", change.AverageDrop);
                Num(j, "increaseInConfidence", change.IncreaseInConfidence);
                Num(j, "dropInConfidence", change.DropInConfidence);
                j.WriteEndObject();
            }
            foreach (var (name, result) in new[] { ("deletion", r.Deletion), ("insertion", r.Insertion) })
            {
                if (result == null)
                    continue;
                j.WriteStartObject(name);
                Num(j, "meanAuc", result.MeanAuc);
                j.WriteStartArray("curves");
                foreach (var c in result.Curves)
                {
                    j.WriteStartObject();
                    j.WriteString("image", stems[c.Image]);
                    j.WriteNumber("class", c.TargetClass);
                    Num(j, "auc", c.Auc);
                    Nums(j, "fractions", c.Fractions);
                    Nums(j, "scores", c.Scores);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            if (r.Road is { } road)
            {
                j.WriteStartObject("road");
                j.WriteStartArray("percentiles");
                foreach (int p in road.Percentiles)
                    j.WriteNumberValue(p);
                j.WriteEndArray();
                Nums(j, "original", road.Original);
                Nested(j, "mostRelevantFirst", road.MostRelevantFirst);
                Nested(j, "leastRelevantFirst", road.LeastRelevantFirst);
                Nums(j, "combined", Enumerable.Range(0, road.Original.Length).Select(road.Combined).ToArray());
                Num(j, "meanCombined", road.MeanCombined);
                j.WriteEndObject();
            }
            if (r.Pointing is { } g)
            {
                j.WriteStartObject("pointing");
                j.WriteStartArray("hits");
                foreach (bool h in g.Hits)
                    j.WriteBooleanValue(h);
                j.WriteEndArray();
                Nums(j, "energies", g.Energies);
                j.WriteStartArray("points");
                foreach (var (x, y) in g.Points)
                {
                    j.WriteStartArray();
                    j.WriteNumberValue(x);
                    j.WriteNumberValue(y);
                    j.WriteEndArray();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            if (r.Sanity is { } s)
            {
                j.WriteStartArray("sanity");
                foreach (var step in s.Steps)
                {
                    j.WriteStartObject();
                    j.WriteNumber("step", step.Index);
                    j.WriteString("layer", step.Layer);
                    Strings(j, "parameters", step.Parameters);
                    Nums(j, "spearman", step.Correlations);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
            }
            j.WriteEndObject();
        }
        j.WriteEndObject();
        j.WriteEndObject();
    }

    // JSON has no NaN: a NaN number is written as null.
    private static void Num(Utf8JsonWriter j, string name, double v)
    {
        if (double.IsFinite(v))
            j.WriteNumber(name, v);
        else
            j.WriteNull(name);
    }

    private static void Nums(Utf8JsonWriter j, string name, IEnumerable<double> values)
    {
        j.WriteStartArray(name);
        foreach (double v in values)
        {
            if (double.IsFinite(v))
                j.WriteNumberValue(v);
            else
                j.WriteNullValue();
        }
        j.WriteEndArray();
    }

    private static void Nested(Utf8JsonWriter j, string name, double[][] values)
    {
        j.WriteStartArray(name);
        foreach (var row in values)
        {
            j.WriteStartArray();
            foreach (double v in row)
                j.WriteNumberValue(v);
            j.WriteEndArray();
        }
        j.WriteEndArray();
    }

    private static void Strings(Utf8JsonWriter j, string name, IEnumerable<string> values)
    {
        j.WriteStartArray(name);
        foreach (var v in values)
            j.WriteStringValue(v);
        j.WriteEndArray();
    }
}

/// <summary>
/// Turns one library call's <see cref="MetricProgress"/> reports into the command's progress line: a stage is worth
/// <c>units</c> items (the images), and a report of Done/Total moves the line to the stage's start plus that share.
/// Reports arrive on the calling thread (no <see cref="Progress{T}"/>, which would post them late).
/// </summary>
internal sealed class StageProgress(ConsoleProgress progress, int units) : IProgress<MetricProgress>
{
    private int _start;

    public void Begin() => _start = progress.Done;

    public void Report(MetricProgress value)
    {
        if (value.Total > 0)
            progress.Report(_start + (int)((long)units * Math.Clamp(value.Done, 0, value.Total) / value.Total));
    }

    public void End() => progress.Report(_start + units);
}
