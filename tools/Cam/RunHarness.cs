using System.CommandLine;
using System.Globalization;
using CamEngine.Methods;
using CamEngine.Reporting;

namespace CamEngine.Cli;

/// <summary>One batch of a run: its first image's position, its inputs (output stem, file, input), the progress
/// line, and each input's file index (for "[done/total]" lines).</summary>
internal sealed record Batch(
    int First, List<(string Stem, string Path, CamInput Input)> Inputs, ConsoleProgress Progress, Func<int, int> Done);

/// <summary>The input options of a run (--recursive, --list, --shard, and --resume where the command writes per
/// image), declared once for every command that reads images.</summary>
internal sealed class InputArgs
{
    private readonly Argument<string[]> _images;
    private readonly Option<bool> _recursive = CliOptions.Flag("--recursive", "also read the image files of subfolders of folder inputs (outputs mirror the subfolders)");
    private readonly Option<string> _list = CliOptions.Text("--list", "FILE", "also read the inputs listed in FILE, one path, folder or glob per line (# comments)");
    private readonly Option<string>? _shard;
    private readonly Option<bool>? _resume;

    private InputArgs(Command command, bool shard, bool resume)
    {
        _images = CliOptions.Images(minimum: 0);
        command.Arguments.Add(_images);
        command.Options.Add(_recursive);
        command.Options.Add(_list);
        if (shard)
        {
            _shard = CliOptions.Text("--shard", "i/n|auto",
                "explain only shard i of n of the sorted inputs (inputs i, i+n, i+2n...); auto: from SLURM_ARRAY_TASK_ID/"
                + "SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/" + Shard.KubernetesCountVariable + " (see docs/cluster.md)");
            command.Options.Add(_shard);
        }
        if (resume)
        {
            _resume = CliOptions.Flag("--resume", "skip the inputs whose outputs all exist (a killed or repeated run continues where it stopped)");
            command.Options.Add(_resume);
        }
    }

    public static InputArgs AddTo(Command command, bool shard = true, bool resume = false) => new(command, shard, resume);

    public bool Resume(ParseResult r) => _resume != null && r.GetValue(_resume);

    public Shard GetShard(ParseResult r) => _shard != null && r.GetValue(_shard) is { } s ? Shard.Parse(s) : Shard.All;

    /// <summary>Every input of the run (sorted), and the shard's part of them.</summary>
    public (List<InputFile> All, List<InputFile> Mine) Resolve(ParseResult r)
    {
        var images = r.GetValue(_images) ?? [];
        string? list = r.GetValue(_list);
        if (images.Length == 0 && list == null)
            throw new UsageException("expected at least one image, folder or glob (or --list FILE)");
        var all = InputSet.Expand(images, list, r.GetValue(_recursive));
        var shard = GetShard(r);
        return (all, all.Where((_, i) => shard.Takes(i)).ToList());
    }
}

/// <summary>
/// What <c>cam explain</c> and <c>cam eval</c> share: the inputs (expanded, sorted, sharded), the output plan checked
/// before any work, the model, the inputs read a batch at a time (bounded memory for any number of images), the
/// results index, the per-run manifest and the report; on failure the run's files are removed.
/// </summary>
internal sealed class RunHarness : IDisposable
{
    private readonly CliContext _cli;
    private readonly List<string> _writtenExtra = [];

    public RunHarness(CliContext cli, string command, string modelPath, Shard shard)
    {
        _cli = cli;
        Command = command;
        ModelPath = modelPath;
        Shard = shard;
        RunId = string.Create(CultureInfo.InvariantCulture,
            $"{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}-{(shard.Count > 1 ? $"shard{shard.Index}of{shard.Count}-" : "")}{Random.Shared.Next(1 << 24):x6}");
    }

    public string Command { get; }

    public string ModelPath { get; }

    public Shard Shard { get; }

    /// <summary>This run's name: UTC start time, shard, random suffix. Its manifest is manifest.RUNID.json.</summary>
    public string RunId { get; }

    public string ManifestName => $"manifest.{RunId}.json";

    public OutputPlan? Plan { get; private set; }

    public ResultsIndex? Results { get; private set; }

    public CamModel Model { get; private set; } = null!;

    public string ModelSha256 { get; private set; } = "";

