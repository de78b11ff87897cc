using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Reporting;

namespace CamEngine.Cli;

/// <summary>One method's metric results, as the library returns them (null where the metric was not asked for).</summary>
internal sealed class MethodEvaluation
{
    public required string Method { get; init; }

    public required IReadOnlyList<CamResult> Explanations { get; init; }

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
internal sealed class EvalCommand
{
    private const string Description = """
        Computes each method's maps for the images, then faithfulness metrics of those maps, and prints a table (one row per
        method, one column per number, averaged over the images). Perturbed inputs go through the model --batch at a time;
        perturbations act on the preprocessed input (0 = the mean colour). Metrics (columns): avgdrop (average drop %, lower
        is better, and increase in confidence %; Grad-CAM++ paper), avgdrop-pgc (pytorch-grad-cam's DropInConfidence and
        IncreaseInConfidence on logits), deletion and insertion (RISE AUCs; lower / higher is better), road (ROAD combined
        score with noisy linear imputation, also road-morf and road-lerf), pointing (pointing game hit rate and energy; needs
        --boxes), sanity (cascading weight randomization: Spearman correlation once every layer is random; lower is
        better). Default: avgdrop,deletion,insertion; all: every metric (pointing only with --boxes). With --out also
        OUT/results.csv rows (one per image x method x class), OUT/manifest.RUN.json and the curves as PNG charts.
        """;

    /// <summary>Metric names in table order.</summary>
    internal static readonly string[] MetricNames = ["avgdrop", "avgdrop-pgc", "deletion", "insertion", "road", "pointing", "sanity"];

    /// <summary>Every column the table can have, in order.</summary>
    internal static readonly string[] Columns =
        ["avgdrop", "increase", "drop-pgc", "increase-pgc", "deletion", "insertion", "road", "road-morf", "road-lerf", "pointing", "energy", "sanity"];

    private static readonly string[] s_chartMetrics = ["deletion", "insertion", "road"];

    private readonly CliContext _cli;
    private readonly Argument<string> _model = CliOptions.Model();
    private readonly InputArgs _inputs;
    private readonly OverlayArgs _overlay;
    private readonly Option<string> _method = CliOptions.Text("--method", "NAMES", "comma-separated method names, or all (default gradcam); see `cam methods`");
    private readonly Option<string> _metric = CliOptions.Text("--metric", "NAMES", "comma-separated metric names (see above), or all");
    private readonly Option<string> _layer = CliOptions.Text("--layer", "NAMES", "layer(s) the methods explain (default: the deepest spatial layer)");
    private readonly Option<string> _layout = CliOptions.Text("--layout", "L", "auto (default) | nchw | nhwc | tokens | tokens:K: how the layer is read as a (C, h, w) grid, as in `cam explain`");
    private readonly Option<string> _target = CliOptions.Text("--target", "T", "top1 (default), a class index C or label, or C1,C2,... (one class or label per image)");
    private readonly Option<string> _score = CliOptions.Text("--score", "S", "softmax (default) or logit: the number avgdrop, deletion, insertion and road read");
    private readonly Option<string> _convention = CliOptions.Text("--convention", "C", "paper | pytorch-grad-cam (default) | torchcam");
    private readonly Option<string> _device = CliOptions.Device();
    private readonly Option<string> _batch = CliOptions.Text("--batch", "N", "perturbed inputs per forward pass, for the metrics and the perturbation methods (default 32)");
    private readonly Option<string> _steps = CliOptions.Text("--steps", "N", "deletion/insertion intervals (default 20)");
    private readonly Option<string> _baseline = CliOptions.Text("--baseline", "B", "zeros (default) | blur | mean: what deleted pixels become");
    private readonly Option<string> _blurSigma = CliOptions.Text("--blur-sigma", "S", "Gaussian sigma in input pixels of the blur baseline (default 5)");
    private readonly Option<string> _noise = CliOptions.Text("--noise", "S", "ROAD imputation noise standard deviation (default 0.01)");
    private readonly Option<string> _boxes = CliOptions.Text("--boxes", "FILE", "CSV of boxes image,x0,y0,x1,y1 (image: file name or stem; inclusive pixel coordinates at the model's input resolution)");
    private readonly Option<string> _tolerance = CliOptions.Text("--tolerance", "PX", "pointing game tolerance in pixels (default 15)");
    private readonly Option<string> _seed = CliOptions.Text("--seed", "N", "seed of ROAD's noise, the sanity check's weights and stochastic methods (default 0)");
    private readonly Option<string> _csv = CliOptions.Text("--csv", "FILE", "also write the table as CSV (invariant culture)");
    private readonly Option<string> _json = CliOptions.Text("--json", "FILE", "also write every number (per-image scores, curves, steps) as JSON");
    private readonly Option<string> _out = CliOptions.Text("--out", "DIR", "also write DIR/eval.deletion.png, DIR/eval.insertion.png, DIR/eval.road.png (the curves asked for), DIR/results.csv rows and DIR/manifest.RUN.json");
    private readonly Option<string> _report = CliOptions.Text("--report", "DIR", "also write DIR/index.html: the run's facts, each input with every method's overlay, the table and the charts");
    private readonly Option<bool> _quiet = CliOptions.Quiet();
    private readonly Option<bool> _overwrite = CliOptions.Overwrite();
    private readonly Option<string> _labels = CliOptions.Labels();

