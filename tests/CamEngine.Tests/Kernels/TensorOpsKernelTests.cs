using CamEngine.Backends;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// The rank-general kernels (transpose up to rank 6, reductions over a middle axis and their adjoints, max with
/// first-argmax, slice and place along an axis, layer norm forward and backward) and the smooth maps added with
/// them (erf, pow, sqrt, tanh), on the ILGPU CPU accelerator and the managed CPU backend, against the
/// double-precision reference backend (whose rules the graph tests check by finite differences); erf against
/// tabulated values.
/// </summary>
[TestFixture("ilgpu")]
[TestFixture("cpu")]
internal sealed class TensorOpsKernelTests(string device)
{
    private Backend Fast => TestDevice.Named(device);

    private const double Atol = 1e-5, Rtol = 1e-4;
    private readonly ReferenceBackend _ref = new();

    private (Tensor Fast, Tensor Ref) Pair(float[] data, params int[] shape) =>
        (Fast.Upload(data, shape), _ref.Upload(data, shape));

    private static void Compare(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), Atol, Rtol, what);

    private static int Count(int[] s) => s.Aggregate(1, (a, b) => a * b);

    [TestCase(new[] { 2, 3, 4 }, new[] { 0, 2, 1 })]
    [TestCase(new[] { 2, 3, 4, 5 }, new[] { 0, 2, 3, 1 })]
    [TestCase(new[] { 2, 2, 3, 4, 5 }, new[] { 0, 2, 1, 3, 4 })]
    [TestCase(new[] { 2, 2, 3, 2, 3, 4 }, new[] { 0, 1, 3, 2, 4, 5 })]
    [TestCase(new[] { 2, 2, 3, 2, 3, 4 }, new[] { 0, 5, 4, 3, 2, 1 })]
    public void Transpose_matches_reference(int[] shape, int[] perm)
    {
        var (x, xr) = Pair(TensorAssert.Random(new Random(1), Count(shape)), shape);
        var outShape = TransposeShape.Permute(shape, perm);
        using var y = Fast.Allocate(outShape);
        using var yr = _ref.Allocate(outShape);
        Fast.Transpose(x, y, perm);
        _ref.Transpose(xr, yr, perm);
        Compare(y, yr, "transpose");
        x.Dispose();
        xr.Dispose();
    }

    [TestCase(3, 5, 4, false)]
    [TestCase(6, 7, 1, true)]
    [TestCase(1, 9, 6, true)]
    public void Axis_sum_mean_and_broadcast_match_reference(int outer, int len, int inner, bool mean)
    {
        var s = new AxisShape(outer, len, inner);
        var rng = new Random(2);
        var (x, xr) = Pair(TensorAssert.Random(rng, outer * len * inner), outer, len, inner);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, outer * inner), outer, inner);
        using var y = Fast.Allocate(outer, inner);
        using var yr = _ref.Allocate(outer, inner);
        Fast.ReduceSum(x, y, s, mean);
        _ref.ReduceSum(xr, yr, s, mean);
        Compare(y, yr, "reduce");
        using var dx = Fast.Allocate(outer, len, inner);
        using var dxr = _ref.Allocate(outer, len, inner);
        Fast.BroadcastAxis(dy, dx, s, mean);
        _ref.BroadcastAxis(dyr, dxr, s, mean);
        Compare(dx, dxr, "broadcast");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [Test]
    public void Axis_max_routes_like_the_reference_with_first_maximum_at_ties()
    {
        var s = new AxisShape(2, 4, 3);
        var data = TensorAssert.Random(new Random(3), 24);
        data[3] = data[0] = 5f; // (o 0, j 0): a tie between l 0 and l 1; the first wins
        var (x, xr) = Pair(data, 2, 4, 3);
        using var y = Fast.Allocate(2, 3);
        using var yr = _ref.Allocate(2, 3);
        using var a = Fast.AllocateIndices(2, 3);
        using var ar = _ref.AllocateIndices(2, 3);
        Fast.ReduceMax(x, y, a, s);
        _ref.ReduceMax(xr, yr, ar, s);
        Compare(y, yr, "max");
        var (dy, dyr) = Pair([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        using var dx = Fast.Allocate(2, 4, 3);
        using var dxr = _ref.Allocate(2, 4, 3);
        Fast.ReduceMaxBackward(dy, a, dx);
        _ref.ReduceMaxBackward(dyr, ar, dxr);
        Compare(dx, dxr, "max backward");
        Assert.That(Fast.Download(dx)[0], Is.EqualTo(1f), "the tie goes to the first maximum");
        using var routed = Fast.Allocate(2, 3);
        Fast.ReduceMaxRoute(x, a, routed);
        Assert.That(Fast.Download(routed), Is.EqualTo(Fast.Download(y)), "routing x through its own argmax gives the max");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [Test]
    public void Slice_and_place_along_an_axis_match_reference()
    {
        var s = new AxisShape(3, 5, 4);
        var (x, xr) = Pair(TensorAssert.Random(new Random(4), 60), 3, 5, 4);
        using var y = Fast.Allocate(3, 2, 4);
        using var yr = _ref.Allocate(3, 2, 4);
        Fast.SliceAxis(x, y, s, 2, 2);
        _ref.SliceAxis(xr, yr, s, 2, 2);
        Compare(y, yr, "slice");
        using var back = Fast.Allocate(3, 5, 4);
        using var backr = _ref.Allocate(3, 5, 4);
        Fast.PlaceAxis(y, back, s, 2, 2);
        _ref.PlaceAxis(yr, backr, s, 2, 2);
        Compare(back, backr, "place");
        Assert.Throws<ArgumentException>(() => Fast.SliceAxis(x, y, s, 4, 2));
        x.Dispose();
        xr.Dispose();
    }

    [TestCase(6, 8)]
    [TestCase(3, 96)]
    public void LayerNorm_forward_and_backward_match_reference(int rows, int cols)
    {
        var rng = new Random(5);
        var (x, xr) = Pair(TensorAssert.Random(rng, rows * cols, 3f), rows, cols);
        var (g, gr) = Pair(TensorAssert.Random(rng, cols), cols);
        var (b, br) = Pair(TensorAssert.Random(rng, cols), cols);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, rows * cols), rows, cols);
        using var y = Fast.Allocate(rows, cols);
        using var yr = _ref.Allocate(rows, cols);
        using var st = Fast.Allocate(rows, 2);
        using var str = _ref.Allocate(rows, 2);
        Fast.LayerNorm(x, g, b, y, st, cols, 1e-5f);
        _ref.LayerNorm(xr, gr, br, yr, str, cols, 1e-5f);
        Compare(y, yr, "layernorm");
        using var dx = Fast.Allocate(rows, cols);
        using var dxr = _ref.Allocate(rows, cols);
        using var dg = Fast.Allocate(cols);
        using var dgr = _ref.Allocate(cols);
        using var db = Fast.Allocate(cols);
        using var dbr = _ref.Allocate(cols);
        Fast.LayerNormBackward(x, g, st, dy, dx, dg, db, cols);
        _ref.LayerNormBackward(xr, gr, str, dyr, dxr, dgr, dbr, cols);
        Compare(dx, dxr, "layernorm dx");
        Compare(dg, dgr, "layernorm dgamma");
        Compare(db, dbr, "layernorm dbeta");
        foreach (var t in new[] { x, xr, g, gr, b, br, dy, dyr })
            t.Dispose();
    }

    public static IEnumerable<TestCaseData> SmoothCases()
    {
        yield return new TestCaseData(new Erf()).SetName("Smooth_erf");
        yield return new TestCaseData(new Gelu()).SetName("Smooth_gelu");
        yield return new TestCaseData(new Pow(2f)).SetName("Smooth_square");
        yield return new TestCaseData(new Pow(3f)).SetName("Smooth_cube");
        yield return new TestCaseData(new Sqrt()).SetName("Smooth_sqrt");
        yield return new TestCaseData(new Tanh()).SetName("Smooth_tanh");
    }

    [TestCaseSource(nameof(SmoothCases))]
    public void Smooth_maps_match_reference(object op)
    {
        switch (op)
        {
            case Erf e: SmoothCheck(e); break;
            case Gelu g: SmoothCheck(g); break;
            case Pow p: SmoothCheck(p); break;
            case Sqrt q: SmoothCheck(q); break;
            case Tanh t: SmoothCheck(t); break;
            default: Assert.Fail($"no case for {op.GetType().Name}"); break;
        }
    }

    private void SmoothCheck<TOp>(TOp op) where TOp : struct, IUnaryOp
    {
        var rng = new Random(6);
        // sqrt only on (0.05, 4); the others on (-4, 4), which crosses erf's two branches at |x| = 0.5.
        var data = Enumerable.Range(0, 120).Select(_ => (float)(op is Sqrt ? 0.05 + rng.NextDouble() * 3.95 : rng.NextDouble() * 8 - 4)).ToArray();
        var (x, xr) = Pair(data, 120);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, 120), 120);
        using var y = Fast.Allocate(120);
        using var yr = _ref.Allocate(120);
        Fast.Unary(op, x, y);
        _ref.Unary(op, xr, yr);
        TensorAssert.Close(Fast.Download(y), ReferenceBackend.DownloadDouble(yr), 3e-7, 1e-6, $"{typeof(TOp).Name} forward");
        using var dx = Fast.Allocate(120);
        using var dxr = _ref.Allocate(120);
        Fast.UnaryBackward(op, x, dy, dx);
        _ref.UnaryBackward(op, xr, dyr, dxr);
        Compare(dx, dxr, $"{typeof(TOp).Name} backward");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [Test]
    public void Erf_matches_tabulated_values()
    {
        // Abramowitz and Stegun, table 7.1 (and erf(3), erf(4) from erfc tables).
        (double X, double Erf)[] table =
        [
            (0.0, 0.0), (0.1, 0.1124629160), (0.3, 0.3286267595), (0.5, 0.5204998778), (1.0, 0.8427007929),
            (1.5, 0.9661051465), (2.0, 0.9953222650), (3.0, 0.9999779095), (4.0, 0.9999999846),
        ];
        foreach (var (x, e) in table)
        {
            Assert.That(ReferenceBackend.ErfDouble(x), Is.EqualTo(e).Within(1e-10), $"reference erf({x})");
            Assert.That(ReferenceBackend.ErfDouble(-x), Is.EqualTo(-e).Within(1e-10), $"reference erf(-{x})");
            Assert.That(new Erf().Value((float)x), Is.EqualTo(e).Within(3e-7), $"kernel erf({x})");
        }
    }
}
