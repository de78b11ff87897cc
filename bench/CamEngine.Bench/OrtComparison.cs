using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CamEngine.Bench;

/// <summary>
/// The engine against ONNX Runtime on the same .onnx file (ORT runs the file; the engine runs what `cam convert` made
/// of it): ORT from NuGet (Microsoft.ML.OnnxRuntime, its CPU provider), intra-op threads = cores, ORT_ENABLE_ALL.
/// Per batch size: the same random input to both, their outputs compared (the comparison is void if they differ),
/// 10 warm-up calls of each, then 30 (batch 1) or 8 (batch 8) timed calls alternating engine and ORT (which side
/// goes first flips every call, so load from other processes hits both alike), each after a 100 ms sleep (--gap MS;
/// --gap 0 calls back to back): ORT's intra-op workers spin for tens of ms after a call returns (its allow_spinning
/// default), and a call started meanwhile runs with one core fewer; the line before the times gives each side's CPU time
/// in the 250 ms after a call (<see cref="CpuAfter"/>). Medians and engine / ORT printed.
/// With a LAYER, also the engine's Grad-CAM pass (forward keeping LAYER, reverse to LAYER, seed on class 281) against
/// ORT's forward alone; with --scorecam too, at batch sizes above 1, Score-CAM's time per mask against ORT's per-image
/// forward at that batch size (<see cref="ScoreCamCell"/>). --smoke: 2 warm-ups and 3 timed calls, to check the plumbing.
/// --parallel-for: the engine's CPU loops on Parallel.For instead of its spinning workers (<c>CpuParallel</c>).
/// With one of the profile mode's kernel switches set in the environment (PROFILE_WINOGRAD_PREFETCH=1, ...: see
/// <see cref="Profile"/>), the forward cell runs again with three sides alternating, the engine with the switch on, with
/// it off, and ORT, and prints both ratios; the switch is left on after it, as the profile mode leaves it, so the cells
/// after it run with it on.
/// --ort-profile DIR: then ORT's per-node profile of the same calls, alternating with the engine's forward timed node
/// by node (<see cref="OrtNodeProfile"/>).
/// Run: dotnet CamEngine.Bench.dll ort NAME MODEL.onnx MODEL.safetensors [LAYER] [--batches 1,8] [--gap MS] [--smoke] [--ort-profile DIR] [--parallel-for] [--scorecam]
/// Prints: <c>ort NAME batch B forward: engine E ms, ORT O ms, engine/ORT R</c> (and <c>gradcam</c> and <c>scorecam</c> lines).
/// </summary>
internal static class OrtComparison
{
    public static void Run(string[] args)
    {
        var rest = args.Skip(1).ToList();
        bool smoke = rest.Remove("--smoke");
        bool scoreCam = rest.Remove("--scorecam");
        if (rest.Remove("--parallel-for"))
            CamEngine.Backends.Cpu.CpuParallel.Enabled = false; // the engine's loops on the thread pool, to compare

        int gap = 100;
        int gi = rest.IndexOf("--gap");
        if (gi >= 0)
        {
            gap = int.Parse(rest[gi + 1], CultureInfo.InvariantCulture);
            rest.RemoveRange(gi, 2);
        }
        string? profileDir = null;
        int pi = rest.IndexOf("--ort-profile");
        if (pi >= 0)
        {
            profileDir = rest[pi + 1];
            rest.RemoveRange(pi, 2);
        }
        int[] batches = [1, 8];
        int bi = rest.IndexOf("--batches");
        if (bi >= 0)
        {
            batches = rest[bi + 1].Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            rest.RemoveRange(bi, 2);
        }
        if (rest.Count < 3)
            throw new ArgumentException("usage: ort NAME MODEL.onnx MODEL.safetensors [LAYER] [--batches 1,8] [--gap MS] [--smoke] [--ort-profile DIR] [--parallel-for] [--scorecam]");
        string name = rest[0], onnx = rest[1], st = rest[2];
        string? layer = rest.Count > 3 ? rest[3] : null;

        using var backend = Devices.Open("cpu");
        using var model = DeviceModel.Load(ModelFile.Load(st), backend);
        using var options = Options();
        using var session = new InferenceSession(onnx, options);
        string inputName = session.InputMetadata.Keys.First();
        var inShape = model.Graph.InputShape;
        int classes = model.Graph.OutputShape.Aggregate(1, (a, b) => a * b);

        foreach (int batch in batches)
        {
            var rng = new Random(3);
            int n = batch * inShape.Aggregate(1, (a, b) => a * b);
            var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            int[] shape = [batch, .. inShape];
            using var input = backend.Upload(data, shape);
            var ortInput = new DenseTensor<float>(data, shape);
            var feeds = new[] { NamedOnnxValue.CreateFromTensor(inputName, ortInput) };
            var seedData = new float[batch * classes];
            for (int i = 0; i < batch; i++)
                seedData[i * classes + 281 % classes] = 1f;
            using var seed = backend.Upload(seedData, batch, classes);

            float[] EngineOutput()
            {
                using var pass = model.ForwardOutput(input);
                return backend.Download(pass.Output);
            }
            float[] OrtOutput()
            {
                using var results = session.Run(feeds);
                return results[0].AsTensor<float>().ToArray();
            }
            void Engine()
            {
                using var pass = model.ForwardOutput(input);
                backend.Synchronize();
            }
            void GradCam()
            {
                using var pass = model.ForwardFor(input, [layer!]);
                using var g = model.Backward(pass, seed, new BackwardRequest { Layers = [layer!] });
                backend.Synchronize();
            }
            void Ort()
            {
                using var results = session.Run(feeds);
            }

            // The two sides must compute the same function before their times mean anything.
            var e = EngineOutput();
            var o = OrtOutput();
            if (e.Length != o.Length)
                throw new InvalidOperationException($"ort {name}: engine gives {e.Length} outputs, ORT {o.Length}");
            double scale = o.Max(v => Math.Abs((double)v)), diff = 0;
            for (int i = 0; i < e.Length; i++)
                diff = Math.Max(diff, Math.Abs((double)e[i] - o[i]));
            // ORT's outputs all zero (torchvision's ViT heads start at zero): only the absolute difference says anything.
            Console.WriteLine(scale > 0
                ? FormattableString.Invariant($"ort {name} batch {batch}: outputs agree to {diff / scale:E2} of the largest ({scale:G4})")
                : FormattableString.Invariant($"ort {name} batch {batch}: ORT's outputs are all zero (a zero-initialised head?); the engine's differ by {diff:E2}, which checks little"));
            if (!(diff <= 1e-3 * scale))
                throw new InvalidOperationException($"ort {name}: engine and ORT outputs differ by {diff / scale:E2} of the largest");

            int warm = smoke ? 2 : 10, reps = smoke ? 3 : batch == 1 ? 30 : 8;
            Console.WriteLine(FormattableString.Invariant(
                $"ort {name} batch {batch}: CPU time in the 250 ms after a call returns: engine {CpuAfter(Engine):F1} ms, ORT {CpuAfter(Ort):F1} ms"));
            var (te, to) = Alternate(warm, reps, Engine, Ort, gap);
            Print(name, batch, "forward", te, to);
            if (Profile.Switches().FirstOrDefault() is { } sw)
            {
                // A kernel switch of the profile mode set in the environment: both of its settings against ORT, the
                // three sides alternating call by call, so one run says what the change does to the ratio.
                try
                {
                    var (tOn, tOff, tOrt) = Alternate3(warm, reps, () => { sw.Set(true); Engine(); }, () => { sw.Set(false); Engine(); }, Ort, gap);
                    Console.WriteLine(FormattableString.Invariant(
                        $"ort {name} batch {batch} forward A/B: engine {tOn:F2} ms with {sw.OnName}, {tOff:F2} ms with {sw.OffName}; ORT {tOrt:F2} ms; engine/ORT {tOn / tOrt:F3} / {tOff / tOrt:F3}"));
                }
                finally
                {
                    sw.Set(true);
                }
            }
            if (layer != null)
            {
                var (tg, to2) = Alternate(warm, reps, GradCam, Ort, gap);
                Print(name, batch, "gradcam", tg, to2);
            }
            if (scoreCam && layer != null && batch > 1)
                ScoreCamCell(name, batch, layer, model, data.AsSpan(0, n / batch).ToArray(), Ort, smoke, gap);
            if (profileDir != null)
                OrtNodeProfile(name, batch, onnx, options, feeds, profileDir, warm, reps, gap, model, Engine);
        }
        Console.WriteLine($"ort {name}: engine on {backend.DeviceDescription}; ORT {OrtEnv.Instance().GetVersionString()} CPU provider, "
                          + $"{Environment.ProcessorCount} intra-op threads, ORT_ENABLE_ALL");
    }