    private EvalCommand(CliContext cli, Command command)
    {
        _cli = cli;
        command.Arguments.Add(_model);
        _inputs = InputArgs.AddTo(command, shard: true, resume: false);
        foreach (var o in new Option[] { _method, _metric, _layer, _layout, _target, _score, _convention, _device, _batch, _steps, _baseline, _blurSigma,
                     _noise, _boxes, _tolerance, _seed, _csv, _json, _out, _report, _labels })
            command.Options.Add(o);
        _overlay = OverlayArgs.AddTo(command, "the report's overlays");
        command.Options.Add(_quiet);
        command.Options.Add(_overwrite);
    }

    public static Command Build(CliContext cli)
    {
        var command = new Command("eval", Description.ReplaceLineEndings(" "));
        var eval = new EvalCommand(cli, command);
        command.SetAction(eval.Run);
        return command;
    }

    private int Run(ParseResult r)
    {
        string? boxesPath = r.Get(_boxes);
        var metrics = ParseMetrics(r.Get(_metric, "avgdrop,deletion,insertion"), boxesPath != null);
        if (metrics.Contains("pointing") && boxesPath == null)
            throw new UsageException("the pointing metric needs --boxes FILE (CSV: image,x0,y0,x1,y1)");
        var methods = CamNames.ResolveMethods(r.Get(_method, "gradcam"));
        if (CamNames.IsAll(r.Get(_method, "gradcam")))
            methods = methods.Where(m => m is not ClassModel).ToList();
        if (methods.OfType<ClassModel>().Any())
            throw new UsageException("class-model synthesizes an image, not a map of the input; it cannot be evaluated");
        var score = CliOptions.Choice("--score", r.Get(_score, "softmax"), "softmax", "logit") == "softmax" ? MetricScore.Softmax : MetricScore.Logit;
        var baseline = CliOptions.Choice("--baseline", r.Get(_baseline, "zeros") is "zero" ? "zeros" : r.Get(_baseline, "zeros"), "zeros", "blur", "mean") switch
        {
            "blur" => PerturbationBaseline.Blur,
            "mean" => PerturbationBaseline.Mean,
            _ => PerturbationBaseline.Zeros,
        };
        int batch = r.GetInt(_batch, 32, 1, 65536);
        int steps = r.GetInt(_steps, 20, 1, 100_000);
        int seed = r.GetInt(_seed, 0, int.MinValue, int.MaxValue);
        double blurSigma = r.GetDouble(_blurSigma, 5, 1e-3, 1000);
        double noise = r.GetDouble(_noise, 0.01, 0, 1e6);
        double tolerance = r.GetDouble(_tolerance, 15, 0, 1e9);
        var convention = ExplainCommand.ParseConvention(r.Get(_convention, "pytorch-grad-cam"));
        string targetText = r.Get(_target, "top1").Trim();
        string t = targetText.ToLowerInvariant();
        if (t.StartsWith("similar:", StringComparison.Ordinal) || t.StartsWith("cosine:", StringComparison.Ordinal))
            throw new UsageException("the metrics score a class; similarity targets cannot be evaluated");
        if (t.StartsWith("softmax", StringComparison.Ordinal))
            throw new UsageException("--target picks the class; choose the score the metrics read with --score softmax|logit");
        var overlay = _overlay.Parse(r);
        bool overwrite = r.GetValue(_overwrite);
        string? csvPath = r.Get(_csv), jsonPath = r.Get(_json), outDir = r.Get(_out), reportDir = r.Get(_report);
        var (_, files) = _inputs.Resolve(r);
        string modelPath = r.GetValue(_model)!;

        // Every output is planned before any work, so that a refused run costs nothing and leaves the files alone.
        using var run = new RunHarness(_cli, "eval", modelPath, _inputs.GetShard(r));
        var chartNames = s_chartMetrics.Where(metrics.Contains).ToList();
        if (outDir != null)
            run.UseOutputFolder(outDir, overwrite, resume: false, canResume: false).CheckFree(chartNames.Select(n => $"eval.{n}.png"));
        string? reportPath = reportDir == null ? null : Path.Combine(reportDir, HtmlReport.FileName);
        foreach (var path in new[] { csvPath, jsonPath, reportPath })
        {
            if (path != null)
                RunHarness.PlanExtra(path, overwrite);
        }
        var model = run.LoadModel(r.Get(_device), batch, r.Get(_labels));
        if (model.IsEmbedding)
        {
            // A softmax over embedding channels means nothing: the metrics read the channel's raw value.
            if (r.Has(_score) && score == MetricScore.Softmax)
                throw new UsageException("the model's output is an embedding, not class scores: a softmax over its channels means nothing; use --score logit");
            score = MetricScore.Logit;
            _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"the model's output is a {model.OutputShape.Aggregate(1, (a, b) => a * b)}-d embedding, not class scores: the metrics read the target channel's raw value (--score logit), no softmax"));
        }
        var target = model.ParseTarget(targetText);
        methods = run.MethodsFor(methods, target, CamNames.IsAll(r.Get(_method, "gradcam")), CliOptions.List(r.Get(_layer)));
        var inputs = run.Batches(files, int.MaxValue).SelectMany(b => b).ToList();
        if (target.PerImageCount > 0 && target.PerImageCount != inputs.Count)
            throw new UsageException($"--target names {target.PerImageCount} classes for {inputs.Count} image(s); give one per image");
        List<GroundTruth>? truths = null;
        if (metrics.Contains("pointing"))
        {
            var boxes = BoxFile.Read(boxesPath!);
            truths = inputs.Select(i => GroundTruth.FromBoxes(model.InputHeight, model.InputWidth,
                BoxFile.Find(boxes, i.Path, i.Input.Name)
                ?? throw new InvalidInputException($"{PrintableText.Escape(boxesPath)}: no box for image '{PrintableText.Escape(i.Input.Name)}' ({PrintableText.Escape(Path.GetFileName(i.Path))})"))).ToList();
        }
        var explainOptions = new ExplainOptions
        {
            Layers = CliOptions.List(r.Get(_layer)), Target = target, Convention = convention, Seed = seed, PerturbationBatch = batch,
            Layout = LayerLayout.Parse(r.Get(_layout, "auto")),
        };
        var layers = methods.Any(m => m.UsesLayers) ? model.ResolveLayers(explainOptions.Layers) : [];
        var readings = layers.Count > 0 ? model.ReadLayers(explainOptions.Layers, explainOptions.Layout) : [];
        _cli.Out.WriteLine($"device: {RunHarness.Show(model.DeviceName)} ({RunHarness.Show(model.DeviceDescription)})");
        if (layers.Count > 0)
            _cli.Out.WriteLine($"layer: {string.Join(", ", readings.Select(l => $"{RunHarness.Show(l.Layer)} ({RunHarness.Show(l.Describe())})"))}");

