using System.Diagnostics;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Graph.Ops;
using CamEngine.Model;

namespace CamEngine.Bench;

/// <summary>
/// Per-operator profile of the ResNet-18-shaped forward (<see cref="ResNet18Benchmarks.Build"/>): every node is run
/// on its own with preallocated tensors and timed (best of repeats: other processes on a 2-core machine preempt parallel work), conv layers reported in GFLOP/s, then the
/// sum of the parts is compared with the whole <see cref="DeviceModel.Forward"/> (the difference is allocation and
/// bookkeeping). PROFILE_FORMS=1 adds an A/B/C of the conv forms per layer (PROFILE_FORMS_MATCH=TEXT: only layers whose description contains it; PROFILE_PLANAR_TAPS=N sets the planar form's taps per block), PROFILE_BACKWARD=1 the backward-data of
/// every conv, PROFILE_DEPTHWISE=1 an A/B of the depthwise convs (<c>DepthwiseConv</c> against the im2col path) per
/// layer and for the whole forward, PROFILE_LEAN=1 instead every node's time inside the lean forward (in sequence, as a real call runs it; with one of the switches below, alternating its two settings call by call, a column each), PROFILE_COPY_SPLIT=1 with the direct form's unpadded NHWC copy split by channels and by pixel blocks only, PROFILE_AFFINE=1 with each loop dealt out in one share of consecutive indices per thread and from one shared counter, PROFILE_PROBE=1 first the cache line round trip between two threads and one thread's memory bandwidth and latency, PROFILE_POOL=1 the lean forward with the CPU kernels' own spinning workers and with Parallel.For, PROFILE_SPIN=1 with those workers spinning 25 ms after a loop before they park and 200 us, PROFILE_MASKED=1 with the direct form's masked short-tile stores on and off, PROFILE_FUSION=1 the lean forward with the CPU's fused conv store on and off, PROFILE_WINOGRAD_BLOCKS=1 with Winograd's blocks of tile rows (where chosen) and its chunked form, PROFILE_PIXEL_PAD=1 with the direct form's NHWC pixels padded past a multiple of 4 KB and not, PROFILE_DW_CHANNELS_LAST=1 with the channels-last depthwise form on small planes and the per-plane one (with the row form off), PROFILE_DW_ROWS=1 with the depthwise row form and the forms before it, PROFILE_DW_FLAT=1 with the depthwise flat form and the forms before it, PROFILE_DW_TAIL=1 with the per-plane depthwise path's row tails stored as masked vectors and 8, 4 and 1 at a time, PROFILE_DW_ZEROS=1 with its plane buffers' padding zeros kept and cleared per plane, PROFILE_DW_PREFETCH=1 with its planes prefetched (on inputs of 8 MB or more) and not, PROFILE_WINOGRAD_ENDS=1 with Winograd's row ends (input split and output store) as masked vectors and one at a time, PROFILE_READ_A_ROWS=1 with linear layers (matmul, gemm) reading their input's rows in place and packing them, PROFILE_PREFETCH=1 with the GEMM and direct-conv kernels prefetching the next weights and not, PROFILE_PREFETCH_OUTPUT=1 with the GEMM prefetching its next output tile and not, PROFILE_STREAM=1 with GEMM outputs of 24 MB or more stored past the caches and through them, PROFILE_MERGE=1 with the direct form reading taps adjacent in its buffer as one segment and one segment per tap, PROFILE_COMPACT=1 with the column form's compact plan on large batch-1 planes and its temporary and scatter, PROFILE_GEMM_STORE=1 with the GEMM's tile epilogue (bias, residual, activation) applied in registers before the store and in a second pass over the stored tile, PROFILE_SUBSAMPLED=1 with strided 1x1 convs as GEMMs gathering their columns from x where that pays and all in the direct form, PROFILE_PLANAR=1 with the planar form for few-channel layers (stems) and expanding 14x14 pointwise convs, and the forms they took before; PROFILE_PLANAR_NARROW=1 with the planar form for 1x1s of 64 or fewer inputs or outputs on 14x14 and 28x28 planes and the forms before; PROFILE_PLANAR_REDUCING=1 with it for 14x14 1x1s reducing to 192 or fewer outputs and the forms before; PROFILE_ROWS_IN_PLACE=1 with the in-place 1x1 GEMMs reading x's rows where they lie and packing them per task; PROFILE_SUBSAMPLE_COPY=1 with strided 1x1s copying the kept pixels to a dense plane first and gathering them per task; PROFILE_BATCHED_ROWS=1 with a batch's in-place 1x1 GEMMs as one over the batch and one per image; PROFILE_CROSSINGS=1 with the GEMM tiles and B panels that cross into the next image moved as masked vectors and one float at a time; PROFILE_RESIDUAL_PREFETCH=1 with the GEMM's tiles prefetching the next tile's residual lines and not; PROFILE_PREPACK_ROWS=1 with a batch's 1x1 GEMM on planes whose rows are off 64-byte boundaries packing x once and reading it in place; PROFILE_PLANAR_PREFETCH=1 with the planar form's stem tiles of a batch prefetching their output lines and not; PROFILE_PACKED_MATMUL=1 with batched MatMuls as packed GEMMs and as the row loops; PROFILE_WINOGRAD_PREFETCH=1 with Winograd's blocks prefetching the rows of the channels two ahead and not; PROFILE_WINOGRAD_WIDE=1 with Winograd's 56x56 tile rows in 16-lane transforms and in 8-lane ones; PROFILE_PREPACK_ONE=1 with one image's expanding 14x14 1x1s on x packed once and the forms before; PROFILE_FORM_RULE="TEXT=FORM;..." with the layers whose description ("256->1024 1x1/1 14->14") contains TEXT in FORM and in their chosen forms; PROFILE_SLEEP=MS sleeps before each lean forward, as the `ort` mode's gap does, and PROFILE_SWEEP_MB=N first writes N MB, as ORT's call in between does. Ops
/// beyond conv/relu/pool/add/gap/fc run through their graph rule. Run: dotnet run -c Release --project bench/CamEngine.Bench -- profile [batch] [device] [model.safetensors] (the input a random batch of the model's own input shape)
/// </summary>
internal static class Profile
{
    public static void Run(string[] args)
    {
        int batch = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
        string device = args.Length > 2 ? args[2] : "cpu";
        using var backend = Devices.Open(device);
        var file = args.Length > 3 ? ModelFile.Load(args[3]) : ResNet18Benchmarks.Build(new Random(18));
        using var model = DeviceModel.Load(file, backend);
        var rng = new Random(3);
        int[] inShape = [batch, .. model.Graph.InputShape];
        using var input = backend.Upload(Enumerable.Range(0, inShape.Aggregate(1, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(),
            inShape);
        int reps = batch == 1 ? 30 : 8;
        if (Environment.GetEnvironmentVariable("PROFILE_PLANAR_TAPS") is { } taps)
            CamEngine.Backends.Cpu.PlanarConv.TapBlock = int.Parse(taps, System.Globalization.CultureInfo.InvariantCulture);
        Console.WriteLine($"{(args.Length > 3 ? args[3] : "ResNet-18 shape")}, batch {batch}, {backend.DeviceDescription}");

        int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
        long allocated = GC.GetTotalAllocatedBytes();
        double whole = Best(reps, () => { using var p = model.Forward(input); });
        Console.WriteLine($"whole forward x{reps + 3}: GCs gen0 {GC.CollectionCount(0) - g0}, gen1 {GC.CollectionCount(1) - g1}, "
                          + $"gen2 {GC.CollectionCount(2) - g2}; {(GC.GetTotalAllocatedBytes() - allocated) / (reps + 3) / 1e6:F1} MB allocated per pass");
        if (Environment.GetEnvironmentVariable("PROFILE_LEAN") == "1")
        {
            LeanNodes(model, input, reps, Switches().FirstOrDefault());
            return;
        }
        using var pass = model.Forward(input);

        var rows = new List<(string Name, string What, double Ms, double Gflop)>();
        var actions = new List<Action>();
        var keep = new List<Tensor>();
        var byKind = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var node in model.Graph.Nodes)
        {
            var x = pass[node.Inputs[0]];
            var y = pass[node.Output];
            double ms, flop = 0;
            string what;
            switch (node.Op)
            {
                case Ops.Conv:
                {
                    var s = NodeGeometry.Conv(node, x.Shape[1..], batch);
                    var w = model.Parameter(node.Param("weight")!);
                    var bias = node.Param("bias") is { } bn ? model.Parameter(bn) : null;
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    Action run = () => backend.Conv2d(x, w, bias, yy, s);
                    ms = Best(reps, run);
                    actions.Add(run);
                    flop = 2.0 * s.N * s.K * s.OH * s.OW * s.CPerGroup * s.KH * s.KW;
                    what = $"{(s.Groups > 1 && s.CPerGroup == 1 ? "dwconv" : "conv")} {s.C}->{s.K} {s.KH}x{s.KW}/{s.StrideH} {s.H}->{s.OH}";
                    break;
                }
                case Ops.Relu:
                {
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    Action run = () => backend.Relu(x, yy);
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = $"relu {y.ShapeText}";
                    break;
                }
                case Ops.MaxPool:
                {
                    var s = NodeGeometry.Pool(node, x.Shape[1..], batch);
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    var am = backend.AllocateIndices(y.Shape);
                    keep.Add(am);
                    Action run = () => backend.MaxPool(x, yy, am, s);
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = $"maxpool {y.ShapeText}";
                    break;
                }
                case Ops.Add when node.Inputs.Length == 2:
                {
                    // Two activations (a residual); an addition of a constant (LayerNorm's epsilon, a bias after a
                    // matmul) goes through its rule below.
                    var c = pass[node.Inputs[1]];
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    var op = NodeGeometry.Binary(node);
                    Action run = () => backend.Binary(op, x, c, yy);
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = $"add {y.ShapeText}";
                    break;
                }
                case Ops.GlobalAvgPool:
                {
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    Action run = () => backend.GlobalAvgPool(x, yy);
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = "gap";
                    break;
                }
                case Ops.Gemm:
                {
                    var w = model.Parameter(node.Param("weight")!);
                    var bias = node.Param("bias") is { } bn ? model.Parameter(bn) : null;
                    var s = NodeGeometry.Gemm(node, x.Length / batch, w.Shape, batch);
                    var yy = backend.Allocate(y.Shape);
                    keep.Add(yy);
                    Action run = () => backend.Gemm(x, w, bias, yy, s);
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = "fc";
                    break;
                }
                default:
                {
                    // Any other op through its rule (a new output each call, freed at once); views copy nothing.
                    var rule = OpRegistry.For(node);
                    if (rule.IsView)
                        continue;
                    var inputs = node.Inputs.Select(n => pass[n]).ToList();
                    Action run = () =>
                    {
                        var t = rule.Forward(new ForwardArgs(model, pass, node, null, false));
                        if (!inputs.Any(i => ReferenceEquals(i, t)))
                            pass.Release(t);
                    };
                    ms = Best(reps, run);
                    actions.Add(run);
                    what = $"{node.Op} {y.ShapeText}";
                    break;
                }
            }
            rows.Add((node.Name, what, ms, flop));
            string kind = what.Split(' ')[0];
            byKind[kind] = byKind.GetValueOrDefault(kind) + ms;
        }

        // The same ops back to back in graph order, each timed inside the sequence (weights and activations no
        // longer hot from the previous repeat of the same op).
        var seq = new double[actions.Count];
        for (int r = 0; r < reps + 3; r++)
        {
            for (int i = 0; i < actions.Count; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                actions[i]();
                double t = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (r >= 3)
                    seq[i] = r == 3 ? t : Math.Min(seq[i], t);
            }
        }

        if (Environment.GetEnvironmentVariable("PROFILE_BACKWARD") == "1")
        {
            // Backward-data of every conv alone (what a reverse pass to the input runs per conv).
            double total = 0;
            foreach (var node in model.Graph.Nodes.Where(n => n.Op == Ops.Conv))
            {
                var x = pass[node.Inputs[0]];
                var s = NodeGeometry.Conv(node, x.Shape[1..], batch);
                var w = model.Parameter(node.Param("weight")!);
                using var dy = backend.Allocate(pass[node.Output].Shape);
                using var dx = backend.Allocate(x.Shape);
                double ms = Best(reps, () => backend.Conv2dBackwardData(dy, w, dx, s));
                total += ms;
                double gf = 2.0 * s.N * s.K * s.OH * s.OW * s.C * s.KH * s.KW / ms / 1e6;
                Console.WriteLine($"backward-data conv {s.C}->{s.K} {s.KH}x{s.KW}/{s.StrideH} {s.H}->{s.OH} {ms,8:F3} ms {gf,5:F0} GFLOP/s");
            }
            Console.WriteLine($"backward-data of all convs {total:F2} ms");
        }

        if (Environment.GetEnvironmentVariable("PROFILE_DEPTHWISE") == "1")
        {
            // Depthwise convs through DepthwiseConv against the im2col path they took before (DepthwiseConv.Enabled
            // off), per layer and for the whole forward, interleaved so that load from other processes hits both alike.
            var (offTotal, onTotal) = (0.0, 0.0);
            for (int i = 0; i < rows.Count; i++)
            {
                if (!rows[i].What.StartsWith("dwconv", StringComparison.Ordinal))
                    continue;
                var (off, on) = (double.MaxValue, double.MaxValue);
                for (int r = 0; r < reps; r++)
                {
                    CamEngine.Backends.Cpu.DepthwiseConv.Enabled = false;
                    off = Math.Min(off, Best(1, actions[i]));
                    CamEngine.Backends.Cpu.DepthwiseConv.Enabled = true;
                    on = Math.Min(on, Best(1, actions[i]));
                }
                (offTotal, onTotal) = (offTotal + off, onTotal + on);
                Console.WriteLine($"depthwise {rows[i].What,-28} im2col {off,8:F3} ms  direct {on,8:F3} ms  x{off / on:F1}");
            }
            var (wholeOff, wholeOn) = (new List<double>(), new List<double>());
            for (int r = 0; r < reps; r++)
            {
                CamEngine.Backends.Cpu.DepthwiseConv.Enabled = r % 2 == 1;
                (r % 2 == 1 ? wholeOn : wholeOff).Add(Best(1, () => { using var p = model.Forward(input); }));
                CamEngine.Backends.Cpu.DepthwiseConv.Enabled = r % 2 == 0;
                (r % 2 == 0 ? wholeOn : wholeOff).Add(Best(1, () => { using var p = model.Forward(input); }));
            }
            CamEngine.Backends.Cpu.DepthwiseConv.Enabled = true;
            double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
            Console.WriteLine($"depthwise layers: im2col {offTotal:F2} ms, direct {onTotal:F2} ms (best per layer); whole forward "
                              + $"median im2col {Median(wholeOff):F2} ms, direct {Median(wholeOn):F2} ms, direct/im2col {Median(wholeOn) / Median(wholeOff):F3}");
        }

        if (Environment.GetEnvironmentVariable("PROFILE_FORMS") == "1")
        {
            // A/B/C of the conv forms per layer (CpuConv.FormOverride), interleaved so that load from other
            // processes hits them alike.
            var forms = Enum.GetValues<CamEngine.Backends.Cpu.ConvForm>();
            for (int i = 0; i < rows.Count; i++)
            {
                if (rows[i].Gflop == 0 || Environment.GetEnvironmentVariable("PROFILE_FORMS_MATCH") is { } m && !rows[i].What.Contains(m))
                    continue;
                var best = forms.Select(_ => double.MaxValue).ToArray();
                for (int r = 0; r < reps; r++)
                {
                    for (int f = 0; f < forms.Length; f++)
                    {
                        CamEngine.Backends.Cpu.CpuConv.FormOverride = forms[f];
                        best[f] = Math.Min(best[f], Best(1, actions[i]));
                    }
                }
                CamEngine.Backends.Cpu.CpuConv.FormOverride = null;
                Console.WriteLine($"form {rows[i].What,-28} " + string.Join(" ", forms.Select((f, j) => $"{f} {best[j],7:F3}"))
                                  + $"  GFLOP/s {string.Join("/", best.Select(b => (rows[i].Gflop / b / 1e6).ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))}");
            }
        }

        foreach (var sw in Switches())
            LeanAb(model, input, reps, sw);

        double allocMs = Best(reps, () =>
        {
            var ts = new List<Tensor>();
            foreach (var node in model.Graph.Nodes)
            {
                if (node.Op != Ops.Flatten)
                    ts.Add(backend.Allocate(pass[node.Output].Shape));
            }
            foreach (var t in ts)
                t.Dispose();
        });

        Console.WriteLine($"{"node",-46} {"op",-28} {"ms",7} {"GFLOP/s",7} {"in seq",7}");
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            string name = r.Name.Length > 46 ? r.Name[^46..] : r.Name;
            Console.WriteLine($"{name,-46} {r.What,-28} {r.Ms,7:F3} {(r.Gflop > 0 ? (r.Gflop / r.Ms / 1e6).ToString("F0", System.Globalization.CultureInfo.InvariantCulture) : ""),7} {seq[i],7:F3}");
        }
        double sum = rows.Sum(r => r.Ms);
        double convFlop = rows.Where(r => r.What.StartsWith("conv ", StringComparison.Ordinal)).Sum(r => r.Gflop), convMs = byKind.GetValueOrDefault("conv");
        Console.WriteLine();
        foreach (var (k, v) in byKind.OrderByDescending(kv => kv.Value))
            Console.WriteLine($"{k,-10} {v,8:F2} ms  {100 * v / whole,5:F1}%");
        Console.WriteLine($"conv total {convFlop / 1e9:F2} GFLOP at {convFlop / convMs / 1e6:F0} GFLOP/s");
        foreach (var t in keep)
            t.Dispose();
        double wholeAgain = Best(reps, () => { using var p = model.Forward(input); });
        Console.WriteLine($"ops in sequence {seq.Sum():F2} ms; whole forward again {wholeAgain:F2} ms");
        Console.WriteLine($"sum of ops {sum:F2} ms; allocating every output {allocMs:F2} ms; whole forward {whole:F2} ms");
    }

