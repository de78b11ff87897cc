using System.Globalization;
using CamEngine.Cli;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>
/// `cam explain` over datasets: folders, globs and --list as inputs; shards whose union is the unsharded run;
/// --resume; the output plan checked before any work, create-new writes, temp files cleaned; results.csv shared by
/// runs; per-run manifests; out-of-memory as a clean exit 2.
/// </summary>
[TestFixture]
public sealed class RunHarnessTests : CliTestBase
{
    private static string Model => Bundled("tiny_resnet.safetensors");

    // The managed CPU backend: the fastest here, and what a cluster node without a GPU runs.
    private const string Device = "cpu";

    private static readonly string[] s_photos = ["astronaut.jpg", "chelsea.png", "coffee.png", "rocket.jpg"];

    /// <summary>A folder of the four photos: two at the top, two in sub/ (and a text file, which is skipped).</summary>
    private string Dataset()
    {
        string data = Path.Combine(Dir, "data");
        Directory.CreateDirectory(Path.Combine(data, "sub"));
        File.Copy(Bundled("images", s_photos[0]), Path.Combine(data, s_photos[0]));
        File.Copy(Bundled("images", s_photos[1]), Path.Combine(data, s_photos[1]));
        File.Copy(Bundled("images", s_photos[2]), Path.Combine(data, "sub", s_photos[2]));
        File.Copy(Bundled("images", s_photos[3]), Path.Combine(data, "sub", s_photos[3]));
        File.WriteAllText(Path.Combine(data, "README.txt"), "not an image");
        return data;
    }

    private static (int Code, string Out, string Err) Explain(string outDir, params string[] more) =>
        Cam(["explain", Model, .. more, "--method", "gradcam,layercam", "--npy", "--out", outDir, "--device", Device, "--batch", "3"]);

