using CamEngine.Backends;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// The tiled GPU kernels (implicit-GEMM conv and its derivatives, tiled GEMM, depthwise, fused epilogues, group and
/// warp reductions) on ILGPU's CPU accelerator shaped like a GPU (256 threads per group, warps of 32, real shared
/// memory and barriers), through the backend API, against the double-precision reference on edge geometries: odd
/// channels, tile tails in every dimension (rows past 128, columns past 64, reductions not a multiple of 8), strides
/// 1 to 3, dilation, asymmetric pads, groups, depthwise, batch tails, split-K. Barriers cost milliseconds there, so
/// the shapes are tiny; the whole fixture takes seconds.
/// </summary>
[TestFixture]
internal sealed class TiledKernelTests
{
    private const double Atol = 1e-5, Rtol = 1e-4;
    private IlgpuBackend _gpu = null!;
    private readonly ReferenceBackend _ref = new();

    [OneTimeSetUp]
    public void Open() => _gpu = IlgpuBackend.CreateTiledCpu();

    [OneTimeTearDown]
    public void Close()
    {
        _gpu.Dispose();
        _ref.Dispose();
    }

    [Test]
    public void The_backend_runs_the_tiled_kernels_with_GPU_sized_groups()
    {
        Assert.That(_gpu.UsesTiledKernels, Is.True);
        Assert.That(_gpu.Accelerator.MaxNumThreadsPerGroup, Is.GreaterThanOrEqualTo(TiledGemm.Threads));
        Assert.That(_gpu.Accelerator.WarpSize, Is.EqualTo(32));
    }

    public static IEnumerable<TestCaseData> ConvCases()
    {
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G. Few output channels where the bias gradient or a
        // depthwise weight gradient is checked: those run one 256-thread group per channel or weight, and a group
        // reduction costs a tenth of a second on the CPU accelerator.
        yield return Case("odd channels, batch 2, bias", new(2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), true);
        // Forward: 2 row tiles (162 pixels), 2 column tiles (65 channels), reduction 15 (a tail step).
        // Backward-data: 2 row tiles, reduction 195. Backward-weights: reduction 162.
        yield return Case("tails in rows, columns and K", new(2, 5, 9, 9, 65, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1), false);
        yield return Case("stride 2, asymmetric pads", new(1, 5, 9, 8, 7, 3, 3, 2, 2, 1, 0, 2, 1, 1, 1, 1), false);
        yield return Case("stride 3, dilation 2", new(2, 3, 11, 10, 4, 3, 3, 3, 3, 2, 1, 0, 2, 2, 2, 1), false);
        yield return Case("strides 1x2, groups 2", new(1, 6, 7, 7, 4, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 2), false);
        yield return Case("depthwise, stride 2x1", new(3, 2, 6, 7, 2, 3, 3, 2, 1, 1, 1, 1, 0, 1, 1, 2), false);
        yield return Case("depthwise, multiplier 2, dilation 2", new(1, 2, 8, 9, 4, 2, 3, 1, 1, 2, 2, 2, 2, 2, 2, 2), false);
        yield return Case("1x1 stride 2 (downsample), batch tail 3", new(3, 9, 5, 5, 6, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), false);
        yield return Case("7x7 stride 2 stem", new(1, 3, 11, 11, 4, 7, 7, 2, 2, 3, 3, 2, 2, 1, 1, 1), false);
    }

    private static TestCaseData Case(string name, ConvShape s, bool bias) => new TestCaseData(s, bias).SetArgDisplayNames(name);

