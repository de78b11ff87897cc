using NUnit.Framework;
using CamEngine.Backends;
using CamEngine.Kernels;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// Every ILGPU kernel against the double-precision reference backend, forward and backward, on geometries
/// that exercise stride, asymmetric padding, dilation, groups, ceil mode and the optional bias.
/// </summary>
[TestFixture]
internal sealed class KernelVsReferenceTests
{
    private const double Atol = 1e-5, Rtol = 1e-4;
    private readonly ReferenceBackend _ref = new();

    /// <summary>Uploads the same host data to both backends.</summary>
    private (Tensor Fast, Tensor Ref) Pair(float[] data, params int[] shape) =>
        (TestDevice.Ilgpu.Upload(data, shape), _ref.Upload(data, shape));

    private static void Compare(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), Atol, Rtol, what);

    public static IEnumerable<ConvShape> ConvCases()
    {
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        yield return new ConvShape(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        yield return new ConvShape(1, 4, 9, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2);
        yield return new ConvShape(2, 3, 8, 7, 5, 5, 3, 2, 1, 3, 1, 2, 0, 1, 1, 1);     // asymmetric pads
        yield return new ConvShape(1, 2, 10, 9, 3, 3, 3, 1, 2, 2, 2, 2, 2, 2, 2, 1);    // dilation 2
        yield return new ConvShape(1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4);     // depthwise
        yield return new ConvShape(3, 5, 5, 5, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);     // 1x1
        yield return new ConvShape(1, 3, 11, 11, 4, 7, 7, 2, 2, 3, 3, 2, 2, 1, 1, 1);   // ResNet stem, CNTK pads
    }

    [TestCaseSource(nameof(ConvCases))]
    public void Conv2d_matches_reference(ConvShape s) => BackendComparison.Conv(TestDevice.Ilgpu, _ref, s);

    public static IEnumerable<PoolShape> PoolCases()
    {
        // N, C, H, W, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, ceil, countIncludePad
        yield return new PoolShape(2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false, false);
        yield return new PoolShape(1, 2, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false);   // ResNet max-pool
        yield return new PoolShape(1, 2, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, true);
        yield return new PoolShape(2, 2, 10, 11, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true, false);  // ceil mode
        yield return new PoolShape(1, 3, 7, 7, 3, 2, 2, 3, 1, 0, 0, 1, 1, 1, true, true);     // asymmetric, ceil
        yield return new PoolShape(1, 1, 6, 6, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, false, false);   // CNTK-style pads
    }

    [TestCaseSource(nameof(PoolCases))]
    public void Pooling_matches_reference(PoolShape s) => BackendComparison.Pooling(TestDevice.Ilgpu, _ref, s);

    [Test]
    public void Dilated_max_pool_matches_reference()
    {
        var s = new PoolShape(1, 2, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 2, 2, false, false);
        var rng = new Random(5);
        var f = TestDevice.Ilgpu;
        var (x, xr) = Pair(TensorAssert.Random(rng, 2 * 81), 1, 2, 9, 9);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, 2 * s.OH * s.OW), 1, 2, s.OH, s.OW);
        using var y = f.Allocate(1, 2, s.OH, s.OW);
        using var yr = _ref.Allocate(1, 2, s.OH, s.OW);
        using var a = f.AllocateIndices(1, 2, s.OH, s.OW);
        using var ar = _ref.AllocateIndices(1, 2, s.OH, s.OW);
        using var dx = f.Allocate(1, 2, 9, 9);
        using var dxr = _ref.Allocate(1, 2, 9, 9);
        f.MaxPool(x, y, a, s);
        _ref.MaxPool(xr, yr, ar, s);
        f.MaxPoolBackward(dy, a, dx, s);
        _ref.MaxPoolBackward(dyr, ar, dxr, s);
        Compare(y, yr, "dilated max-pool forward");
        Compare(dx, dxr, "dilated max-pool backward");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [TestCase(ReluRule.Standard)]
    [TestCase(ReluRule.Guided)]
    [TestCase(ReluRule.Deconvnet)]
    public void Relu_matches_reference(ReluRule rule)
    {
        var rng = new Random(7);
        var f = TestDevice.Ilgpu;
        var data = TensorAssert.Random(rng, 300);
        data[0] = 0f; // the kink
        var (x, xr) = Pair(data, 3, 100);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, 300), 3, 100);
        using var y = f.Allocate(3, 100);
        using var yr = _ref.Allocate(3, 100);
        using var dx = f.Allocate(3, 100);
        using var dxr = _ref.Allocate(3, 100);
        f.Relu(x, y);
        _ref.Relu(xr, yr);
        Compare(y, yr, "relu forward");
        f.ReluBackward(x, dy, dx, rule);
        _ref.ReluBackward(xr, dyr, dxr, rule);
        Compare(dx, dxr, $"relu backward {rule}");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [TestCase(3, 17, 5, true)]
    [TestCase(2, 8, 4, false)]
    [TestCase(1, 64, 10, true)]
    public void Gemm_matches_reference(int m, int k, int n, bool transB)
    {
        var s = new GemmShape(m, k, n, transB, 0.75f, 1.5f);
        var rng = new Random(11);
        var f = TestDevice.Ilgpu;
        var (x, xr) = Pair(TensorAssert.Random(rng, m * k), m, k);
        int[] ws = transB ? [n, k] : [k, n];
        var (w, wr) = Pair(TensorAssert.Random(rng, k * n), ws);
        var (b, br) = Pair(TensorAssert.Random(rng, n), n);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, m * n), m, n);
        using var y = f.Allocate(m, n);
        using var yr = _ref.Allocate(m, n);
        f.Gemm(x, w, b, y, s);
        _ref.Gemm(xr, wr, br, yr, s);
        Compare(y, yr, "gemm forward");
        using var dx = f.Allocate(m, k);
        using var dxr = _ref.Allocate(m, k);
        f.GemmBackwardData(dy, w, dx, s);
        _ref.GemmBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "gemm backward data");
        using var dw = f.Allocate(ws);
        using var dwr = _ref.Allocate(ws);
        f.GemmBackwardWeights(x, dy, dw, s);
        _ref.GemmBackwardWeights(xr, dyr, dwr, s);
        Compare(dw, dwr, "gemm backward weights");
        using var db = f.Allocate(n);
        using var dbr = _ref.Allocate(n);
        f.GemmBackwardBias(dy, db, s);
        _ref.GemmBackwardBias(dyr, dbr, s);
        Compare(db, dbr, "gemm backward bias");
        foreach (var t in new[] { x, xr, w, wr, b, br, dy, dyr })
            t.Dispose();
    }

    [Test]
    public void Global_average_pool_add_and_scale_match_reference() =>
        BackendComparison.GapAddScaleRelu(TestDevice.Ilgpu, _ref, 2, 3, 5, 4);

    [Test]
    public void Shape_mismatch_is_refused_before_launch()
    {
        var f = TestDevice.Ilgpu;
        var s = new ConvShape(1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        using var x = f.Allocate(1, 3, 8, 7); // wrong width
        using var w = f.Allocate(4, 3, 3, 3);
        using var y = f.Allocate(1, 4, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => f.Conv2d(x, w, null, y, s));
        Assert.That(e!.Message, Does.Contain("x has shape [1,3,8,7]"));
        var bad = s with { Groups = 2 };
        Assert.Throws<ArgumentException>(() => f.Conv2d(x, w, null, y, bad));
    }
}