    /// <summary>
    /// ORT's own per-node profile (SessionOptions.EnableProfiling) of the same calls, each after the same gap: prints
    /// <c>ort-node NAME batch B: OP NODE median-us</c> for every node ORT ran (after its fusions), then the sum per op
    /// type. The engine's forward alternates with ORT's calls, every node timed as it runs
    /// (<see cref="DeviceModel.NodeTimer"/>): <c>engine-node NAME batch B: OP NODE median-us</c>, so the two sides'
    /// layers are measured under the same load from the rest of the machine. The JSON stays in DIR.
    /// </summary>
    private static void OrtNodeProfile(string name, int batch, string onnx, SessionOptions options,
        IReadOnlyCollection<NamedOnnxValue> feeds, string dir, int warm, int reps, int gap, DeviceModel model, Action engine)
    {
        Directory.CreateDirectory(dir);
        options.EnableProfiling = true;
        string file;
        var ticks = new Dictionary<GraphNode, List<long>>();
        var engineRuns = new List<double>();
        using (var session = new InferenceSession(onnx, options))
        {
            for (int i = 0; i < warm; i++)
            {
                session.Run(feeds).Dispose();
                engine();
            }
            DeviceModel.NodeTimer = (node, t) =>
            {
                if (!ticks.TryGetValue(node, out var l))
                    ticks[node] = l = [];
                l.Add(t);
            };
            try
            {
                for (int i = 0; i < reps; i++)
                {
                    Thread.Sleep(gap);
                    session.Run(feeds).Dispose();
                    Thread.Sleep(gap);
                    long t0 = Stopwatch.GetTimestamp();
                    engine();
                    engineRuns.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                }
            }
            finally
            {
                DeviceModel.NodeTimer = null;
            }
            // ORT writes the file in the working directory under its own name: move it into DIR.
            string written = session.EndProfiling();
            file = Path.Combine(dir, Path.GetFileName(written));
            File.Move(written, file, overwrite: true);
        }
        options.EnableProfiling = false;
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        var times = new Dictionary<string, (string Op, List<double> Us)>(StringComparer.Ordinal);
        var runs = new List<double>();
        foreach (var ev in json.RootElement.EnumerateArray())
        {
            if (!ev.TryGetProperty("cat", out var cat) || !ev.TryGetProperty("dur", out var dur))
                continue;
            string evName = ev.GetProperty("name").GetString() ?? "";
            if (cat.GetString() == "Session" && evName == "model_run")
                runs.Add(dur.GetDouble());
            if (cat.GetString() != "Node" || !evName.EndsWith("_kernel_time", StringComparison.Ordinal))
                continue;
            string node = evName[..^"_kernel_time".Length];
            string op = ev.GetProperty("args").TryGetProperty("op_name", out var o) ? o.GetString() ?? "" : "";
            if (!times.TryGetValue(node, out var entry))
                times[node] = entry = (op, []);
            entry.Us.Add(dur.GetDouble());
        }
        static double Median(List<double> v)
        {
            var s = v.Order().ToList();
            return s[s.Count / 2];
        }
        // The last `reps` calls of each node are the timed ones (the warm-ups come first in the file).
        var byOp = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (node, (op, us)) in times)
        {
            double m = Median(us.Skip(Math.Max(0, us.Count - reps)).ToList());
            Console.WriteLine(FormattableString.Invariant($"ort-node {name} batch {batch}: {op} {node} {m:F1}"));
            byOp[op] = byOp.GetValueOrDefault(op) + m;
        }
        foreach (var (op, us) in byOp.OrderByDescending(kv => kv.Value))
            Console.WriteLine(FormattableString.Invariant($"ort-op {name} batch {batch}: {op} {us / 1000:F2} ms"));
        double engineSum = 0;
        foreach (var node in model.Graph.Nodes)
        {
            if (!ticks.TryGetValue(node, out var t))
                continue;
            double us = Median(t.Select(v => v * 1e6 / Stopwatch.Frequency).ToList());
            engineSum += us;
            Console.WriteLine(FormattableString.Invariant($"engine-node {name} batch {batch}: {node.Op} {node.Name} {us:F1}"));
        }
        double engineRun = Median(engineRuns), ortRun = Median(runs.Skip(Math.Max(0, runs.Count - reps)).ToList());
        Console.WriteLine(FormattableString.Invariant(
            $"engine-run {name} batch {batch}: median call {engineRun / 1000:F2} ms, sum of node medians {engineSum / 1000:F2} ms; engine/ORT {engineRun / ortRun:F3} (calls), {engineSum / byOp.Values.Sum():F3} (node sums)"));
        Console.WriteLine(FormattableString.Invariant(
            $"ort-run {name} batch {batch}: median model_run {Median(runs.Skip(Math.Max(0, runs.Count - reps)).ToList()) / 1000:F2} ms, sum of node medians {byOp.Values.Sum() / 1000:F2} ms ({file})"));
    }

    /// <summary>
    /// The engine's whole Score-CAM on one image (the first of the batch; LAYER's channels as masks, class 281, masked
    /// forwards in batches of <paramref name="batch"/>: the method as `cam explain` runs it, upsampling, normalizing and
    /// masking included) against ORT's forwards at the same batch size for as many images, alternating, 3 calls each
    /// after one warm-up (1 with --smoke): prints <c>ort NAME batch B scorecam: engine E ms, ORT O ms, engine/ORT R</c>,
    /// E per mask and O per image. The goal is R &lt;= 0.9.
    /// </summary>
    private static void ScoreCamCell(string name, int batch, string layer, DeviceModel model, float[] image, Action ort,
        bool smoke, int gap)
    {
        var explainer = new CamEngine.Methods.Explainer(model);
        var one = new CamEngine.Tensors.HostTensor([1, .. model.Graph.InputShape], image);
        var options = new CamEngine.Methods.ExplainOptions
        {
            Layers = [layer], Target = CamEngine.Methods.Target.Class(281 % model.Graph.OutputShape.Aggregate(1, (a, b) => a * b)),
            PerturbationBatch = batch,
        };
        int masks = model.Graph.ResolveLayer(layer).Shape[0];
        int ortCalls = (masks + batch - 1) / batch;
        void Engine() => explainer.Explain(one, new CamEngine.Methods.ScoreCam(), options);
        void Ort()
        {
            for (int i = 0; i < ortCalls; i++)
                ort();
        }
        var (te, to) = Alternate(1, smoke ? 1 : 3, Engine, Ort, gap);
        double perMask = te / masks, perImage = to / (ortCalls * batch);
        Console.WriteLine(FormattableString.Invariant(
            $"ort {name} batch {batch}: scorecam is the engine's Score-CAM per mask ({masks} masks, {te / 1000:F1} s a call) against ORT's time per image of a batch-{batch} forward"));
        Print(name, batch, "scorecam", perMask, perImage);
    }

    private static void Print(string name, int batch, string what, double engine, double ort) =>
        Console.WriteLine(FormattableString.Invariant(
            $"ort {name} batch {batch} {what}: engine {engine:F2} ms, ORT {ort:F2} ms, engine/ORT {engine / ort:F3}"));

    /// <summary>
    /// CPU time the process spends in the 250 ms after <paramref name="f"/> returns, with the calling thread asleep:
    /// what a side's worker threads burn spinning for more work after a call. ORT's intra-op workers spin up to 2^20
    /// pause iterations before they park (its allow_spinning default), so a call right after an ORT call runs with one
    /// core fewer until then; <c>--gap</c> waits that out before each timed call.
    /// </summary>
    private static double CpuAfter(Action f)
    {
        f();
        f();
        var p = Process.GetCurrentProcess();
        var t0 = p.TotalProcessorTime;
        Thread.Sleep(250);
        p.Refresh();
        return (p.TotalProcessorTime - t0).TotalMilliseconds;
    }

    /// <summary>Medians (ms) of <paramref name="reps"/> calls of each side after <paramref name="warmup"/> of each,
    /// alternating, the first side flipping every call; with <paramref name="gapMs"/> &gt; 0 the thread sleeps that
    /// long before each timed call, so neither side's call starts while the other's workers still spin.</summary>
    private static (double A, double B) Alternate(int warmup, int reps, Action a, Action b, int gapMs = 0)
    {
        for (int i = 0; i < warmup; i++)
        {
            a();
            b();
        }
        var ta = new double[reps];
        var tb = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0)
            {
                ta[i] = Time(a, gapMs);
                tb[i] = Time(b, gapMs);
            }
            else
            {
                tb[i] = Time(b, gapMs);
                ta[i] = Time(a, gapMs);
            }
        }
        Array.Sort(ta);
        Array.Sort(tb);
        return (ta[reps / 2], tb[reps / 2]);
    }

    /// <summary>ORT as every comparison here runs it: intra-op threads = cores, one inter-op thread, sequential, all
    /// graph optimizations.</summary>
    internal static SessionOptions Options() => new()
    {
        IntraOpNumThreads = Environment.ProcessorCount,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary><see cref="Alternate"/> with three sides, their order rotating call by call.</summary>
    private static (double A, double B, double C) Alternate3(int warmup, int reps, Action a, Action b, Action c, int gapMs)
    {
        Action[] sides = [a, b, c];
        for (int i = 0; i < warmup; i++)
        {
            foreach (var f in sides)
                f();
        }
        var t = new double[3][];
        for (int j = 0; j < 3; j++)
            t[j] = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                int side = (i + j) % 3;
                t[side][i] = Time(sides[side], gapMs);
            }
        }
        foreach (var row in t)
            Array.Sort(row);
        return (t[0][reps / 2], t[1][reps / 2], t[2][reps / 2]);
    }

    private static double Time(Action f, int gapMs)
    {
        if (gapMs > 0)
            Thread.Sleep(gapMs);
        long t0 = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
}