    [TestCaseSource(nameof(ConvCases))]
    public void Conv_forward_and_derivatives_match_reference(ConvShape s, bool biasGradient)
    {
        var rng = new Random(1234);
        using var x = Pair(rng, out var xr, s.N, s.C, s.H, s.W);
        using var w = Pair(rng, out var wr, s.K, s.CPerGroup, s.KH, s.KW);
        using var b = Pair(rng, out var br, s.K);
        using var dy = Pair(rng, out var dyr, s.N, s.K, s.OH, s.OW);
        foreach (bool bias in new[] { true, false })
        {
            using var y = _gpu.Allocate(s.N, s.K, s.OH, s.OW);
            using var yr = _ref.Allocate(s.N, s.K, s.OH, s.OW);
            _gpu.Conv2d(x, w, bias ? b : null, y, s);
            _ref.Conv2d(xr, wr, bias ? br : null, yr, s);
            Compare(y, yr, $"conv forward (bias {bias})");
        }
        using var dx = _gpu.Upload(TensorAssert.Random(rng, x.Length), x.Shape); // overwritten, not accumulated
        using var dxr = _ref.Allocate(x.Shape);
        _gpu.Conv2dBackwardData(dy, w, dx, s);
        _ref.Conv2dBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "conv backward data");
        using var dw = _gpu.Upload(TensorAssert.Random(rng, w.Length), w.Shape);
        using var dwr = _ref.Allocate(w.Shape);
        _gpu.Conv2dBackwardWeights(x, dy, dw, s);
        _ref.Conv2dBackwardWeights(xr, dyr, dwr, s);
        Compare(dw, dwr, "conv backward weights");
        if (biasGradient)
        {
            using var db = _gpu.Allocate(s.K);
            using var dbr = _ref.Allocate(s.K);
            _gpu.Conv2dBackwardBias(dy, db, s);
            _ref.Conv2dBackwardBias(dyr, dbr, s);
            Compare(db, dbr, "conv backward bias");
        }
        foreach (var t in new[] { xr, wr, br, dyr })
            t.Dispose();
    }

    [TestCase(EpilogueActivation.None, false)]
    [TestCase(EpilogueActivation.Relu, true)]
    [TestCase(EpilogueActivation.Clip, true)]
    [TestCase(EpilogueActivation.Silu, false)]
    public void Fused_epilogue_matches_reference(EpilogueActivation activation, bool residual)
    {
        foreach (var s in new ConvShape[]
                 {
                     new(2, 3, 6, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
                     new(1, 4, 6, 6, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 4),   // depthwise path
                 })
        {
            var rng = new Random(7);
            using var x = Pair(rng, out var xr, s.N, s.C, s.H, s.W);
            using var w = Pair(rng, out var wr, s.K, s.CPerGroup, s.KH, s.KW);
            using var b = Pair(rng, out var br, s.K);
            using var r = Pair(rng, out var rr, s.N, s.K, s.OH, s.OW);
            using var y = _gpu.Allocate(s.N, s.K, s.OH, s.OW);
            using var yr = _ref.Allocate(s.N, s.K, s.OH, s.OW);
            _gpu.Conv2dFused(x, w, b, residual ? r : null, y, s, activation, -0.5f, 0.75f);
            _ref.Conv2dFused(xr, wr, br, residual ? rr : null, yr, s, activation, -0.5f, 0.75f);
            Compare(y, yr, $"conv {activation} residual {residual} groups {s.Groups}");
            foreach (var t in new[] { xr, wr, br, rr })
                t.Dispose();
        }
    }

    [Test]
    public void Conv_relu_is_fused_and_matches_reference()
    {
        var s = new ConvShape(1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        var rng = new Random(8);
        using var x = Pair(rng, out var xr, 1, 3, 5, 5);
        using var w = Pair(rng, out var wr, 4, 3, 3, 3);
        using var y = _gpu.Allocate(1, 4, s.OH, s.OW);
        using var yr = _ref.Allocate(1, 4, s.OH, s.OW);
        _gpu.Conv2dRelu(x, w, null, y, s);
        _ref.Conv2dRelu(xr, wr, null, yr, s);
        Compare(y, yr, "conv relu");
        Assert.That(_gpu.Download(y).Count(v => v == 0f), Is.GreaterThan(0), "some outputs are clipped at 0");
        xr.Dispose();
        wr.Dispose();
    }

    [Test]
    public void Split_K_weight_gradient_matches_reference()
    {
        var s = new ConvShape(2, 3, 20, 18, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        int before = _gpu.TargetBlocks;
        _gpu.TargetBlocks = 8;
        try
        {
            Assert.That(_gpu.SplitsFor(s), Is.EqualTo(2), "a reduction of 720 over 8-wide steps splits in two chunks of 32+ steps");
            var rng = new Random(9);
            using var x = Pair(rng, out var xr, s.N, s.C, s.H, s.W);
            using var dy = Pair(rng, out var dyr, s.N, s.K, s.OH, s.OW);
            using var dw = _gpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, s.C, s.KH, s.KW); // overwritten
            using var dwr = _ref.Allocate(s.K, s.C, s.KH, s.KW);
            _gpu.Conv2dBackwardWeights(x, dy, dw, s);
            _ref.Conv2dBackwardWeights(xr, dyr, dwr, s);
            Compare(dw, dwr, "split-K conv backward weights");
            xr.Dispose();
            dyr.Dispose();
        }
        finally
        {
            _gpu.TargetBlocks = before;
        }
    }

    // The bias gradient (one 256-thread group per feature) is checked where N is small.
    [TestCase(5, 21, 131, true, false)]
    [TestCase(67, 9, 3, false, true)]
    [TestCase(1, 40, 70, true, false)]
    [TestCase(130, 11, 6, false, true)]
    public void Gemm_and_derivatives_match_reference(int m, int k, int n, bool transB, bool biasGradient)
    {
        var s = new GemmShape(m, k, n, transB, 0.75f, 1.5f);
        var rng = new Random(m * 1000 + n);
        using var x = Pair(rng, out var xr, m, k);
        using var w = transB ? Pair(rng, out var wr, n, k) : Pair(rng, out wr, k, n);
        using var b = Pair(rng, out var br, n);
        using var dy = Pair(rng, out var dyr, m, n);
        using var y = _gpu.Allocate(m, n);
        using var yr = _ref.Allocate(m, n);
        _gpu.Gemm(x, w, b, y, s);
        _ref.Gemm(xr, wr, br, yr, s);
        Compare(y, yr, "gemm forward");
        using var dx = _gpu.Allocate(m, k);
        using var dxr = _ref.Allocate(m, k);
        _gpu.GemmBackwardData(dy, w, dx, s);
        _ref.GemmBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "gemm backward data");
        using var dw = _gpu.Allocate(w.Shape);
        using var dwr = _ref.Allocate(w.Shape);
        _gpu.GemmBackwardWeights(x, dy, dw, s);
        _ref.GemmBackwardWeights(xr, dyr, dwr, s);
        Compare(dw, dwr, "gemm backward weights");
        if (biasGradient)
        {
            using var db = _gpu.Allocate(n);
            using var dbr = _ref.Allocate(n);
            _gpu.GemmBackwardBias(dy, db, s);
            _ref.GemmBackwardBias(dyr, dbr, s);
            Compare(db, dbr, "gemm backward bias");
        }
        foreach (var t in new[] { xr, wr, br, dyr })
            t.Dispose();
    }

    [TestCase(3, 5, 7, 7)]   // 15 rows: one group of 8 warps, a second with 7 rows and an idle warp; plane 49 > a warp
    [TestCase(2, 3, 3, 2)]   // plane 6 < one warp
    public void Global_average_pool_with_warp_reduction_matches_reference(int n, int c, int h, int w) =>
        BackendComparison.GapAddScaleRelu(_gpu, _ref, n, c, h, w);

    [TestCase(3, 300)]       // rows longer than a group
    [TestCase(2, 7)]
    public void Min_max_normalization_with_group_reduction_matches_reference(int rows, int length)
    {
        var rng = new Random(rows + length);
        var data = TensorAssert.Random(rng, rows * length, 3f);
        data[length] = data[length + 1] = 10f; // a repeated maximum
        for (int j = 0; j < length; j++)
            data[(rows - 1) * length + j] = 2.5f; // a constant row normalizes to 0
        using var x = _gpu.Upload(data, rows, length);
        using var y = _gpu.Allocate(rows, length);
        _gpu.MinMaxNormalizeRows(x, y);
        var got = _gpu.Download(y);
        var expected = new double[data.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = data.AsSpan(r * length, length);
            double lo = double.MaxValue, hi = double.MinValue;
            foreach (float v in row)
                (lo, hi) = (Math.Min(lo, v), Math.Max(hi, v));
            for (int j = 0; j < length; j++)
                expected[r * length + j] = hi > lo ? (row[j] - lo) / (hi - lo) : 0;
        }
        TensorAssert.Close(got, expected, Atol, Rtol, "min-max normalization");
        using var yr = _ref.Allocate(rows, length);
        using var xr = _ref.Upload(data, rows, length);
        _ref.MinMaxNormalizeRows(xr, yr);
        TensorAssert.Close(_ref.Download(yr), expected, Atol, Rtol, "min-max normalization on the reference");
    }

    [Test]
    public void Pool_reuses_freed_buffers_and_hands_them_out_zeroed()
    {
        var pool = _gpu.Pool;
        long reused = pool.Reused;
        using (var t = _gpu.Upload(Enumerable.Repeat(3f, 1237).ToArray(), 1237))
            Assert.That(_gpu.Download(t)[1236], Is.EqualTo(3f));
        Assert.That(pool.FreeBytes, Is.GreaterThanOrEqualTo(1237 * 4));
        using var again = _gpu.Allocate(1237);
        Assert.That(pool.Reused, Is.EqualTo(reused + 1));
        Assert.That(_gpu.Download(again).All(v => v == 0f), Is.True, "a reused buffer starts at zero like a new one");
        pool.Trim();
        Assert.That(pool.FreeBytes, Is.Zero);
    }

    private Tensor Pair(Random rng, out Tensor reference, params int[] shape)
    {
        var data = TensorAssert.Random(rng, shape.Aggregate(1, (a, b) => a * b));
        reference = _ref.Upload(data, shape);
        return _gpu.Upload(data, shape);
    }

    private static void Compare(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), Atol, Rtol, what);
}