    /// <summary>Sets up the output folder (plan, temp cleanup, results index) before any work.</summary>
    public OutputPlan UseOutputFolder(string folder, bool overwrite, bool resume, bool canResume)
    {
        Stage("checking the output folder");
        Plan = new OutputPlan(folder, overwrite, resume) { CanResume = canResume };
        Plan.Prepare();
        Results = new ResultsIndex(folder, RunId, appendEachBatch: resume, Plan.TempName("results.csv"));
        return Plan;
    }

    /// <summary>Plans a file outside the output folder (the report, --csv, --json): it must not exist unless
    /// --overwrite.</summary>
    public static void PlanExtra(string path, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
            throw new CamEngineException($"{PrintableText.Escape(path)} exists; nothing was computed; pass --overwrite to replace it");
    }

    /// <summary>Hashes the model file (first: a hash that cannot run stops the run before any output) and loads it.</summary>
    public CamModel LoadModel(string? device, int batch, string? labelsFile)
    {
        Stage("hashing the model file");
        try
        {
            // Managed SHA-256 (RunManifest.Sha256Of): the platform's libssl aborted whole runs under an address-space limit.
            ModelSha256 = RunManifest.Sha256Of(ModelPath);
        }
        catch (CamEngineException e)
        {
            ModelSha256 = "unavailable: " + Program.OneLine(e.Message);
        }
        var labels = labelsFile != null ? CamModel.ReadLabels(labelsFile) : null;
        Stage("loading the model");
        Model = CamModel.Load(ModelPath, new CamModelOptions { Device = device, BatchSize = batch, Labels = labels });
        return Model;
    }

    /// <summary>The inputs, <paramref name="batch"/> images at a time, each file read when its batch comes (an
    /// (N, C, H, W) .npy file gives N images named STEM_i).</summary>
    public IEnumerable<List<(string Stem, string Path, CamInput Input)>> Batches(IEnumerable<InputFile> files, int batch)
    {
        var chunk = new List<(string, string, CamInput)>(Math.Min(batch, 64));
        foreach (var file in files)
        {
            Stage($"reading {PrintableText.Escape(file.Path)}");
            var inputs = Model.LoadInputs(file.Path);
            string dir = file.OutputStem.Contains('/', StringComparison.Ordinal) ? file.OutputStem[..(file.OutputStem.LastIndexOf('/') + 1)] : "";
            foreach (var input in inputs)
            {
                chunk.Add((inputs.Count == 1 ? file.OutputStem : dir + input.Name, file.Path, input));
                if (chunk.Count == batch)
                {
                    yield return chunk;
                    chunk = new List<(string, string, CamInput)>(Math.Min(batch, 64));
                }
            }
        }
        if (chunk.Count > 0)
            yield return chunk;
    }

    /// <summary>Writes the run's manifest into the output folder (create-new: every run keeps its own).</summary>
    public void WriteManifest(RunManifest manifest)
    {
        if (Plan == null)
            return;
        Stage("writing the manifest");
        manifest = manifest with { Files = Plan.Written.ToList(), CreatedUtc = DateTime.UtcNow };
        Plan.Write(ManifestName, System.Text.Encoding.UTF8.GetBytes(manifest.ToJson()));
    }

    /// <summary>The manifest's common fields.</summary>
    public RunManifest Manifest(IReadOnlyList<string> methods, IReadOnlyList<string> layers, string target, string convention, string fusion,
        int seed, IReadOnlyDictionary<string, double> timings, IReadOnlyDictionary<string, string> settings) => new()
    {
        Command = Command, ModelPath = ModelPath, ModelSha256 = ModelSha256, Methods = methods, Layers = layers, Target = target,
        Convention = convention, Fusion = fusion, Seed = seed, Device = Model.DeviceName, DeviceDescription = Model.DeviceDescription,
        TimingsMs = timings, Settings = settings,
    };

    /// <summary>Writes a file outside the output folder (planned with <see cref="PlanExtra"/>), through a temp file.</summary>
    public void WriteExtra(string path, byte[] bytes, bool overwrite)
    {
        Stage($"writing {PrintableText.Escape(path)}");
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        var plan = new OutputPlan(dir, overwrite, resume: false);
        Directory.CreateDirectory(dir);
        plan.Write(System.IO.Path.GetFileName(full), bytes);
        if (Plan != null)
            Plan.Record(full);
        else
            _writtenExtra.Add(full);
    }

