using CamEngine.Backends;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// Every backward rule checked by central finite differences in double precision on the reference backend:
/// for L = sum(r * op(inputs)) with a random r, dL/d(input) from the backward kernel equals
/// (L(x + h e_i) - L(x - h e_i)) / 2h. Inputs are random, so no element sits on a ReLU or max-pool kink.
/// The ILGPU kernels are proven equal to these reference rules in <see cref="KernelVsReferenceTests"/>.
/// </summary>
[TestFixture]
internal sealed class FiniteDifferenceTests
{
    internal const double H = 1e-6;
    private const double Atol = 1e-7, Rtol = 1e-6;
    private readonly ReferenceBackend _b = new();

    private Tensor Rand(Random rng, params int[] shape)
    {
        int n = 1;
        foreach (int d in shape)
            n *= d;
        var v = new double[n];
        for (int i = 0; i < n; i++)
            v[i] = rng.NextDouble() * 2 - 1;
        return _b.UploadDouble(v, shape);
    }

    /// <summary>Numerical dL/dt for every element of <paramref name="t"/>, with L = sum(r * y) and y = f()
    /// (central differences with step <see cref="H"/>, in double). Also used by <see cref="NewOpsKernelTests"/>.</summary>
    internal static double[] Numeric(Tensor t, Tensor r, Func<Tensor> f)
    {
        var data = ReferenceBackend.D(t);
        var rd = ReferenceBackend.D(r);
        var g = new double[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            double keep = data[i];
            data[i] = keep + H;
            double lp = Dot(f(), rd);
            data[i] = keep - H;
            double lm = Dot(f(), rd);
            data[i] = keep;
            g[i] = (lp - lm) / (2 * H);
        }
        return g;
    }

    private static double Dot(Tensor y, double[] r)
    {
        var d = ReferenceBackend.D(y);
        double s = 0;
        for (int i = 0; i < d.Length; i++)
            s += d[i] * r[i];
        y.Dispose();
        return s;
    }

    private static void Check(Tensor analytic, double[] numeric, string what) =>
        TensorAssert.Close(ReferenceBackend.DownloadDouble(analytic), numeric, Atol, Rtol, what);

    [TestCaseSource(typeof(KernelVsReferenceTests), nameof(KernelVsReferenceTests.ConvCases))]
    public void Conv2d_backward_matches_finite_differences(ConvShape s)
    {
        var rng = new Random(42);
        using var x = Rand(rng, s.N, s.C, s.H, s.W);
        using var w = Rand(rng, s.K, s.CPerGroup, s.KH, s.KW);
        using var bias = Rand(rng, s.K);
        using var r = Rand(rng, s.N, s.K, s.OH, s.OW);
        Tensor Fwd()
        {
            var y = _b.Allocate(s.N, s.K, s.OH, s.OW);
            _b.Conv2d(x, w, bias, y, s);
            return y;
        }
        using var dx = _b.Allocate(x.Shape);
        _b.Conv2dBackwardData(r, w, dx, s);
        Check(dx, Numeric(x, r, Fwd), "conv dx");
        using var dw = _b.Allocate(w.Shape);
        _b.Conv2dBackwardWeights(x, r, dw, s);
        Check(dw, Numeric(w, r, Fwd), "conv dw");
        using var db = _b.Allocate(s.K);
        _b.Conv2dBackwardBias(r, db, s);
        Check(db, Numeric(bias, r, Fwd), "conv db");
    }

    [TestCaseSource(typeof(KernelVsReferenceTests), nameof(KernelVsReferenceTests.PoolCases))]
    public void Pooling_backward_matches_finite_differences(PoolShape s)
    {
        var rng = new Random(43);
        using var x = Rand(rng, s.N, s.C, s.H, s.W);
        using var r = Rand(rng, s.N, s.C, s.OH, s.OW);
        int[] ys = [s.N, s.C, s.OH, s.OW];
        Tensor Max()
        {
            var y = _b.Allocate(ys);
            using var a = _b.AllocateIndices(ys);
            _b.MaxPool(x, y, a, s);
            return y;
        }
        Tensor Avg()
        {
            var y = _b.Allocate(ys);
            _b.AvgPool(x, y, s);
            return y;
        }
        using var y0 = _b.Allocate(ys);
        using var arg = _b.AllocateIndices(ys);
        _b.MaxPool(x, y0, arg, s);
        using var dx = _b.Allocate(x.Shape);
        _b.MaxPoolBackward(r, arg, dx, s);
        Check(dx, Numeric(x, r, Max), "max-pool dx");
        using var dxa = _b.Allocate(x.Shape);
        _b.AvgPoolBackward(r, dxa, s);
        Check(dxa, Numeric(x, r, Avg), "avg-pool dx");
    }