        var curveOptions = new DeletionInsertionOptions { Steps = steps, Baseline = baseline, BlurSigma = blurSigma, BatchSize = batch, Score = score };
        var measure = new Measures(metrics, score, batch, seed, curveOptions, noise, tolerance);
        var clock = Stopwatch.StartNew();
        var timings = new Dictionary<string, double>(StringComparer.Ordinal);
        var results = Measure(run, model, inputs.Select(i => i.Input).ToList(), methods, explainOptions, measure, truths, r.GetValue(_quiet), timings);

        var columns = Columns.Where(c => results[0].Summary().Any(s => s.Column == c)).ToList();
        WriteTable(_cli.Out, results, columns);
        WriteOutputs(run, model, inputs, methods, layers, results, columns, measure, target, targetText, convention, overlay, modelPath, timings,
            new Paths(csvPath, jsonPath, outDir, reportDir, reportPath, boxesPath), overwrite);
        _cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{inputs.Count} image(s), {methods.Count} method(s), {metrics.Count} metric(s) in {clock.Elapsed.TotalSeconds:F2} s"));
        if (outDir != null)
            _cli.Out.WriteLine($"charts, results.csv and manifest: {outDir}");
        if (reportPath != null)
            _cli.Out.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>Where the outputs of a run go (null: not asked for).</summary>
    private sealed record Paths(string? Csv, string? Json, string? Out, string? ReportDir, string? Report, string? Boxes);

