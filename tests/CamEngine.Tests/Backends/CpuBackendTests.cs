using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using CamEngine.Tests.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The managed CPU backend against the double-precision reference: the kernel test geometries at every vector
/// width (AVX-512, the 256-bit fallback, scalar), then larger shapes that cross every blocking edge (odd sizes,
/// channels not a multiple of 8 or 32, depth over one 256-deep block, more than 128 output channels, stride 2,
/// groups, depthwise, 1x1, the 7x7 stem, image chunking) and the parallel paths.
/// </summary>
[TestFixture]
internal sealed class CpuBackendTests
{
    private const double Atol = 1e-5, Rtol = 1e-4;
    private readonly ReferenceBackend _ref = new();
    private static readonly Dictionary<CpuSimd, CpuBackend> s_backends = [];

    private static CpuBackend Cpu(CpuSimd simd)
    {
        lock (s_backends)
        {
            if (!s_backends.TryGetValue(simd, out var b))
                s_backends[simd] = b = new CpuBackend(simd);
            return b;
        }
    }

    private static readonly CpuSimd[] s_widths = [CpuSimd.Vector512, CpuSimd.Vector256, CpuSimd.Scalar];

    public static IEnumerable<TestCaseData> SmallConvCases() =>
        from s in KernelVsReferenceTests.ConvCases()
        from w in s_widths
        select new TestCaseData(s, w);

    public static IEnumerable<TestCaseData> PoolCases() =>
        from s in KernelVsReferenceTests.PoolCases()
        from w in new[] { CpuSimd.Vector512, CpuSimd.Scalar }
        select new TestCaseData(s, w);