    private static Dictionary<string, byte[]> Outputs(string outDir) =>
        Directory.GetFiles(outDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(outDir, f).Replace('\\', '/'))
            .Where(f => !IsRunFile(f))
            .ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(outDir, f)), StringComparer.Ordinal);

    /// <summary>results.csv rows without the run-dependent columns (ms, run), sorted.</summary>
    private static List<string> Rows(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, "results.csv")).Skip(1)
            .Select(l => string.Join(',', l.Split(',')[..^2])).Order(StringComparer.Ordinal).ToList();

    [Test]
    public void Folders_globs_and_lists_are_inputs_and_outputs_mirror_subfolders()
    {
        string data = Dataset();
        string flat = Path.Combine(Dir, "flat");
        var top = Explain(flat, data);
        Assert.That(top.Code, Is.Zero, top.Err);
        Assert.That(Outputs(flat).Keys.Where(k => k.EndsWith(".gradcam.png", StringComparison.Ordinal)),
            Is.EquivalentTo(new[] { "astronaut.gradcam.png", "chelsea.gradcam.png" }), "no --recursive: the top folder only");

        string deep = Path.Combine(Dir, "deep");
        var all = Explain(deep, data, "--recursive");
        Assert.That(all.Code, Is.Zero, all.Err);
        var names = Outputs(deep).Keys.ToList();
        Assert.That(names.Where(k => k.EndsWith(".gradcam.png", StringComparison.Ordinal)),
            Is.EquivalentTo(new[] { "astronaut.gradcam.png", "chelsea.gradcam.png", "sub/coffee.gradcam.png", "sub/rocket.gradcam.png" }));
        Assert.That(names, Has.Count.EqualTo(4 * (2 * 3 + 1)), "per image: 2 methods x (png, npy, raw.npy) and a grid");

        // A glob (expanded by cam, ** for any folders) and a --list file give the same files as the folder.
        string globbed = Path.Combine(Dir, "glob");
        var g = Explain(globbed, Path.Combine(data, "**", "*.*"));
        Assert.That(g.Code, Is.Zero, g.Err);
        Assert.That(Outputs(globbed), Is.EqualTo(Outputs(deep)));
        string list = Path.Combine(Dir, "inputs.txt");
        File.WriteAllLines(list, ["# two photos and a folder", Path.Combine(data, s_photos[0]), "", Path.Combine(data, s_photos[1]), Path.Combine(data, "sub")]);
        string listed = Path.Combine(Dir, "list");
        var l = Cam("explain", Model, "--list", list, "--method", "gradcam,layercam", "--npy", "--out", listed, "--device", Device);
        Assert.That(l.Code, Is.Zero, l.Err);
        Assert.That(Outputs(listed).Keys.Where(k => k.EndsWith(".grid.png", StringComparison.Ordinal)),
            Is.EquivalentTo(new[] { "astronaut.grid.png", "chelsea.grid.png", "coffee.grid.png", "rocket.grid.png" }));

        AssertOneLineError(Cam("explain", Model, Path.Combine(data, "*.gif"), "--out", Dir), "no file matches");
        AssertOneLineError(Cam("explain", Model, Path.Combine(Dir, "nothing-here"), "--out", Dir), "no such file or folder");
    }

    [Test]
    public void The_union_of_the_shards_equals_the_unsharded_run_file_for_file()
    {
        string data = Dataset();
        string whole = Path.Combine(Dir, "whole");
        Assert.That(Explain(whole, data, "--recursive").Code, Is.Zero);

        // Three shards into three folders (machines), then three shards into one folder (a shared file system).
        var union = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var sizes = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            string part = Path.Combine(Dir, $"part{i}");
            var r = Explain(part, data, "--recursive", "--shard", $"{i}/3");
            Assert.That(r.Code, Is.Zero, r.Err);
            var files = Outputs(part);
            sizes.Add(files.Count);
            foreach (var (name, bytes) in files)
                Assert.That(union.TryAdd(name, bytes), Is.True, $"{name} written by two shards");
        }
        Assert.That(union.Keys, Is.EquivalentTo(Outputs(whole).Keys));
        foreach (var (name, bytes) in Outputs(whole))
            Assert.That(union[name], Is.EqualTo(bytes), name);
        Assert.That(sizes.Max() - sizes.Min(), Is.LessThanOrEqualTo(7), "round robin: shard sizes within one image");

        string shared = Path.Combine(Dir, "shared");
        for (int i = 0; i < 3; i++)
            Assert.That(Explain(shared, data, "--recursive", "--shard", $"{i}/3").Code, Is.Zero);
        Assert.That(Outputs(shared), Is.EqualTo(Outputs(whole)));
        Assert.That(Rows(shared), Is.EqualTo(Rows(whole)), "results.csv: the same rows, appended by three runs");
        Assert.That(File.ReadAllLines(Path.Combine(shared, "results.csv")).Count(l => l.StartsWith("input,", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(Manifests(shared), Has.Count.EqualTo(3));

        AssertOneLineError(Explain(shared, data, "--shard", "3/3"), "--shard must be i/n");
    }

    [Test]
    public void Inputs_stream_a_batch_at_a_time_and_a_failed_run_keeps_only_what_resume_asked_for()
    {
        // 12 inputs, the 9th unreadable: the first 4 batches of 2 are explained and written before it is even read.
        string data = Path.Combine(Dir, "data");
        Directory.CreateDirectory(data);
        for (int i = 0; i < 12; i++)
            File.Copy(Bundled("images", "coffee.png"), Path.Combine(data, $"a{i:D2}.png"));
        File.WriteAllText(Path.Combine(data, "a08.png"), "not a png");
        string outDir = Path.Combine(Dir, "out");
        var plain = Cam("explain", Model, data, "--out", outDir, "--batch", "2", "--device", Device);
        AssertOneLineError(plain, "a08.png");
        // "] a09:" is the progress line of the input after the unreadable one ("a09" alone also turns up in the random
        // temporary directory's name, which the lines print: 1 run in about 140 failed so).
        Assert.That(plain.Out, Does.Contain("[8/12] a07:").And.Not.Contain("] a09:"));
        Assert.That(Directory.Exists(outDir) ? Directory.GetFiles(outDir).Where(f => !f.EndsWith(".lock", StringComparison.Ordinal)) : [], Is.Empty,
            "without --resume a failed run leaves nothing: no maps, no rows, no manifest, no temp files");

        var resumed = Cam("explain", Model, data, "--out", outDir, "--batch", "2", "--device", Device, "--resume");
        AssertOneLineError(resumed, "a08.png");
        Assert.That(Directory.GetFiles(outDir, "*.png").Select(Path.GetFileName), Is.EquivalentTo(Enumerable.Range(0, 8).Select(i => $"a{i:D2}.gradcam.png")));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "results.csv")), Has.Length.EqualTo(1 + 8), "rows of the finished batches");
        File.Copy(Bundled("images", "coffee.png"), Path.Combine(data, "a08.png"), overwrite: true);
        var rest = Cam("explain", Model, data, "--out", outDir, "--batch", "2", "--device", Device, "--resume");
        Assert.That(rest.Code, Is.Zero, rest.Err);
        Assert.That(rest.Out, Does.Contain("inputs: 4 of 12 (shard all, 8 done before)"));
        Assert.That(Directory.GetFiles(outDir, "*.png"), Has.Length.EqualTo(12));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "results.csv")), Has.Length.EqualTo(1 + 12));
        Assert.That(Directory.GetFiles(outDir, ".cam-tmp.*"), Is.Empty);
    }

    [Test]
    public void Shard_auto_reads_slurm_and_kubernetes_variables()
    {
        Assert.That(Shard.Parse("auto", new Dictionary<string, string?> { ["SLURM_ARRAY_TASK_ID"] = "2", ["SLURM_ARRAY_TASK_COUNT"] = "5" }.GetValueOrDefault),
            Is.EqualTo(new Shard(2, 5)));
        // An array 1-4 (SLURM_ARRAY_TASK_MIN 1): task 4 is the last of 4 shards.
        Assert.That(Shard.Parse("auto", new Dictionary<string, string?> { ["SLURM_ARRAY_TASK_ID"] = "4", ["SLURM_ARRAY_TASK_COUNT"] = "4", ["SLURM_ARRAY_TASK_MIN"] = "1" }.GetValueOrDefault),
            Is.EqualTo(new Shard(3, 4)));
        Assert.That(Shard.Parse("auto", new Dictionary<string, string?> { ["JOB_COMPLETION_INDEX"] = "0", [Shard.KubernetesCountVariable] = "8" }.GetValueOrDefault),
            Is.EqualTo(new Shard(0, 8)));
        Assert.That(() => Shard.Parse("auto", new Dictionary<string, string?> { ["JOB_COMPLETION_INDEX"] = "0" }.GetValueOrDefault),
            Throws.TypeOf<UsageException>().With.Message.Contains(Shard.KubernetesCountVariable));
        Assert.That(() => Shard.Parse("auto", _ => null), Throws.TypeOf<UsageException>().With.Message.Contains("SLURM_ARRAY_TASK_ID"));
        Assert.That(() => Shard.Parse("auto", new Dictionary<string, string?> { ["SLURM_ARRAY_TASK_ID"] = "5", ["SLURM_ARRAY_TASK_COUNT"] = "5" }.GetValueOrDefault),
            Throws.TypeOf<UsageException>().With.Message.Contains("outside 0..4"));
        Assert.That(new Shard(1, 3).Takes(4) && !new Shard(1, 3).Takes(5), Is.True);
    }

    [Test]
    public void Resume_redoes_only_the_inputs_whose_outputs_are_incomplete()
    {
        string data = Dataset();
        string outDir = Path.Combine(Dir, "out");
        Assert.That(Explain(outDir, data, "--recursive").Code, Is.Zero);
        var first = Outputs(outDir);
        // A killed run: one image lost a file; the others are complete and must not be touched.
        File.Delete(Path.Combine(outDir, "sub", "coffee.layercam.raw.npy"));
        var stamps = Directory.GetFiles(outDir, "*.png", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        Thread.Sleep(20);
        var r = Explain(outDir, data, "--recursive", "--resume");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("inputs: 1 of 4 (shard all, 3 done before)").And.Contain("coffee: class"));
        Assert.That(Outputs(outDir), Is.EqualTo(first));
        foreach (var (file, stamp) in stamps.Where(s => !s.Key.Contains("coffee", StringComparison.Ordinal)))
            Assert.That(File.GetLastWriteTimeUtc(file), Is.EqualTo(stamp), file);
        // results.csv: 8 rows from the first run and 2 more for coffee (gradcam, layercam).
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "results.csv")), Has.Length.EqualTo(1 + 8 + 2));
        AssertOneLineError(Explain(outDir, data, "--resume", "--overwrite"), "exclude each other");
    }

    [Test]
    public void Runs_with_other_images_share_the_folder_and_results_csv_has_one_row_per_image_method_and_class()
    {
        string outDir = Path.Combine(Dir, "out");
        var a = Cam("explain", Bundled("fashion_gapcnn.safetensors"), Bundled("fashion", "test0009_sneaker.png"), "--method", "gradcam,GradCAMPlusPlus",
            "--target", "top2", "--out", outDir, "--device", Device);
        Assert.That(a.Code, Is.Zero, a.Err);
        var b = Cam("explain", Bundled("fashion_gapcnn.safetensors"), Bundled("fashion", "test0002_trouser.png"), "--method", "ScoreCAM",
            "--target", "SNEAKER", "--out", outDir, "--device", Device);
        Assert.That(b.Code, Is.Zero, b.Err);
        Assert.That(Manifests(outDir), Has.Count.EqualTo(2));
        var lines = File.ReadAllLines(Path.Combine(outDir, "results.csv"));
        Assert.That(lines[0], Is.EqualTo("input,class,label,score,probability,method,layer,files,ms,run"));
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.That(rows, Has.Count.EqualTo(2 * 2 + 1), "top-2 x 2 methods, then 1 x 1");
        Assert.That(rows.Take(4).Select(r => r[5]), Is.EquivalentTo(new[] { "gradcam", "gradcam", "gradcampp", "gradcampp" }));
        Assert.That(rows[0][0], Does.EndWith("test0009_sneaker.png"));
        Assert.That(rows[0][2], Is.EqualTo("Sneaker"));
        Assert.That(rows[0][7], Does.Contain("test0009_sneaker.gradcam.c7.png").And.Contain("test0009_sneaker.grid.png"));
        Assert.That(double.Parse(rows[0][4], CultureInfo.InvariantCulture), Is.InRange(0.0, 1.0));
        Assert.That(double.Parse(rows[0][8], CultureInfo.InvariantCulture), Is.GreaterThan(0));
        Assert.That(rows[4][1..3], Is.EqualTo(new[] { "7", "Sneaker" }), "--target SNEAKER: the label, case ignored");
        Assert.That(rows[4][5], Is.EqualTo("scorecam"));
        Assert.That(rows.Select(r => r[9]).Distinct().Count(), Is.EqualTo(2), "each run names itself");
        foreach (var row in rows)
        {
            foreach (var file in row[7].Split(';'))
                Assert.That(File.Exists(Path.Combine(outDir, file)), file);
        }
    }

    [Test]
    public void An_existing_output_stops_the_run_before_any_work()
    {
        // Issue 18's case: with out/coffee.gradcam.png present, `chelsea coffee --batch 1` used to write chelsea's
        // files, then stop. The plan now refuses before anything is written.
        string outDir = Path.Combine(Dir, "out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "coffee.gradcam.png"), "mine");
        var r = Cam("explain", Model, Bundled("images", "chelsea.png"), Bundled("images", "coffee.png"), "--out", outDir, "--batch", "1", "--device", Device);
        AssertOneLineError(r, "coffee.gradcam.png exists; nothing was computed");
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EqualTo(new[] { "coffee.gradcam.png" }));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "coffee.gradcam.png")), Is.EqualTo("mine"));
        // A folder that cannot be written is refused up front too.
        string file = Path.Combine(Dir, "a-file");
        File.WriteAllText(file, "");
        AssertOneLineError(Cam("explain", Model, Bundled("images", "chelsea.png"), "--out", Path.Combine(file, "out"), "--device", Device), "cannot");
    }

    [Test]
    public void A_concurrent_writer_loses_cleanly_and_temp_files_of_dead_runs_are_removed()
    {
        string outDir = Path.Combine(Dir, "out");
        Directory.CreateDirectory(outDir);
        var plan = new OutputPlan(outDir, overwrite: false, resume: false);
        plan.Prepare();
        plan.CheckFree(["a.png"]);
        // Another run writes a.png after this run planned it: this run's create-new move fails, its temp file goes.
        File.WriteAllText(Path.Combine(outDir, "a.png"), "theirs");
        Assert.That(() => plan.Write("a.png", "ours"u8), Throws.TypeOf<CamEngineException>().With.Message.Contains("written by another run meanwhile"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "a.png")), Is.EqualTo("theirs"));
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EqualTo(new[] { "a.png" }));
        var replacing = new OutputPlan(outDir, overwrite: true, resume: false);
        replacing.Prepare();
        replacing.Write("a.png", "ours"u8);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "a.png")), Is.EqualTo("ours"));

        // Temp files: a dead process's is removed by the next run; a live one's (this process) stays.
        string host = string.Concat(Environment.MachineName.Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-'));
        using var gone = System.Diagnostics.Process.Start("true");
        gone.WaitForExit();
        string dead = Path.Combine(outDir, $"{OutputPlan.TempPrefix}{host}.{gone.Id}.abc.x.gradcam.png");
        string live = Path.Combine(outDir, $"{OutputPlan.TempPrefix}{host}.{Environment.ProcessId}.abc.y.gradcam.png");
        File.WriteAllText(dead, "half");
        File.WriteAllText(live, "half");
        var r = Cam("explain", Model, Bundled("images", "chelsea.png"), "--out", outDir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("removed 1 temp file(s)"));
        Assert.That(File.Exists(dead), Is.False);
        Assert.That(File.Exists(live), Is.True);
    }

    [Test]
    public void Concurrent_appends_to_results_csv_keep_one_header_and_whole_rows()
    {
        var tasks = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < 25; i++)
            {
                var index = new ResultsIndex(Dir, $"run{t}", appendEachBatch: true);
                index.Add([new ResultRow($"img{t}_{i}.png", i, "a,b \"c\"", 1.5, 0.25, "gradcam", "layer4", ["x.png", "y.npy"], 2)]);
            }
        })).ToArray();
        Task.WaitAll(tasks);
        var lines = File.ReadAllLines(Path.Combine(Dir, "results.csv"));
        Assert.That(lines[0], Is.EqualTo(string.Join(',', ResultsIndex.Columns)));
        Assert.That(lines, Has.Length.EqualTo(1 + 100));
        Assert.That(lines.Skip(1), Has.All.Match("^img[0-3]_[0-9]+\\.png,[0-9]+,\"a,b \"\"c\"\"\",1\\.5,0\\.25,gradcam,layer4,x\\.png;y\\.npy,2\\.0,run[0-3]$"));
    }

    [Test]
    public void Out_of_memory_while_writing_exits_2_and_removes_the_run_s_files()
    {
        string outDir = Path.Combine(Dir, "out");
        CliContext.StageEntered = stage =>
        {
            if (stage.StartsWith("writing the outputs of inputs 3", StringComparison.Ordinal))
                throw new OutOfMemoryException();
        };
        try
        {
            var r = Cam("explain", Model, Bundled("images"), "--out", outDir, "--batch", "2", "--device", Device);
            AssertOneLineError(r, "out of memory while writing the outputs of inputs 3 to 4");
            Assert.That(r.Out, Does.Contain("[2/4]"), "the first batch was written before the failure");
        }
        finally
        {
            CliContext.StageEntered = null;
        }
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName).Where(f => f != ".results.csv.lock"), Is.Empty,
            "no partial outputs: the first batch's files, results and manifest are gone");
    }

    [Test]
    public void A_value_that_starts_with_dashes_needs_the_equals_form()
    {
        AssertOneLineError(Cam("explain", Model, Bundled("images", "chelsea.png"), "--out", "--quiet"),
            "option --out needs a value, got the option '--quiet'; write --out=--quiet");
        // Written with '=', the value is taken as is (here it names no method, which proves it was read as a value).
        AssertOneLineError(Cam("explain", Model, Bundled("images", "chelsea.png"), "--method=--quiet", "--out", Dir), "unknown method '--quiet'");
        // A negative number is a value, not an option.
        AssertOneLineError(Cam("explain", Model, Bundled("images", "chelsea.png"), "--batch", "-1", "--out", Dir), "--batch must be an integer from 1 to 4096, got '-1'");
    }

    [Test]
    public void Typos_get_the_nearest_name()
    {
        string photo = Bundled("images", "chelsea.png");
        AssertOneLineError(Cam("explian", Model, photo), "unknown command 'explian'; did you mean 'explain'?");
        AssertOneLineError(Cam("explain", Model, photo, "--metod", "gradcam"), "unknown option '--metod'; did you mean '--method'?");
        AssertOneLineError(Cam("explain", Model, photo, "--method", "gradcma", "--out", Dir), "unknown method 'gradcma'; did you mean 'gradcam'?");
        AssertOneLineError(Cam("explain", Model, photo, "--layer", "blok2.relu2", "--out", Dir, "--device", Device), "unknown layer 'blok2.relu2'; did you mean 'block2.relu2'?");
        string fashion = Bundled("fashion_gapcnn.safetensors"), shoe = Bundled("fashion", "test0009_sneaker.png");
        AssertOneLineError(Cam("explain", fashion, shoe, "--target", "Sneakr", "--out", Dir, "--device", Device), "unknown label 'Sneakr'; did you mean 'Sneaker'?");
        AssertOneLineError(Cam("eval", Model, photo, "--metric", "delition", "--device", Device), "did you mean 'deletion'?");
        AssertOneLineError(Cam("explain", Model, photo, "--convention", "pytorch-gradcam", "--out", Dir), "did you mean 'pytorch-grad-cam'?");
    }

    [Test]
    public void Ambiguous_labels_are_refused_with_their_matches_and_model_text_is_escaped_on_the_terminal()
    {
        string labels = Path.Combine(Dir, "labels.txt");
        File.WriteAllLines(labels, ["cat", "Cat", "\u001b[31mred\u001b[0m", "d", "e", "f", "g", "h", "i", "j"]);
        var photo = Bundled("images", "chelsea.png");
        AssertOneLineError(Cam("explain", Model, photo, "--labels", labels, "--target", "CAT", "--out", Dir, "--device", Device),
            "label 'CAT' is ambiguous: it matches 0 (cat), 1 (Cat)");
        var r = Cam("explain", Model, photo, "--labels", labels, "--target", "2", "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("class 2 (\\x1B[31mred\\x1B[0m)"));
        Assert.That(r.Out.Contains('\u001b', StringComparison.Ordinal), Is.False, "no raw escape character reaches the terminal");
        Assert.That(PrintableText.Escape("a\rb\u0000c\u202Ed\u0085"), Is.EqualTo("a\\rb\\0c\\u202Ed\\x85"));
    }

    [Test]
    public void Predict_on_an_embedding_model_says_so_and_prints_no_probabilities()
    {
        // tiny_gapcnn without its linear head and labels: a featurizer ending in GAP + flatten, like ML.NET's ResNet-18.
        var file = ModelFile.Load(Bundled("tiny_gapcnn.safetensors"));
        var g = file.Graph;
        var head = g.Nodes[^1];
        var graph = new ModelGraph
        {
            InputName = g.InputName, InputShape = g.InputShape, OutputName = g.Nodes[^2].Output, Nodes = g.Nodes.Take(g.Nodes.Count - 1).ToList(),
            Preprocessing = g.Preprocessing, Labels = null,
        };
        var weights = file.Weights.Where(w => !head.Params.ContainsValue(w.Key)).ToDictionary(w => w.Key, w => w.Value, StringComparer.Ordinal);
        string featurizer = Path.Combine(Dir, "featurizer.safetensors");
        new ModelFile(graph, weights).Save(featurizer);

        var r = Cam("predict", featurizer, Bundled("images", "chelsea.png"), "--top", "3", "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("the model's output is a 64-d embedding, not class scores"));
        Assert.That(r.Out, Does.Contain("channel").And.Not.Contain(" p "));
        var classifier = Cam("predict", Bundled("tiny_gapcnn.safetensors"), Bundled("images", "chelsea.png"), "--top", "3", "--device", Device);
        Assert.That(classifier.Out, Does.Not.Contain("embedding").And.Contain(", p "));
        using (var model = CamModel.Load(featurizer, new CamModelOptions { Device = Device }))
            Assert.That(model.IsEmbedding, Is.True);

        // eval reads the raw channel value, and refuses an explicit softmax.
        string csv = Path.Combine(Dir, "m.json");
        var eval = Cam("eval", featurizer, Bundled("images", "chelsea.png"), "--metric", "avgdrop", "--json", csv, "--device", Device);
        Assert.That(eval.Code, Is.Zero, eval.Err);
        Assert.That(eval.Out, Does.Contain("64-d embedding, not class scores: the metrics read the target channel's raw value"));
        Assert.That(File.ReadAllText(csv), Does.Contain("\"score\": \"logit\""));
        AssertOneLineError(Cam("eval", featurizer, Bundled("images", "chelsea.png"), "--score", "softmax", "--device", Device), "use --score logit");
    }
}
