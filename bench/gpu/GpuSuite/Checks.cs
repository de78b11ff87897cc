using System.Globalization;
using CamEngine.Backends;
using CamEngine.Kernels;

namespace CamEngine.GpuSuite;

/// <summary>One comparison of a fast kernel with the reference: which kernel, on what, and the worst error.</summary>
internal sealed record CheckResult(string Kernel, string What, bool Ok, double MaxError, int Mismatches);

/// <summary>
/// The tiled kernels through the backend API against the double-precision reference backend on small edge
/// geometries, with llm.c's rule <c>|a - b| &lt;= atol + rtol |ref|</c>. The same checks run on ILGPU's CPU
/// accelerator shaped like a GPU (<c>--dry</c>) and on CUDA.
/// </summary>
internal sealed class Checks(Backend fast, ReferenceBackend reference)
{
    private const double Atol = 1e-5, Rtol = 1e-4;
    private readonly List<CheckResult> _results = [];

    public IReadOnlyList<CheckResult> Results => _results;

    /// <summary>Conv edge geometries: N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G.</summary>
    public static readonly (string Name, ConvShape Shape)[] ConvShapes =
    [
        ("odd channels, batch 2", new(2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)),
        ("tails in rows, cols, K", new(2, 5, 9, 9, 65, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1)),
        ("stride 3, dilation 2, asym pads", new(2, 3, 11, 10, 4, 3, 3, 3, 3, 2, 1, 0, 2, 2, 2, 1)),
        ("groups 2, strides 1x2", new(1, 6, 7, 7, 4, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 2)),
        ("depthwise x2, dilation 2", new(3, 2, 8, 9, 4, 2, 3, 2, 1, 2, 2, 2, 1, 2, 2, 2)),
    ];

    public void RunAll()
    {
        foreach (var (name, s) in ConvShapes)
            Conv(name, s);
        Fused();
        foreach (var (m, k, n, t) in new[] { (5, 21, 130, true), (67, 9, 3, false) })
            Gemm(m, k, n, t);
        Reductions();
        CamKernels();
    }

    private static string ConvKernel(ConvShape s, string pass) => (pass, s.CPerGroup == 1 && s.Groups > 1) switch
    {
        ("forward", true) => "Conv2d.DepthwiseForward",
        ("forward", false) => "Conv2d.TiledForward",
        ("backward-data", true) => "Conv2d.BackwardData",
        ("backward-data", false) => "Conv2d.TiledBackwardData",
        ("backward-weights", true) => "Conv2d.DepthwiseBackwardWeights",
        _ => "Conv2d.TiledBackwardWeights",
    };

    private void Conv(string name, ConvShape s)
    {
        var rng = new Random(1);
        using var x = Pair(rng, out var xr, s.N, s.C, s.H, s.W);
        using var w = Pair(rng, out var wr, s.K, s.CPerGroup, s.KH, s.KW);
        using var b = Pair(rng, out var br, s.K);
        using var dy = Pair(rng, out var dyr, s.N, s.K, s.OH, s.OW);
        using (var y = fast.Allocate(s.N, s.K, s.OH, s.OW))
        using (var yr = reference.Allocate(s.N, s.K, s.OH, s.OW))
        {
            fast.Conv2d(x, w, b, y, s);
            reference.Conv2d(xr, wr, br, yr, s);
            Compare(ConvKernel(s, "forward"), $"forward, {name}", y, yr);
        }
        using (var dx = fast.Allocate(x.Shape))
        using (var dxr = reference.Allocate(x.Shape))
        {
            fast.Conv2dBackwardData(dy, w, dx, s);
            reference.Conv2dBackwardData(dyr, wr, dxr, s);
            Compare(ConvKernel(s, "backward-data"), $"backward-data, {name}", dx, dxr);
        }
        using (var dw = fast.Allocate(w.Shape))
        using (var dwr = reference.Allocate(w.Shape))
        {
            fast.Conv2dBackwardWeights(x, dy, dw, s);
            reference.Conv2dBackwardWeights(xr, dyr, dwr, s);
            Compare(ConvKernel(s, "backward-weights"), $"backward-weights, {name}", dw, dwr);
        }
        foreach (var t in new[] { xr, wr, br, dyr })
            t.Dispose();
    }