    [Test]
    public void Relu_gap_gemm_add_backward_match_finite_differences()
    {
        var rng = new Random(44);
        using var x = Rand(rng, 2, 3, 4, 5);
        using var r = Rand(rng, 2, 3, 4, 5);
        Tensor Relu()
        {
            var y = _b.Allocate(x.Shape);
            _b.Relu(x, y);
            return y;
        }
        using var dx = _b.Allocate(x.Shape);
        _b.ReluBackward(x, r, dx, ReluRule.Standard);
        Check(dx, Numeric(x, r, Relu), "relu dx");

        using var rg = Rand(rng, 2, 3, 1, 1);
        Tensor Gap()
        {
            var y = _b.Allocate(2, 3, 1, 1);
            _b.GlobalAvgPool(x, y);
            return y;
        }
        using var dxg = _b.Allocate(x.Shape);
        _b.GlobalAvgPoolBackward(rg, dxg);
        Check(dxg, Numeric(x, rg, Gap), "gap dx");

        foreach (bool transB in new[] { true, false })
        {
            var s = new GemmShape(3, 6, 4, transB, 0.5f, 2f);
            using var a = Rand(rng, 3, 6);
            using var w = transB ? Rand(rng, 4, 6) : Rand(rng, 6, 4);
            using var bias = Rand(rng, 4);
            using var rr = Rand(rng, 3, 4);
            Tensor Gemm()
            {
                var y = _b.Allocate(3, 4);
                _b.Gemm(a, w, bias, y, s);
                return y;
            }
            using var da = _b.Allocate(3, 6);
            _b.GemmBackwardData(rr, w, da, s);
            Check(da, Numeric(a, rr, Gemm), $"gemm dx transB={transB}");
            using var dw = _b.Allocate(w.Shape);
            _b.GemmBackwardWeights(a, rr, dw, s);
            Check(dw, Numeric(w, rr, Gemm), $"gemm dw transB={transB}");
            using var db = _b.Allocate(4);
            _b.GemmBackwardBias(rr, db, s);
            Check(db, Numeric(bias, rr, Gemm), $"gemm db transB={transB}");
        }
    }

    [Test]
    public void Relu_kink_passes_no_gradient_under_any_rule()
    {
        using var x = _b.UploadDouble([0.0, 1.0, -1.0, 2.0], 4);
        using var dy = _b.UploadDouble([5.0, 3.0, 7.0, -4.0], 4);
        using var dx = _b.Allocate(4);
        var f = TestDevice.Ilgpu;
        using var xf = f.Upload([0f, 1f, -1f, 2f], 4);
        using var dyf = f.Upload([5f, 3f, 7f, -4f], 4);
        using var dxf = f.Allocate(4);
        var expected = new Dictionary<ReluRule, float[]>
        {
            [ReluRule.Standard] = [0f, 3f, 0f, -4f],
            [ReluRule.Guided] = [0f, 3f, 0f, 0f],
            [ReluRule.Deconvnet] = [5f, 3f, 7f, 0f],
        };
        foreach (var (rule, want) in expected)
        {
            _b.ReluBackward(x, dy, dx, rule);
            f.ReluBackward(xf, dyf, dxf, rule);
            Assert.That(_b.Download(dx), Is.EqualTo(want), $"reference {rule}");
            Assert.That(f.Download(dxf), Is.EqualTo(want), $"ilgpu {rule}");
        }
    }

    [Test]
    public void Max_pool_ties_route_to_the_first_maximum()
    {
        // One 2x2 window of equal values, then a window whose maximum appears twice (positions 1 and 2).
        var s = new PoolShape(1, 1, 2, 4, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false, false);
        float[] x = [3f, 3f, 1f, 5f,
                     3f, 3f, 5f, 2f];
        foreach (Backend b in new Backend[] { _b, TestDevice.Ilgpu })
        {
            using var xt = b.Upload(x, 1, 1, 2, 4);
            using var y = b.Allocate(1, 1, 1, 2);
            using var a = b.AllocateIndices(1, 1, 1, 2);
            using var dy = b.Upload([10f, 20f], 1, 1, 1, 2);
            using var dx = b.Allocate(1, 1, 2, 4);
            b.MaxPool(xt, y, a, s);
            b.MaxPoolBackward(dy, a, dx, s);
            Assert.That(b.Download(y), Is.EqualTo(new[] { 3f, 5f }), b.Name);
            Assert.That(b.Download(dx), Is.EqualTo(new[] { 10f, 0f, 0f, 20f, 0f, 0f, 0f, 0f }), b.Name);
        }
    }
}