    /// <summary>The outputs of a run: --csv, --json, the charts and results.csv rows (with --out), the report, the
    /// manifest; a failure removes them all.</summary>
    private static void WriteOutputs(
        RunHarness run, CamModel model, List<(string Stem, string Path, CamInput Input)> inputs, IReadOnlyList<CamMethod> methods,
        IReadOnlyList<string> layers, List<MethodEvaluation> results, List<string> columns, Measures m, Target target, string targetText,
        Convention convention, OverlayOptions overlay, string modelPath, Dictionary<string, double> timings, Paths paths, bool overwrite)
    {
        var stems = inputs.Select(i => i.Stem).ToList();
        try
        {
            if (paths.Csv != null)
                run.WriteExtra(paths.Csv, Bytes(s => WriteCsv(s, results, columns)), overwrite);
            if (paths.Json != null)
                run.WriteExtra(paths.Json, Bytes(s => WriteJson(s, results, stems, model, m.Metrics, m.Score, m.Curves, m.Noise, m.Tolerance, m.Seed, target)), overwrite);
            var charts = paths.Out != null || paths.ReportDir != null
                ? MetricCharts.Build(results.Select(x => new MethodCurves(x.Method, x.Deletion, x.Insertion, x.Road)).ToList(), m.Score, inputs.Count)
                : [];
            var settings = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in Settings(paths.Boxes, m.Metrics, m.Score, m.Curves, m.Noise, m.Tolerance, inputs.Count, paths.ReportDir != null, overlay))
                settings[k] = v;
            settings["shard"] = run.Shard.ToString();
            settings["run"] = run.RunId;
            var manifest = run.Manifest(methods.Select(m => m.Name).ToList(), layers, targetText, ExplainCommand.ConventionName(convention),
                (convention == Convention.PytorchGradCam ? "mean" : "max") + " (convention default)", m.Seed, timings, settings);
            if (run.Plan is { } plan)
            {
                foreach (var chart in charts)
                    plan.Write(chart.FileName, PngOf(chart.Image));
                run.Results!.Add(results.SelectMany(m => m.Explanations.Select(x => new ResultRow(
                    inputs[x.ImageIndex].Path, x.ClassIndex, x.Label, x.Score, null, x.Method, string.Join(';', x.Layers), [],
                    timings[m.Method] / inputs.Count))));
                run.Results.Flush();
            }
            if (paths.Report != null)
            {
                var content = new ReportContent
                {
                    Title = $"CamEngine eval: {Path.GetFileName(modelPath)}",
                    Info = manifest.ToInfo(),
                    Images = inputs.Take(ExplainCommand.MaxReportImages).Select((img, i) => new ReportImage
                    {
                        Name = img.Stem,
                        Input = OverlayArgs.Input(img.Input, overlay),
                        Overlays = results.Select(m => (m.Method, OverlayArgs.Picture(m.Explanations.First(x => x.ImageIndex == i), overlay))).ToList(),
                    }).ToList(),
                    Table = new ReportTable { Caption = $"Metrics (mean over {inputs.Count} image(s))", Headers = ["method", .. columns], Rows = TableRows(results, columns) },
                    Charts = charts.Select(c => (c.Caption, c.Image)).ToList(),
                };
                run.WriteExtra(paths.Report, Encoding.UTF8.GetBytes(HtmlReport.Render(content)), overwrite);
            }
            run.WriteManifest(manifest);
        }
        catch
        {
            run.RollBack();
            throw;
        }
    }

    /// <summary>The settings of the metrics.</summary>
    private sealed record Measures(
        IReadOnlyList<string> Metrics, MetricScore Score, int Batch, int Seed, DeletionInsertionOptions Curves, double Noise, double Tolerance);

    /// <summary>Each method's maps of every input, then each metric asked for, timed one by one.</summary>
    private List<MethodEvaluation> Measure(
        RunHarness run, CamModel model, List<CamInput> camInputs, IReadOnlyList<CamMethod> methods, ExplainOptions explainOptions,
        Measures m, List<GroundTruth>? truths, bool quiet, Dictionary<string, double> timings)
    {
        // Progress counts one unit per image, method and stage (the maps, then each metric); a metric's own progress
        // reports move the line within its share.
        using var progress = ConsoleProgress.ForStderr("eval", camInputs.Count * methods.Count * (1 + m.Metrics.Count), _cli.Error, quiet);
        var stage = new StageProgress(progress, camInputs.Count);
        T Timed<T>(string key, Func<IProgress<MetricProgress>, T> work)
        {
            run.Stage($"computing {key}");
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
            var explanations = Timed(method.Name, _ => model.Explain(camInputs, [method], explainOptions));
            var e = new MethodEvaluation { Method = method.Name, Explanations = explanations };
            string key = method.Name + " ";
            if (m.Metrics.Contains("avgdrop"))
                e.AverageDrop = Timed(key + "avgdrop", p => model.EvaluateConfidenceChange(explanations, new MetricOptions { BatchSize = m.Batch, Score = m.Score }, p));
            if (m.Metrics.Contains("avgdrop-pgc"))
                e.AverageDropPgc = Timed(key + "avgdrop-pgc", p => model.EvaluateConfidenceChange(explanations, new MetricOptions { BatchSize = m.Batch, Score = MetricScore.Logit }, p));
            if (m.Metrics.Contains("deletion"))
                e.Deletion = Timed(key + "deletion", p => model.EvaluateDeletion(explanations, m.Curves, p));
            if (m.Metrics.Contains("insertion"))
                e.Insertion = Timed(key + "insertion", p => model.EvaluateInsertion(explanations, m.Curves, p));
            if (m.Metrics.Contains("road"))
                e.Road = Timed(key + "road", p => model.EvaluateRoad(explanations, new RoadOptions { BatchSize = m.Batch, Score = m.Score, Noise = m.Noise, Seed = m.Seed }, p));
            if (truths != null)
                e.Pointing = Timed(key + "pointing", _ => CamModel.EvaluatePointingGame(explanations, explanations.Select(x => truths[x.ImageIndex]).ToList(), m.Tolerance));
            if (m.Metrics.Contains("sanity"))
                e.Sanity = Timed(key + "sanity", p => model.EvaluateSanity(camInputs, method, explainOptions, new SanityCheckOptions { Seed = m.Seed }, p));
            results.Add(e);
        }
        progress.Finish();

        return results;
    }

    private static byte[] Bytes(Action<Stream> write)
    {
        using var stream = new MemoryStream();
        write(stream);
        return stream.ToArray();
    }

    private static byte[] PngOf(RgbImage image) => CamResult.EncodePng(image);

    /// <summary>The run's settings beyond the manifest's own fields, in a fixed order (only those that apply).</summary>
    private static IEnumerable<(string Key, string Value)> Settings(
        string? boxes, IReadOnlyList<string> metrics, MetricScore score, DeletionInsertionOptions curves, double noise,
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
            yield return ("boxes", boxes!);
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
        var names = CliOptions.List(text).Select(n => n.ToLowerInvariant()).ToList();
        if (names.Count == 1 && names[0] == "all")
            return MetricNames.Where(m => m != "pointing" || haveBoxes).ToList();
        if (names.Count == 0)
            throw new UsageException("--metric is empty");
        foreach (var n in names)
        {
            if (!MetricNames.Contains(n))
                throw new UsageException($"unknown metric '{PrintableText.Escape(n)}'" + (CamNames.Suggest(n, MetricNames) is { } near ? $"; did you mean '{near}'?" : "") + $" (use {string.Join(", ", MetricNames)} or all)");
        }
        return MetricNames.Where(names.Contains).ToList();
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
        Stream stream, IReadOnlyList<MethodEvaluation> results, List<string> stems, CamModel model,
        IReadOnlyList<string> metrics, MetricScore score, DeletionInsertionOptions curves, double noise, double tolerance, int seed,
        Target target)
    {
        using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteString("cam", Program.Version);
        j.WriteString("device", model.DeviceName);
        j.WriteString("target", target.ToString());
        j.WriteString("score", score == MetricScore.Softmax ? "softmax" : "logit");
        j.WriteNumber("inputHeight", model.InputHeight);
        j.WriteNumber("inputWidth", model.InputWidth);
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
                j.WriteString("image", stems[e.ImageIndex]);
                j.WriteNumber("class", e.ClassIndex);
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