    /// <summary>Removes what the run wrote from the <paramref name="from"/>th file on (everything by default), and
    /// its pending results.csv rows.</summary>
    public void RollBack(int from = 0)
    {
        Results?.Dispose();
        Plan?.Rollback(from);
        foreach (var f in _writtenExtra)
        {
            try
            {
                File.Delete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort.
            }
        }
    }

    /// <summary>
    /// The batch loop of a run: the inputs read <paramref name="batch"/> at a time, <paramref name="work"/> called on
    /// each (it writes the batch's files and returns its results.csv rows), progress with an ETA on stderr. When a
    /// batch fails, the run's files go (with --resume, only those of the failing batch: the finished ones stay for
    /// the rerun).
    /// </summary>
    /// <returns>The number of images done.</returns>
    public int ForEachBatch(IReadOnlyList<InputFile> files, int batch, string label, bool quiet, Func<Batch, List<ResultRow>> work)
    {
        using var progress = ConsoleProgress.ForStderr(label, Math.Max(1, files.Count), _cli.Error, quiet);
        int images = 0, done = 0;
        string? previous = null;
        _committed = 0;
        try
        {
            foreach (var chunk in Batches(files, batch))
            {
                // The file index of each input (an (N, C, H, W) .npy file gives several inputs of one file).
                var fileIndex = new int[chunk.Count];
                for (int i = 0; i < chunk.Count; i++)
                {
                    if (chunk[i].Path != previous)
                    {
                        done++;
                        previous = chunk[i].Path;
                    }
                    fileIndex[i] = done - 1;
                }
                Stage($"explaining inputs {images + 1} to {images + chunk.Count}");
                var rows = work(new Batch(images, chunk, progress, i => fileIndex[i]));
                Results?.Add(rows);
                _committed = Plan?.Written.Count ?? 0;
                images += chunk.Count;
                progress.Report(done);
            }
            progress.Finish();
        }
        catch
        {
            RollBack(Plan is { Resume: true } ? _committed : 0);
            throw;
        }
        return images;
    }

    /// <summary>The end of a successful run: results.csv rows appended, the report and the manifest written. When this
    /// fails, the run's files go as in <see cref="ForEachBatch"/>.</summary>
    public void Finish(string? reportPath, Func<ReportContent> report, bool overwrite, RunManifest manifest)
    {
        try
        {
            Stage("appending to results.csv");
            Results?.Flush();
            if (reportPath != null)
                WriteExtra(reportPath, System.Text.Encoding.UTF8.GetBytes(HtmlReport.Render(report())), overwrite);
            WriteManifest(manifest);
        }
        catch
        {
            RollBack(Plan is { Resume: true } ? _committed : 0);
            throw;
        }
    }

    private int _committed;

    /// <summary>
    /// The methods that can explain <paramref name="target"/>, checked before any input is read: with
    /// <c>--method all</c> (<paramref name="all"/>) a method that cannot (or cannot read this model) is left out with
    /// a note; a method named explicitly that cannot refuses the run (<see cref="UnsupportedTargetException"/> or
    /// <see cref="MethodNotApplicableException"/>, exit 2).
    /// </summary>
    public IReadOnlyList<CamMethod> MethodsFor(IReadOnlyList<CamMethod> methods, Target target, bool all, IReadOnlyList<string>? layers = null)
    {
        var kept = new List<CamMethod>(methods.Count);
        foreach (var method in methods)
        {
            try
            {
                method.CheckTarget(target);
                method.CheckModel(Model, layers);
                kept.Add(method);
            }
            catch (Exception e) when (all && e is UnsupportedTargetException or MethodNotApplicableException)
            {
                _cli.Out.WriteLine($"note: {Show(e.Message)}; left out of --method all");
            }
        }
        return kept;
    }

    public void Stage(string what) => _cli.Stage = what;

    public void Dispose()
    {
        Results?.Dispose();
        Model?.Dispose();
    }

    /// <summary>Text shown on a terminal line: escaped.</summary>
    public static string Show(string? text) => PrintableText.Escape(text);
}