    private void Fused()
    {
        var s = new ConvShape(2, 3, 6, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        var rng = new Random(2);
        using var x = Pair(rng, out var xr, s.N, s.C, s.H, s.W);
        using var w = Pair(rng, out var wr, s.K, s.C, s.KH, s.KW);
        using var b = Pair(rng, out var br, s.K);
        using var r = Pair(rng, out var rr, s.N, s.K, s.OH, s.OW);
        foreach (var act in new[] { EpilogueActivation.Relu, EpilogueActivation.Clip, EpilogueActivation.Silu })
        {
            using var y = fast.Allocate(s.N, s.K, s.OH, s.OW);
            using var yr = reference.Allocate(s.N, s.K, s.OH, s.OW);
            fast.Conv2dFused(x, w, b, r, y, s, act, -0.5f, 0.75f);
            reference.Conv2dFused(xr, wr, br, rr, yr, s, act, -0.5f, 0.75f);
            Compare("Conv2d.TiledForward", $"forward + bias + residual + {act}", y, yr);
        }
        foreach (var t in new[] { xr, wr, br, rr })
            t.Dispose();
        // A stem: conv 7x7/2, ReLU and a 3x3/2 max pool as one call (Backend.Conv2dMaxPool; on the GPU the tiled conv
        // into a temporary, then the pool's values).
        var st = new ConvShape(2, 3, 33, 36, 6, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1);
        var p = new PoolShape(st.N, st.K, st.OH, st.OW, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false);
        using var sx = Pair(rng, out var sxr, st.N, st.C, st.H, st.W);
        using var sw = Pair(rng, out var swr, st.K, st.C, st.KH, st.KW);
        using var sb = Pair(rng, out var sbr, st.K);
        using (var y = fast.Allocate(p.N, p.C, p.OH, p.OW))
        using (var yr = reference.Allocate(p.N, p.C, p.OH, p.OW))
        {
            fast.Conv2dMaxPool(sx, sw, sb, y, st, EpilogueActivation.Relu, 0f, 0f, p);
            reference.Conv2dMaxPool(sxr, swr, sbr, yr, st, EpilogueActivation.Relu, 0f, 0f, p);
            Compare("Conv2d.TiledForward", "stem: conv + ReLU + 3x3/2 max pool", y, yr);
        }
        foreach (var t in new[] { sxr, swr, sbr })
            t.Dispose();
    }

    private void Gemm(int m, int k, int n, bool transB)
    {
        var s = new GemmShape(m, k, n, transB, 0.75f, 1.5f);
        var rng = new Random(3);
        string name = $"M={m} K={k} N={n}{(transB ? " transB" : "")}";
        using var x = Pair(rng, out var xr, m, k);
        using var w = transB ? Pair(rng, out var wr, n, k) : Pair(rng, out wr, k, n);
        using var b = Pair(rng, out var br, n);
        using var dy = Pair(rng, out var dyr, m, n);
        using (var y = fast.Allocate(m, n))
        using (var yr = reference.Allocate(m, n))
        {
            fast.Gemm(x, w, b, y, s);
            reference.Gemm(xr, wr, br, yr, s);
            Compare("Gemm.TiledForward", $"forward, {name}", y, yr);
        }
        using (var dx = fast.Allocate(m, k))
        using (var dxr = reference.Allocate(m, k))
        {
            fast.GemmBackwardData(dy, w, dx, s);
            reference.GemmBackwardData(dyr, wr, dxr, s);
            Compare("Gemm.TiledBackwardData", $"backward-data, {name}", dx, dxr);
        }
        using (var dw = fast.Allocate(w.Shape))
        using (var dwr = reference.Allocate(w.Shape))
        {
            fast.GemmBackwardWeights(x, dy, dw, s);
            reference.GemmBackwardWeights(xr, dyr, dwr, s);
            Compare("Gemm.TiledBackwardWeights", $"backward-weights, {name}", dw, dwr);
        }
        // One 256-thread group per feature: on the CPU accelerator, only where the features are few.
        bool cpu = fast is IlgpuBackend { Accelerator.AcceleratorType: ILGPU.Runtime.AcceleratorType.CPU };
        if (n <= 8 || !cpu)
        {
            using var db = fast.Allocate(n);
            using var dbr = reference.Allocate(n);
            fast.GemmBackwardBias(dy, db, s);
            reference.GemmBackwardBias(dyr, dbr, s);
            Compare("Reductions.ChannelSum", $"dense bias gradient, {name}", db, dbr);
        }
        foreach (var t in new[] { xr, wr, br, dyr })
            t.Dispose();
    }

    private void Reductions()
    {
        var rng = new Random(4);
        using var x = Pair(rng, out var xr, 3, 5, 7, 7);
        using (var y = fast.Allocate(3, 5, 1, 1))
        using (var yr = reference.Allocate(3, 5, 1, 1))
        {
            fast.GlobalAvgPool(x, y);
            reference.GlobalAvgPool(xr, yr);
            Compare("Reductions.RowMeans", "global average pool 3x5x7x7", y, yr);
        }
        var s = new ConvShape(3, 2, 7, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        using var dy = Pair(rng, out var dyr, 3, 5, 7, 7);
        using (var db = fast.Allocate(5))
        using (var dbr = reference.Allocate(5))
        {
            fast.Conv2dBackwardBias(dy, db, s);
            reference.Conv2dBackwardBias(dyr, dbr, s);
            Compare("Reductions.ChannelSum", "conv bias gradient 3x5x7x7", db, dbr);
        }
        using (var y = fast.Allocate(3, 245))
        using (var yr = reference.Allocate(3, 245))
        using (var x2 = fast.Upload(fast.Download(x), 3, 245))
        using (var x2r = reference.Upload(fast.Download(x), 3, 245))
        {
            fast.MinMaxNormalizeRows(x2, y);
            reference.MinMaxNormalizeRows(x2r, yr);
            Compare("Reductions.MinMaxNormalize", "min-max normalization 3x245", y, yr);
        }
        xr.Dispose();
        dyr.Dispose();
    }

    /// <summary>The CAM kernels (<see cref="CamMaps"/>) against the reference backend, which runs the host arithmetic
    /// the methods used before: Score-CAM masks in both orders (odd sizes, a constant channel), a masked batch with
    /// noise and scales, an occlusion batch, channel weights under every rule, the weighted and element-wise channel sums.</summary>
    private void CamKernels()
    {
        var rng = new Random(6);
        using var a = Pair(rng, out var ar, 2, 3, 3, 5);
        reference.CopyFromHost(ar, Enumerable.Repeat(0.5f, 15).Concat(reference.Download(ar).Skip(15)).ToArray());
        fast.CopyFromHost(a, reference.Download(ar));
        foreach (var (first, align, eps, what) in new[]
                 {
                     (false, true, 1e-8f, "upsample (align corners), min-max + 1e-8"), (true, false, 0f, "min-max, upsample"),
                 })
        {
            using var m = fast.Allocate(2, 3, 7, 9);
            using var mr = reference.Allocate(2, 3, 7, 9);
            fast.ActivationMasks(a, m, first, align, eps);
            reference.ActivationMasks(ar, mr, first, align, eps);
            Compare(first ? "Reductions.MinMaxNormalize" : "CamMaps.Upsample", $"Score-CAM masks 2x3 3x5->7x9, {what}", m, mr);
        }
        using var x = Pair(rng, out var xr, 2, 3, 5, 7);
        using var masks = Pair(rng, out var masksr, 4, 5, 7);
        using var noise = Pair(rng, out var noiser, 3, 5, 7);
        MaskedRow[] rows = [new(1, 3, -1, 1f), new(0, 0, 2, 1f), new(1, 2, 0, 0.3f), new(0, 1, -1, 2.5f)];
        using (var y = fast.Allocate(4, 3, 5, 7))
        using (var yr = reference.Allocate(4, 3, 5, 7))
        {
            fast.MaskedInputs(x, masks, noise, rows, y);
            reference.MaskedInputs(xr, masksr, noiser, rows, yr);
            Compare("CamMaps.Masked", "masked batch 4x3x5x7, noise and scales", y, yr);
        }
        using (var baseline = Pair(rng, out var baseliner, 2, 3, 5, 7))
        using (var y = fast.Allocate(3, 3, 5, 7))
        using (var yr = reference.Allocate(3, 3, 5, 7))
        {
            WindowRow[] windows = [new(1, 0, 2, 3, 7), new(0, 4, 5, 0, 1), new(1, 1, 4, 2, 5)];
            fast.WindowedInputs(x, baseline, windows, y);
            reference.WindowedInputs(xr, baseliner, windows, yr);
            Compare("CamMaps.Windowed", "occlusion batch 3x3x5x7", y, yr);
            baseliner.Dispose();
        }
        using var g = Pair(rng, out var gr, 2, 3, 3, 5);
        foreach (var (rule, eps) in new[]
                 {
                     (CamWeightRule.GradCam, 0.0), (CamWeightRule.XGradCam, 1e-7), (CamWeightRule.GradCamPlusPlus, 1e-6),
                     (CamWeightRule.GradCamPlusPlusSquared, 0.0),
                 })
        {
            using var w = fast.Allocate(2, 3);
            using var wr = reference.Allocate(2, 3);
            fast.CamChannelWeights(a, g, w, rule, eps);
            reference.CamChannelWeights(ar, gr, wr, rule, eps);
            Compare(rule == CamWeightRule.GradCam ? "Reductions.RowMeans" : "CamMaps.ChannelWeights", $"{rule} channel weights 2x3x3x5", w, wr);
            using var map = fast.Allocate(2, 3, 5);
            using var mapr = reference.Allocate(2, 3, 5);
            fast.WeightedChannelSum(a, w, map);
            reference.WeightedChannelSum(ar, wr, mapr);
            Compare("CamMaps.WeightedChannelSum", $"weighted channel sum, {rule}", map, mapr);
        }
        foreach (bool relu in new[] { false, true })
        {
            using var map = fast.Allocate(2, 3, 5);
            using var mapr = reference.Allocate(2, 3, 5);
            fast.ProductChannelSum(a, g, map, relu);
            reference.ProductChannelSum(ar, gr, mapr, relu);
            Compare("CamMaps.ProductChannelSum", relu ? "Layer-CAM channel sum" : "HiResCAM channel sum", map, mapr);
        }
        foreach (var t in new[] { ar, xr, masksr, noiser, gr })
            t.Dispose();
    }

    private Tensor Pair(Random rng, out Tensor r, params int[] shape)
    {
        var data = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++)
            data[i] = (float)(rng.NextDouble() * 2 - 1);
        r = reference.Upload(data, shape);
        return fast.Upload(data, shape);
    }

    private void Compare(string kernel, string what, Tensor a, Tensor r)
    {
        var got = fast.Download(a);
        var want = ReferenceBackend.DownloadDouble(r);
        double worst = 0;
        int bad = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double err = Math.Abs(got[i] - want[i]);
            worst = Math.Max(worst, double.IsNaN(err) ? double.PositiveInfinity : err);
            if (!(err <= Atol + Rtol * Math.Abs(want[i])))
                bad++;
        }
        _results.Add(new CheckResult(kernel, what, bad == 0 && got.Length == want.Length, worst, bad));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {(bad == 0 ? "ok  " : "FAIL")} {kernel,-30} {what,-44} max |err| {worst:E1}{(bad > 0 ? $", {bad}/{got.Length} mismatches" : "")}"));
    }
}