    public static IEnumerable<TestCaseData> LargeConvCases()
    {
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        yield return new TestCaseData(new ConvShape(1, 19, 23, 21, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("odd sizes 19->37 3x3");
        yield return new TestCaseData(new ConvShape(1, 30, 12, 13, 140, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("two k-blocks, 140 output channels");
        yield return new TestCaseData(new ConvShape(2, 20, 17, 17, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("stride 2 3x3 batch 2");
        yield return new TestCaseData(new ConvShape(1, 32, 15, 15, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32), CpuSimd.Vector512)
            .SetName("depthwise 32");
        yield return new TestCaseData(new ConvShape(2, 24, 12, 12, 36, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), CpuSimd.Vector512)
            .SetName("groups 4");
        yield return new TestCaseData(new ConvShape(1, 3, 45, 45, 20, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1), CpuSimd.Vector512)
            .SetName("7x7 stride 2 stem");
        yield return new TestCaseData(new ConvShape(1, 40, 14, 14, 72, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), CpuSimd.Vector512)
            .SetName("1x1 direct");
        yield return new TestCaseData(new ConvShape(3, 40, 14, 13, 72, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), CpuSimd.Vector512)
            .SetName("1x1 stride 2 projection batch 3");
        yield return new TestCaseData(new ConvShape(1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("64->64 14x14 parallel (14.5 MFLOP)");
        yield return new TestCaseData(new ConvShape(1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector256)
            .SetName("64->64 14x14 parallel (14.5 MFLOP) Vector256");
        yield return new TestCaseData(new ConvShape(1, 30, 16, 17, 40, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Scalar)
            .SetName("two k-blocks, stride (2,1), scalar");
        yield return new TestCaseData(new ConvShape(2, 64, 9, 9, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("7x7-like small plane batch 2");
        yield return new TestCaseData(new ConvShape(3, 48, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("pixel-row form, stride 2, batch 3");
        yield return new TestCaseData(new ConvShape(1, 40, 16, 16, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512)
            .SetName("pixel-row form, 8-pixel runs within a row");
    }

    private (Tensor Fast, Tensor Ref) Pair(CpuBackend f, float[] data, params int[] shape) =>
        (f.Upload(data, shape), _ref.Upload(data, shape));

    private static void Compare(Tensor fast, Tensor reference, string what, double atol = Atol) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), atol, Rtol, what);

    /// <summary>The per-element tolerance of <see cref="BackendComparison"/> holds the direct and im2col forms these
    /// geometries were written for; where the per-layer choice would now take Winograd (whose error scales with the
    /// layer's largest output, held to that in <see cref="WinogradTests"/>), the choice is made without it.</summary>
    private void CheckConv(ConvShape s, CpuSimd simd)
    {
        double saved = WinogradConv.MaxRelativeCost;
        WinogradConv.MaxRelativeCost = 0;
        try
        {
            BackendComparison.Conv(Cpu(simd), _ref, s);
        }
        finally
        {
            WinogradConv.MaxRelativeCost = saved;
        }
    }

    [Test]
    public void Pixel_row_form_is_chosen_for_small_planes_only()
    {
        Assert.That(CpuConv.UseTransposed(new ConvShape(1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)), Is.True);
        Assert.That(CpuConv.UseTransposed(new ConvShape(3, 48, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1)), Is.True);
        Assert.That(CpuConv.UseTransposed(new ConvShape(3, 16, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)), Is.True);
        Assert.That(CpuConv.UseTransposed(new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)), Is.False);
    }

    [TestCaseSource(nameof(SmallConvCases))]
    public void Conv2d_matches_reference(ConvShape s, CpuSimd simd) => CheckConv(s, simd);

    [TestCaseSource(nameof(LargeConvCases))]
    public void Conv2d_large_shapes_match_reference(ConvShape s, CpuSimd simd) => CheckConv(s, simd);

    [Test]
    public void Conv2d_in_image_chunks_matches_reference()
    {
        long saved = ConvPlan.ChunkFloats;
        ConvPlan.ChunkFloats = 3000; // one image per chunk for these shapes
        try
        {
            CheckConv(new ConvShape(3, 6, 11, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512);
            CheckConv(new ConvShape(3, 6, 11, 10, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512);
            CheckConv(new ConvShape(3, 16, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512); // pixel-row form
        }
        finally
        {
            ConvPlan.ChunkFloats = saved;
        }
    }

    [TestCase(CpuSimd.Vector512)]
    [TestCase(CpuSimd.Vector256)]
    [TestCase(CpuSimd.Scalar)]
    public void AddRelu_equals_add_then_relu(CpuSimd simd)
    {
        var f = Cpu(simd);
        var rng = new Random(9);
        int len = 2 * 5 * 7 * 9; // not a multiple of any vector width
        using var a = f.Upload(TensorAssert.Random(rng, len), 2, 5, 7, 9);
        using var b = f.Upload(TensorAssert.Random(rng, len), 2, 5, 7, 9);
        using var sum = f.Allocate(2, 5, 7, 9);
        using var fused = f.Allocate(2, 5, 7, 9);
        f.Add(a, b, sum);
        f.AddRelu(a, b, fused);
        var expected = f.Download(sum).Select(v => MathF.Max(v, 0f)).ToArray();
        Assert.That(f.Download(fused), Is.EqualTo(expected));
        Assert.That(expected.Count(v => v == 0f), Is.InRange(len / 4, 3 * len / 4));
    }

    [Test]
    public void Packed_weights_are_rebuilt_after_the_weights_are_written()
    {
        var s = new ConvShape(1, 5, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        var f = Cpu(CpuSimd.Vector512);
        var rng = new Random(4);
        var (x, xr) = Pair(f, TensorAssert.Random(rng, 5 * 64), 1, 5, 8, 8);
        var (w, wr) = Pair(f, TensorAssert.Random(rng, (int)s.WeightLength), 6, 5, 3, 3);
        var (dy, dyr) = Pair(f, TensorAssert.Random(rng, 6 * 64), 1, 6, 8, 8);
        using var y = f.Allocate(1, 6, 8, 8);
        using var yr = _ref.Allocate(1, 6, 8, 8);
        using var dx = f.Allocate(1, 5, 8, 8);
        using var dxr = _ref.Allocate(1, 5, 8, 8);
        f.Conv2d(x, w, null, y, s);
        f.Conv2dBackwardData(dy, w, dx, s);
        // Written in place by an op: the cached packed forms must not survive.
        f.Scale(w, w, -2f);
        _ref.Scale(wr, wr, -2f);
        f.Conv2d(x, w, null, y, s);
        _ref.Conv2d(xr, wr, null, yr, s);
        Compare(y, yr, "conv forward after the weights changed");
        f.Conv2dBackwardData(dy, w, dx, s);
        _ref.Conv2dBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "conv backward data after the weights changed");
        foreach (var t in new[] { x, xr, w, wr, dy, dyr })
            t.Dispose();
    }

    [TestCaseSource(nameof(PoolCases))]
    public void Pooling_matches_reference(PoolShape s, CpuSimd simd) => BackendComparison.Pooling(Cpu(simd), _ref, s);

    [Test]
    public void Max_pool_routes_ties_to_the_first_maximum_and_marks_empty_windows()
    {
        var f = Cpu(CpuSimd.Vector512);
        // 2x2 windows, stride 2, over a plane of equal values: every window's first element wins.
        var s = new PoolShape(1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false, false);
        using var x = f.Upload(Enumerable.Repeat(1f, 16).ToArray(), 1, 1, 4, 4);
        using var y = f.Allocate(1, 1, 2, 2);
        using var a = f.AllocateIndices(1, 1, 2, 2);
        f.MaxPool(x, y, a, s);
        using var ar = _ref.AllocateIndices(1, 1, 2, 2);
        using var xr = _ref.Upload(Enumerable.Repeat(1f, 16).ToArray(), 1, 1, 4, 4);
        using var yr = _ref.Allocate(1, 1, 2, 2);
        _ref.MaxPool(xr, yr, ar, s);
        using var dy = f.Upload([1f, 2f, 3f, 4f], 1, 1, 2, 2);
        using var dx = f.Allocate(1, 1, 4, 4);
        f.MaxPoolBackward(dy, a, dx, s);
        Assert.That(f.Download(dx), Is.EqualTo(new[] { 1f, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0 }));
    }

    /// <summary>Rows wide enough for the 16- and 8-window vector paths (stride 1 and 2, and the gather path for
    /// dilation and stride 3), with many ties and some NaNs: values and argmax equal the reference exactly.</summary>
    [TestCase(2, 3, 11, 75, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1)] // ResNet stem pool, 38 outputs a row
    [TestCase(1, 2, 9, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)]  // stride 1
    [TestCase(1, 2, 9, 37, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1)]  // no padding, odd width
    [TestCase(1, 2, 12, 70, 3, 3, 2, 2, 1, 1, 1, 1, 2, 2)] // dilated: gather path
    [TestCase(1, 2, 10, 80, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1)] // stride 3: gather path
    public void Wide_max_pool_matches_reference_with_ties_and_nans(
        int n, int c, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr, int dh, int dw)
    {
        var s = new PoolShape(n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, false, false);
        var rng = new Random(7);
        var data = new float[n * c * h * w];
        for (int i = 0; i < data.Length; i++)
            data[i] = rng.Next(50) == 0 ? float.NaN : rng.Next(4) - 1.5f;
        var f = Cpu(CpuSimd.Vector512);
        int[] ys = [n, c, s.OH, s.OW];
        using var x = f.Upload(data, n, c, h, w);
        using var y = f.Allocate(ys);
        using var a = f.AllocateIndices(ys);
        using var xr = _ref.Upload(data, n, c, h, w);
        using var yr = _ref.Allocate(ys);
        using var ar = _ref.AllocateIndices(ys);
        f.MaxPool(x, y, a, s);
        _ref.MaxPool(xr, yr, ar, s);
        Assert.That(f.Download(y), Is.EqualTo(_ref.Download(yr)));
        using var dy = f.Upload(Enumerable.Range(0, y.Length).Select(i => (float)(i % 13)).ToArray(), ys);
        using var dyr = _ref.Upload(Enumerable.Range(0, y.Length).Select(i => (float)(i % 13)).ToArray(), ys);
        using var dx = f.Allocate(n, c, h, w);
        using var dxr = _ref.Allocate(n, c, h, w);
        f.MaxPoolBackward(dy, a, dx, s);
        _ref.MaxPoolBackward(dyr, ar, dxr, s);
        Assert.That(f.Download(dx), Is.EqualTo(_ref.Download(dxr)), "routing (argmax) differs");
    }

    /// <summary>The values-only max pool (a forward that frees the routing) equals the routed pool's values: the
    /// 3x3/2 fast path on rows shorter and longer than its 16-wide vectors, pads 0 and 1 on either side, ceil mode,
    /// ties and NaNs; other geometries through the routed kernel.</summary>
    [TestCase(2, 3, 11, 75, 3, 3, 2, 2, 1, 1, 1, 1, false)] // ResNet stem pool, 38 outputs a row
    [TestCase(1, 2, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, false)] // ResNet's 112x112 plane
    [TestCase(1, 2, 9, 33, 3, 3, 2, 2, 0, 1, 1, 0, false)] // asymmetric pads
    [TestCase(1, 2, 10, 40, 3, 3, 2, 2, 0, 0, 0, 0, true)] // unpadded, ceil mode: a last window past the input
    [TestCase(1, 1, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1, true)] // scalar rows only
    [TestCase(1, 2, 9, 37, 2, 2, 2, 2, 0, 0, 0, 0, false)] // 2x2: the routed kernel
    [TestCase(1, 2, 9, 40, 3, 3, 1, 1, 1, 1, 1, 1, false)] // stride 1: the routed kernel
    public void Max_pool_values_equal_the_routed_pool(
        int n, int c, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr, bool ceil)
    {
        var s = new PoolShape(n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, 1, 1, ceil, false);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.That(CpuPooling.ValuesPath(s), Is.EqualTo(kh == 3 && sh == 2), "fast path taken");
        var rng = new Random(11);
        var data = new float[n * c * h * w];
        for (int i = 0; i < data.Length; i++)
            data[i] = rng.Next(60) == 0 ? float.NaN : rng.Next(60) == 0 ? float.NegativeInfinity : rng.Next(5) - 2.5f;
        int[] ys = [n, c, s.OH, s.OW];
        var f = Cpu(CpuSimd.Vector512);
        using var x = f.Upload(data, n, c, h, w);
        using var y = f.Allocate(ys);
        f.MaxPoolValues(x, y, s);
        using var xr = _ref.Upload(data, n, c, h, w);
        using var yr = _ref.Allocate(ys);
        using var ar = _ref.AllocateIndices(ys);
        _ref.MaxPool(xr, yr, ar, s);
        Assert.That(f.Download(y), Is.EqualTo(_ref.Download(yr)));
    }

    [TestCase(ReluRule.Standard, CpuSimd.Vector512)]
    [TestCase(ReluRule.Guided, CpuSimd.Vector512)]
    [TestCase(ReluRule.Deconvnet, CpuSimd.Vector512)]
    [TestCase(ReluRule.Standard, CpuSimd.Vector256)]
    [TestCase(ReluRule.Guided, CpuSimd.Vector256)]
    [TestCase(ReluRule.Deconvnet, CpuSimd.Scalar)]
    public void Relu_matches_reference_at_the_kink(ReluRule rule, CpuSimd simd)
    {
        var f = Cpu(simd);
        var rng = new Random(7);
        var data = TensorAssert.Random(rng, 301);
        data[0] = 0f;
        data[17] = 0f;
        var grad = TensorAssert.Random(rng, 301);
        grad[5] = 0f;
        var (x, xr) = Pair(f, data, 7, 43);
        var (dy, dyr) = Pair(f, grad, 7, 43);
        using var y = f.Allocate(7, 43);
        using var yr = _ref.Allocate(7, 43);
        using var dx = f.Allocate(7, 43);
        using var dxr = _ref.Allocate(7, 43);
        f.Relu(x, y);
        _ref.Relu(xr, yr);
        Compare(y, yr, "relu forward");
        f.ReluBackward(x, dy, dx, rule);
        _ref.ReluBackward(xr, dyr, dxr, rule);
        Compare(dx, dxr, $"relu backward {rule}");
        Assert.That(f.Download(dx)[0], Is.Zero, "ReLU'(0) = 0");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    /// <summary>
    /// A dy that is mostly zeros (a CAM's one-hot seed at the logits) reads only the rows of W its nonzeros multiply:
    /// the same values as the dense product, bit for bit (same FMAs in the same order), and the reference's within
    /// tolerance; a row of dy with no nonzero gives zeros, a NaN in dy counts as a nonzero and reaches its row of dx,
    /// and a dy with more nonzeros than one in 32 (one in 512 where W is stored (K, N) and each nonzero reads a column)
    /// takes the dense product. Which one ran shows where W holds an infinity that only zeros of dy multiply: the dense
    /// product's 0 x inf is NaN, the sparse one never forms it.
    /// </summary>
    [TestCase(1, 2048, 1000, true, CpuSimd.Vector512, 1, true)] // ResNet-50's classifier, one-hot
    [TestCase(8, 512, 1000, true, CpuSimd.Vector512, 3, true)] // a batch, three per row: several blocks of n
    [TestCase(3, 37, 2000, false, CpuSimd.Vector256, 2, true)] // W stored (K, N): columns, one in 512 at most
    [TestCase(3, 37, 300, false, CpuSimd.Vector256, 5, false)] // columns, over one in 512: dense
    [TestCase(4, 45, 100, true, CpuSimd.Scalar, 3, true)] // K not a multiple of 8 or 16
    [TestCase(2, 64, 64, true, CpuSimd.Vector512, 4, false)] // 8 of 128: over one in 32, dense
    public void Gemm_backward_data_of_a_mostly_zero_dy_equals_the_dense_product(int m, int k, int n, bool transB,
        CpuSimd simd, int nonzerosPerRow, bool few)
    {
        var s = new GemmShape(m, k, n, transB, 0.75f, 1f);
        var f = Cpu(simd);
        var rng = new Random(5);
        var dyData = new float[m * n];
        for (int row = 0; row < m; row++)
        {
            if (row == 1 && m > 2)
                continue; // a row with no nonzero
            for (int i = 0; i < nonzerosPerRow; i++)
                dyData[row * n + rng.Next(n)] = (float)(rng.NextDouble() * 4 - 2);
        }
        int[] ws = transB ? [n, k] : [k, n];
        var (w, wr) = Pair(f, TensorAssert.Random(rng, k * n), ws);
        float[] Run(float[] data, bool sparse)
        {
            CpuBackend.SparseBackwardData = sparse;
            try
            {
                using var dy = f.Upload(data, m, n);
                using var dx = f.Allocate(m, k);
                f.GemmBackwardData(dy, w, dx, s);
                return f.Download(dx);
            }
            finally
            {
                CpuBackend.SparseBackwardData = true;
            }
        }
        Assert.That(dyData.Count(v => v != 0) <= m * n / (transB ? 32 : 512), Is.EqualTo(few), "the case is what its comment says");
        var sparse = Run(dyData, true);
        Assert.That(sparse, Is.EqualTo(Run(dyData, false)), "the dense product's values");
        using (var dyr = _ref.Upload(dyData, m, n))
        using (var dxr = _ref.Allocate(m, k))
        {
            _ref.GemmBackwardData(dyr, wr, dxr, s);
            TensorAssert.Close(sparse, ReferenceBackend.DownloadDouble(dxr), Atol, Rtol, "against the reference");
        }
        if (m > 2)
            Assert.That(sparse.AsSpan(k, k).ToArray(), Is.All.EqualTo(0f), "a row of dy with no nonzero");
        // A NaN in dy: its row of dx is NaN wherever W's row is (all of it here), the other rows as they were.
        dyData[n / 2] = float.NaN;
        var withNan = Run(dyData, true);
        Assert.That(withNan.AsSpan(0, k).ToArray(), Is.All.NaN, "the NaN's row");
        Assert.That(withNan.AsSpan(k).ToArray(), Is.EqualTo(sparse.AsSpan(k).ToArray()), "the other rows");
        w.Dispose();
        wr.Dispose();

        // An infinity in W where no nonzero of dy reaches it.
        int idle = Enumerable.Range(0, n).First(j => Enumerable.Range(0, m).All(row => dyData[row * n + j] == 0));
        var wInf = TensorAssert.Random(new Random(6), k * n);
        wInf[transB ? idle * k : idle] = float.PositiveInfinity;
        w = f.Upload(wInf, ws);
        dyData[n / 2] = 0f;
        var dx = Run(dyData, true);
        Assert.That(dx.All(float.IsFinite), Is.EqualTo(few), few ? "the sparse product skips it" : "the dense product forms 0 x inf");
        w.Dispose();
    }

    /// <summary>Alpha 1 and AVX-512: A (row-major) is read from its rows in place, full 8-row panels by the kernel and a
    /// last short panel packed; the same bits as the packed path, and the reference's values.</summary>
    [TestCase(150, 300, 70, false)] // 18 full panels and one of 6 rows, two blocks of k, edge columns
    [TestCase(203, 96, 384, true)] // 25 full panels and one of 3 rows, full 32-column tiles
    [TestCase(13, 40, 33, false)] // one full panel and one of 5 rows
    public void Gemm_with_A_read_in_place_matches_the_packed_path_and_the_reference(int m, int k, int n, bool transB)
    {
        Assume.That(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "needs AVX-512");
        var s = new GemmShape(m, k, n, transB, 1f, 1f);
        var f = Cpu(CpuSimd.Vector512);
        var rng = new Random(12);
        var (x, xr) = Pair(f, TensorAssert.Random(rng, m * k), m, k);
        int[] ws = transB ? [n, k] : [k, n];
        var (w, wr) = Pair(f, TensorAssert.Random(rng, k * n), ws);
        var (b, br) = Pair(f, TensorAssert.Random(rng, n), n);
        using var y = f.Allocate(m, n);
        using var yp = f.Allocate(m, n);
        using var yr = _ref.Allocate(m, n);
        foreach (bool gelu in new[] { false, true })
        {
            Assert.That(CpuBackend.ReadARows, Is.True);
            if (gelu)
                f.GemmGelu(x, w, b, y, s);
            else
                f.Gemm(x, w, b, y, s);
            CpuBackend.ReadARows = false;
            try
            {
                if (gelu)
                    f.GemmGelu(x, w, b, yp, s);
                else
                    f.Gemm(x, w, b, yp, s);
            }
            finally
            {
                CpuBackend.ReadARows = true;
            }
            Assert.That(f.Download(y), Is.EqualTo(f.Download(yp)), $"gelu {gelu}: the packed path's bits");
            _ref.Gemm(xr, wr, br, yr, s);
            if (gelu)
                _ref.Unary(new CamEngine.Kernels.Gelu(), yr, yr);
            Compare(y, yr, $"gemm (gelu {gelu}) against the reference", Atol * Math.Max(1, Math.Sqrt(k / 16.0)));
        }
        foreach (var t in new[] { x, xr, w, wr, b, br })
            t.Dispose();
    }

    [TestCase(3, 17, 5, true, CpuSimd.Vector512)]
    [TestCase(2, 8, 4, false, CpuSimd.Vector512)]
    [TestCase(1, 64, 10, true, CpuSimd.Scalar)]
    [TestCase(37, 300, 70, true, CpuSimd.Vector512)]
    [TestCase(37, 300, 70, false, CpuSimd.Vector256)]
    [TestCase(40, 512, 330, true, CpuSimd.Vector512)] // 13.5 MFLOP: the parallel path
    [TestCase(9, 1000, 33, false, CpuSimd.Scalar)]
    [TestCase(150, 300, 70, false, CpuSimd.Vector512)] // more rows than the few-row path takes: two blocks of k, edge tiles
    [TestCase(203, 96, 384, true, CpuSimd.Vector512)] // full 32-column tiles, the bias added in registers
    [TestCase(150, 300, 70, true, CpuSimd.Vector256)]
    public void Gemm_matches_reference(int m, int k, int n, bool transB, CpuSimd simd)
    {
        var s = new GemmShape(m, k, n, transB, 0.75f, 1.5f);
        var f = Cpu(simd);
        // Sums of k float products of unit-range values: the absolute rounding error grows like sqrt(k).
        double atol = Atol * Math.Max(1, Math.Sqrt(k / 16.0));
        var rng = new Random(11);
        var (x, xr) = Pair(f, TensorAssert.Random(rng, m * k), m, k);
        int[] ws = transB ? [n, k] : [k, n];
        var (w, wr) = Pair(f, TensorAssert.Random(rng, k * n), ws);
        var (b, br) = Pair(f, TensorAssert.Random(rng, n), n);
        var (dy, dyr) = Pair(f, TensorAssert.Random(rng, m * n), m, n);
        foreach (bool bias in new[] { true, false })
        {
            using var y = f.Allocate(m, n);
            using var yr = _ref.Allocate(m, n);
            f.Gemm(x, w, bias ? b : null, y, s);
            _ref.Gemm(xr, wr, bias ? br : null, yr, s);
            Compare(y, yr, $"gemm forward (bias {bias})", atol);
        }
        using var dx = f.Allocate(m, k);
        using var dxr = _ref.Allocate(m, k);
        f.GemmBackwardData(dy, w, dx, s);
        _ref.GemmBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "gemm backward data", atol);
        using var dw = f.Allocate(ws);
        using var dwr = _ref.Allocate(ws);
        f.GemmBackwardWeights(x, dy, dw, s);
        _ref.GemmBackwardWeights(xr, dyr, dwr, s);
        Compare(dw, dwr, "gemm backward weights", atol);
        using var db = f.Allocate(n);
        using var dbr = _ref.Allocate(n);
        f.GemmBackwardBias(dy, db, s);
        _ref.GemmBackwardBias(dyr, dbr, s);
        Compare(db, dbr, "gemm backward bias", atol);
        foreach (var t in new[] { x, xr, w, wr, b, br, dy, dyr })
            t.Dispose();
    }

    [TestCase(2, 3, 5, 4, CpuSimd.Vector512)]
    [TestCase(2, 3, 5, 4, CpuSimd.Scalar)]
    [TestCase(2, 40, 61, 67, CpuSimd.Vector512)] // 327k elements: the parallel element-wise path
    [TestCase(2, 40, 61, 67, CpuSimd.Vector256)]
    public void Global_average_pool_add_and_scale_match_reference(int n, int c, int h, int w, CpuSimd simd) =>
        BackendComparison.GapAddScaleRelu(Cpu(simd), _ref, n, c, h, w);

    [Test]
    public void Shape_mismatch_is_refused()
    {
        var f = Cpu(CpuSimd.Vector512);
        var s = new ConvShape(1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        using var x = f.Allocate(1, 3, 8, 7);
        using var w = f.Allocate(4, 3, 3, 3);
        using var y = f.Allocate(1, 4, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => f.Conv2d(x, w, null, y, s));
        Assert.That(e!.Message, Does.Contain("x has shape [1,3,8,7]"));
    }

    [Test]
    public void Devices_cpu_opens_the_managed_backend_and_ilgpu_cpu_stays_ilgpu()
    {
        using (var cpu = Devices.Open("cpu"))
        {
            Assert.That(cpu, Is.InstanceOf<CpuBackend>());
            Assert.That(cpu.Name, Is.EqualTo("cpu"));
        }
        using var ilgpu = Devices.Open("ilgpu-cpu");
        Assert.That(ilgpu, Is.InstanceOf<IlgpuBackend>());
        Assert.That(ilgpu.Name, Is.EqualTo("ilgpu-cpu"));
    }

    [OneTimeTearDown]
    public void Release()
    {
        lock (s_backends)
        {
            foreach (var b in s_backends.Values)
                b.Dispose();
            s_backends.Clear();
        }
        _ref.Dispose();
    }
}