    /// <summary>
    /// Every node as the lean forward runs it, in sequence (caches and weights as a real call finds them): the median
    /// time per node, and their sum against the whole call.
    /// </summary>
    /// <summary>A kernel switch the A/B modes flip: its two settings' names and how to set it.</summary>
    internal sealed record Switch(string OnName, string OffName, Action<bool> Set);

    /// <summary>The switches named by PROFILE_SPIN, PROFILE_COPY_SPLIT, PROFILE_AFFINE, PROFILE_POOL, PROFILE_MASKED, PROFILE_FUSION, PROFILE_PIXEL_PAD, PROFILE_DW_CHANNELS_LAST, PROFILE_DW_ROWS, PROFILE_DW_FLAT, PROFILE_DW_TAIL, PROFILE_DW_ZEROS, PROFILE_DW_PREFETCH, PROFILE_WINOGRAD_ENDS, PROFILE_PREFETCH, PROFILE_PREFETCH_OUTPUT, PROFILE_STREAM, PROFILE_MERGE, PROFILE_COMPACT, PROFILE_GEMM_STORE, PROFILE_SUBSAMPLED, PROFILE_PLANAR, PROFILE_PLANAR_NARROW, PROFILE_PLANAR_REDUCING, PROFILE_ROWS_IN_PLACE, PROFILE_SUBSAMPLE_COPY, PROFILE_BATCHED_ROWS, PROFILE_CROSSINGS, PROFILE_RESIDUAL_PREFETCH, PROFILE_PREPACK_ROWS, PROFILE_PLANAR_PREFETCH, PROFILE_PACKED_MATMUL, PROFILE_WINOGRAD_BLOCKS, PROFILE_WINOGRAD_PREFETCH, PROFILE_WINOGRAD_WIDE, PROFILE_PREPACK_ONE and PROFILE_FORM_RULE.</summary>
    internal static IEnumerable<Switch> Switches()
    {
        if (Environment.GetEnvironmentVariable("PROFILE_FORM_RULE") is { Length: > 0 } ruleText)
        {
            // "DESCRIPTION=FORM;...": layers whose description ("256->1024 1x1/1 14->14") contains DESCRIPTION take FORM.
            var rules = ruleText.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(r => r.Split('='))
                .Select(r => (Match: r[0], Form: Enum.Parse<CamEngine.Backends.Cpu.ConvForm>(r[1]))).ToArray();
            CamEngine.Backends.Cpu.ConvForm? Rule(CamEngine.Kernels.ConvShape s)
            {
                string d = $"{s.C}->{s.K} {s.KH}x{s.KW}/{s.StrideH} {s.H}->{s.OH}";
                foreach (var r in rules)
                {
                    if (d.Contains(r.Match, StringComparison.Ordinal))
                        return r.Form;
                }
                return null;
            }
            yield return new($"rule {ruleText}", "chosen forms", on => CamEngine.Backends.Cpu.CpuConv.FormRule = on ? Rule : null);
        }
        if (Environment.GetEnvironmentVariable("PROFILE_WINOGRAD_PREFETCH") == "1")
            yield return new("Winograd's blocks prefetching the rows of the channels ahead", "not",
                on => CamEngine.Backends.Cpu.WinogradConv.Prefetch = on);
        if (Environment.GetEnvironmentVariable("PROFILE_WINOGRAD_WIDE") == "1")
            yield return new("Winograd's 56x56 tile rows in 16-lane transforms", "in 8-lane ones",
                on => CamEngine.Backends.Cpu.WinogradConv.WideRows = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PREPACK_ONE") == "1")
            yield return new("one image's 14x14 1x1s on x packed once", "the forms before", on => CamEngine.Backends.Cpu.CpuConv.PrepackOne = on);
        if (Environment.GetEnvironmentVariable("PROFILE_SPIN") == "1")
            yield return new("workers spin 25 ms", "200 us", on => CamEngine.Backends.Cpu.CpuParallel.SpinMicroseconds = on ? CamEngine.Backends.Cpu.CpuParallel.DefaultSpinMicroseconds : 200);
        if (Environment.GetEnvironmentVariable("PROFILE_COPY_SPLIT") == "1")
            yield return new("NHWC copy split by channels", "by pixel blocks only", on => CamEngine.Backends.Cpu.DirectConv.SplitCopyChannels = on);
        if (Environment.GetEnvironmentVariable("PROFILE_AFFINE") == "1")
            yield return new("a share of each loop per thread", "one shared counter", on => CamEngine.Backends.Cpu.CpuParallel.Affine = on);
        if (Environment.GetEnvironmentVariable("PROFILE_POOL") == "1")
            yield return new("spinning workers", "Parallel.For", on => CamEngine.Backends.Cpu.CpuParallel.Enabled = on);
        if (Environment.GetEnvironmentVariable("PROFILE_MASKED") == "1")
            yield return new("masked short-tile stores", "element stores", on => CamEngine.Backends.Cpu.DirectConv.MaskedStores = on);
        if (Environment.GetEnvironmentVariable("PROFILE_FUSION") == "1")
            yield return new("fused store", "separate passes", on => CamEngine.Backends.Cpu.CpuBackend.FuseEpilogues = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PIXEL_PAD") == "1")
            yield return new("direct form's padded pixel stride", "unpadded", on => CamEngine.Backends.Cpu.DirectConv.PadPixels = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_CHANNELS_LAST") == "1")
            yield return new("channels-last depthwise on small planes", "per-plane", on =>
            {
                CamEngine.Backends.Cpu.DepthwiseConv.RowsForm = false; // it would take most of these planes first
                CamEngine.Backends.Cpu.DepthwiseConv.ChannelsLastMaxPixels = on ? CamEngine.Backends.Cpu.DepthwiseConv.DefaultChannelsLastMaxPixels : 0;
            });
        if (Environment.GetEnvironmentVariable("PROFILE_READ_A_ROWS") == "1")
            yield return new("linear layers reading A's rows in place", "packing A", on => CamEngine.Backends.Cpu.CpuBackend.ReadARows = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_ROWS") == "1")
            yield return new("depthwise row form", "per-plane and channels-last", on => CamEngine.Backends.Cpu.DepthwiseConv.RowsForm = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PREFETCH") == "1")
            yield return new("weights prefetched", "not prefetched", on => CamEngine.Backends.Cpu.DirectConv.Prefetch = CamEngine.Backends.Cpu.PackedGemm.Prefetch = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PREFETCH_OUTPUT") == "1")
            yield return new("GEMM output tiles prefetched", "not prefetched", on => CamEngine.Backends.Cpu.PackedGemm.PrefetchOutput = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PLANAR_REDUCING") == "1")
            yield return new("planar reducing 14x14 1x1s", "the forms before", on => CamEngine.Backends.Cpu.PlanarConv.ReducingPointwise = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_PREFETCH") == "1")
            yield return new("depthwise planes prefetched", "not prefetched", on => CamEngine.Backends.Cpu.DepthwiseConv.PrefetchPlanes = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_TAIL") == "1")
            yield return new("depthwise row tails masked", "8, 4 and 1 at a time", on => CamEngine.Backends.Cpu.DepthwiseConv.MaskedRowTail = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_ZEROS") == "1")
            yield return new("depthwise plane buffers' zeros kept", "cleared per plane", on => CamEngine.Backends.Cpu.DepthwiseConv.KeepZeros = on);
        if (Environment.GetEnvironmentVariable("PROFILE_WINOGRAD_ENDS") == "1")
            yield return new("Winograd row ends as masked vectors", "one output at a time", on => CamEngine.Backends.Cpu.WinogradConv.MaskedRowEnds = on);
        if (Environment.GetEnvironmentVariable("PROFILE_DW_FLAT") == "1")
            yield return new("depthwise flat form", "the forms before it", on => CamEngine.Backends.Cpu.DepthwiseConv.FlatForm = on);
        if (Environment.GetEnvironmentVariable("PROFILE_STREAM") == "1")
            yield return new("large GEMM outputs streamed", "stored through the caches", on => CamEngine.Backends.Cpu.PackedGemm.StreamBytes = on ? 24L << 20 : long.MaxValue);
        if (Environment.GetEnvironmentVariable("PROFILE_COMPACT") == "1")
            yield return new("compact column plans on large planes", "temporary and scatter", on => CamEngine.Backends.Cpu.CpuConv.CompactPixels = on ? 1024 : 0);
        if (Environment.GetEnvironmentVariable("PROFILE_GEMM_STORE") == "1")
            yield return new("GEMM tile epilogue in registers", "second pass over the stored tile", on => CamEngine.Backends.Cpu.PackedGemm.FusedStores = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PLANAR_NARROW") == "1")
            yield return new("planar form for 1x1s of 64 or fewer inputs or outputs on 14x14 and 28x28", "the forms before", on => CamEngine.Backends.Cpu.PlanarConv.NarrowPointwise = on);
        if (Environment.GetEnvironmentVariable("PROFILE_SUBSAMPLE_COPY") == "1")
            yield return new("strided 1x1 copied to a dense plane, rows read in place", "gathered per task", on => CamEngine.Backends.Cpu.CpuConv.SubsampleCopy = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PACKED_MATMUL") == "1")
            yield return new("batched MatMuls as packed GEMMs", "row loops", on => CamEngine.Backends.Cpu.CpuBackend.PackedMatMul = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PLANAR_PREFETCH") == "1")
            yield return new("planar stem tiles of a batch prefetching their output lines", "not", on => CamEngine.Backends.Cpu.PlanarConv.PrefetchOutput = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PREPACK_ROWS") == "1")
            yield return new("a batch's off-line x rows packed once for its 1x1 GEMM", "read in place", on => CamEngine.Backends.Cpu.CpuConv.PrepackOffLineRows = on);
        if (Environment.GetEnvironmentVariable("PROFILE_RESIDUAL_PREFETCH") == "1")
            yield return new("GEMM tiles prefetching the next tile's residual", "not", on => CamEngine.Backends.Cpu.PackedGemm.PrefetchResidual = on);
        if (Environment.GetEnvironmentVariable("PROFILE_CROSSINGS") == "1")
            yield return new("GEMM tiles crossing into the next image as masked vectors", "one float at a time", on => CamEngine.Backends.Cpu.PackedGemm.MaskedCrossings = on);
        if (Environment.GetEnvironmentVariable("PROFILE_BATCHED_ROWS") == "1")
            yield return new("a batch's in-place 1x1 GEMMs as one", "one per image", on => CamEngine.Backends.Cpu.CpuConv.BatchedRows = on);
        if (Environment.GetEnvironmentVariable("PROFILE_ROWS_IN_PLACE") == "1")
            yield return new("1x1 GEMMs reading x's rows in place", "packing them per task", on => CamEngine.Backends.Cpu.CpuConv.RowsInPlace = on);
        if (Environment.GetEnvironmentVariable("PROFILE_PLANAR") == "1")
            yield return new("planar form (stems, 14x14 expansions)", "the forms before", on => CamEngine.Backends.Cpu.PlanarConv.Chosen = on);
        if (Environment.GetEnvironmentVariable("PROFILE_SUBSAMPLED") == "1")
            yield return new("strided 1x1 as GEMMs gathering from x", "strided 1x1 in the direct form", on => CamEngine.Backends.Cpu.CpuConv.SubsampledPointwise = on);
        if (Environment.GetEnvironmentVariable("PROFILE_MERGE") == "1")
            yield return new("merged segments", "one segment per tap", on => CamEngine.Backends.Cpu.DirectConv.MergeSegments = on);
        if (Environment.GetEnvironmentVariable("PROFILE_WINOGRAD_BLOCKS") == "1")
            yield return new("Winograd in blocks of tile rows", "in chunks", on => CamEngine.Backends.Cpu.WinogradConv.InBlocksOverride = on ? null : false);
    }

    /// <summary>Every node's median time inside the lean forward; with a switch, calls alternate its settings and
    /// each node gets both medians.</summary>
    private static void LeanNodes(DeviceModel model, Tensor input, int reps, Switch? sw)
    {
        // Every node as the lean forward runs it, in sequence (caches and weights as a real call finds them).
        if (Environment.GetEnvironmentVariable("PROFILE_PROBE") == "1")
            Probe();
        var ticks = new Dictionary<(GraphNode, bool), List<long>>();
        bool setting = true;
        DeviceModel.NodeTimer = (node, t) =>
        {
            if (!ticks.TryGetValue((node, setting), out var l))
                ticks[(node, setting)] = l = [];
            l.Add(t);
        };
        var runs = new List<double>();
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        int gen2 = GC.CollectionCount(2);
        int sleep = SleepMs();
        int calls = sw == null ? 3 + reps : 2 * (3 + reps);
        for (int r = 0; r < calls; r++)
        {
            setting = sw == null || r % 2 == 0;
            sw?.Set(setting);
            Gap(sleep);
            long t0 = Stopwatch.GetTimestamp();
            using (model.ForwardOutput(input))
            {
            }
            if (r >= (sw == null ? 3 : 6))
                runs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        sw?.Set(true);
        DeviceModel.NodeTimer = null;
        double sumLean = 0;
        double Median(GraphNode node, bool on)
        {
            var l = ticks[(node, on)].Skip(3).Order().ToList();
            return l[l.Count / 2] * 1000.0 / Stopwatch.Frequency;
        }
        if (sw != null)
            Console.WriteLine($"lean nodes, alternating: {sw.OnName} | {sw.OffName}");
        foreach (var node in model.Graph.Nodes)
        {
            double ms = Median(node, true);
            sumLean += ms;
            Console.WriteLine($"lean {node.Name,-46} {node.Op,-10} {ms,8:F3}" + (sw == null ? "" : $" {Median(node, false),8:F3}"));
        }
        runs.Sort();
        Console.WriteLine($"lean forward, nodes timed: median {runs[runs.Count / 2]:F2} ms; sum of node medians {sumLean:F2} ms; "
                          + $"{(GC.GetTotalAllocatedBytes(precise: true) - allocated) / (3.0 + reps) / 1e6:F1} MB allocated per call, "
                          + $"{GC.CollectionCount(2) - gen2} gen2 collections in {3 + reps} calls");
    }

    /// <summary>
    /// The lean forward with a kernel switch on and off, alternating, so that load from other processes hits both
    /// alike: medians, best, and on/off.
    /// </summary>
    private static void LeanAb(DeviceModel model, Tensor input, int reps, Switch sw)
    {
        var (onName, offName, set) = (sw.OnName, sw.OffName, sw.Set);
        var on = new List<double>();
        var off = new List<double>();
        int sleep = SleepMs();
        for (int r = 0; r < 3 + 2 * reps; r++)
        {
            foreach (bool v in r % 2 == 0 ? new[] { true, false } : new[] { false, true })
            {
                set(v);
                Gap(sleep);
                long t0 = Stopwatch.GetTimestamp();
                using (model.ForwardOutput(input))
                {
                }
                double t = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (r >= 3)
                    (v ? on : off).Add(t);
            }
        }
        set(true);
        on.Sort();
        off.Sort();
        Console.WriteLine($"lean forward, {onName}: median {on[on.Count / 2]:F2} ms, best {on[0]:F2}; {offName}: "
                          + $"median {off[off.Count / 2]:F2} ms, best {off[0]:F2}; ratio (medians) {on[on.Count / 2] / off[off.Count / 2]:F3}");
    }

    /// <summary>PROFILE_SLEEP: milliseconds to sleep before each timed lean forward (0).</summary>
    private static float[]? s_sweep;

    /// <summary>Before a lean forward: PROFILE_SWEEP_MB=N writes N MB (evicting the caches, as ORT's call between the
    /// engine's calls in the `ort` mode does), then PROFILE_SLEEP=MS sleeps.</summary>
    private static void Gap(int sleepMs)
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("PROFILE_SWEEP_MB"), out int mb) && mb > 0)
        {
            s_sweep ??= new float[mb << 18];
            for (int i = 0; i < s_sweep.Length; i += 16)
                s_sweep[i] += 1f;
        }
        Thread.Sleep(sleepMs);
    }

    private static long s_pingPong;

    /// <summary>
    /// PROFILE_PROBE=1, before the lean forward: what this process finds of the machine, the round trip of a cache
    /// line between two spinning threads (a value one core writes and the other reads), one thread's read bandwidth
    /// over 64 MB and its latency chasing pointers through 64 MB at random. On the 2-vCPU VM some processes found
    /// round trips of 400-470 ns and others 130-210, with the same bandwidth and latency (see CpuParallel.Affine).
    /// </summary>
    private static void Probe()
    {
        const long Trips = 200_000;
        var partner = new Thread(() =>
        {
            for (long i = 1; i < 2 * Trips; i += 2)
            {
                while (Volatile.Read(ref s_pingPong) != i)
                {
                }
                Volatile.Write(ref s_pingPong, i + 1);
            }
        });
        Volatile.Write(ref s_pingPong, 0);
        partner.Start();
        var clock = Stopwatch.StartNew();
        for (long i = 0; i < 2 * Trips; i += 2)
        {
            Volatile.Write(ref s_pingPong, i + 1);
            while (Volatile.Read(ref s_pingPong) != i + 2)
            {
            }
        }
        double tripNs = clock.Elapsed.TotalMilliseconds * 1e6 / Trips;
        partner.Join();

        var data = new float[16 << 20];
        for (int i = 0; i < data.Length; i++)
            data[i] = i;
        float sum = 0;
        clock.Restart();
        for (int r = 0; r < 4; r++)
        {
            for (int i = 0; i < data.Length; i += 16)
                sum += data[i];
        }
        double gbPerS = 4.0 * data.Length * sizeof(float) / clock.Elapsed.TotalSeconds / 1e9;

        // One line in 16 floats visited in a random cycle.
        var next = new int[16 << 20];
        var order = Enumerable.Range(0, next.Length / 16).Select(i => i * 16).ToArray();
        new Random(1).Shuffle(order);
        for (int i = 0; i < order.Length; i++)
            next[order[i]] = order[(i + 1) % order.Length];
        int at = order[0];
        const int Hops = 2_000_000;
        clock.Restart();
        for (int i = 0; i < Hops; i++)
            at = next[at];
        double hopNs = clock.Elapsed.TotalMilliseconds * 1e6 / Hops;
        Console.WriteLine($"probe: cache line round trip between two threads {tripNs:F0} ns; one thread reads {gbPerS:F1} GB/s, "
                          + $"a random line in 64 MB {hopNs:F0} ns (checksum {sum + at:E2})");
    }

    private static int SleepMs() => int.TryParse(Environment.GetEnvironmentVariable("PROFILE_SLEEP"), out int ms) ? ms : 0;

    private static double Best(int reps, Action f) => TorchLike.Times(3, reps, f).Min();
}
