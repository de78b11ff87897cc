using CamEngine.Backends;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// The element-wise, broadcasting, per-channel affine, concat, pad and softmax kernels against the double-precision
/// reference backend (forward and backward), then every reference backward rule against central finite differences
/// in double, and the kink conventions at their exact kinks.
/// </summary>
[TestFixture("ilgpu")]
[TestFixture("cpu")]
internal sealed class NewOpsKernelTests(string device)
{
    private CamEngine.Backends.Backend Fast => TestDevice.Named(device);

    private const double Atol = 1e-5, Rtol = 1e-4;
    private const double H = 1e-6, FdAtol = 1e-7, FdRtol = 1e-6;
    private readonly ReferenceBackend _ref = new();

    private (Tensor Fast, Tensor Ref) Pair(float[] data, params int[] shape) =>
        (Fast.Upload(data, shape), _ref.Upload(data, shape));

    private static void Compare(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), Atol, Rtol, what);

    private static int Count(int[] s) => s.Aggregate(1, (a, b) => a * b);

    public static IEnumerable<TestCaseData> UnaryCases()
    {
        yield return new TestCaseData(new Sigmoid()).SetName("Unary_sigmoid");
        yield return new TestCaseData(new HardSigmoid(1f / 6f, 0.5f)).SetName("Unary_hardsigmoid_pytorch");
        yield return new TestCaseData(new HardSigmoid(0.2f, 0.5f)).SetName("Unary_hardsigmoid_onnx_default");
        yield return new TestCaseData(new HardSwish()).SetName("Unary_hardswish");
        yield return new TestCaseData(new LeakyRelu(0.1f)).SetName("Unary_leakyrelu");
        yield return new TestCaseData(new Clip(0f, 6f)).SetName("Unary_relu6");
        yield return new TestCaseData(new Clip(-1.5f, 0.5f)).SetName("Unary_clip");
    }

    private void UnaryCheck<TOp>(TOp op) where TOp : struct, IUnaryOp
    {
        var rng = new Random(5);
        var data = TensorAssert.Random(rng, 2 * 3 * 5 * 4, 8f);
        var (x, xr) = Pair(data, 2, 3, 5, 4);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, data.Length), 2, 3, 5, 4);
        var f = Fast;
        using var y = f.Allocate(x.Shape);
        using var yr = _ref.Allocate(x.Shape);
        f.Unary(op, x, y);
        _ref.Unary(op, xr, yr);
        Compare(y, yr, $"{typeof(TOp).Name} forward");
        using var dx = f.Allocate(x.Shape);
        using var dxr = _ref.Allocate(x.Shape);
        f.UnaryBackward(op, x, dy, dx);
        _ref.UnaryBackward(op, xr, dyr, dxr);
        Compare(dx, dxr, $"{typeof(TOp).Name} backward");

        // Finite differences in double on the reference, away from the kinks (none lies within 1e-3 of a sample).
        var v = new double[40];
        for (int i = 0; i < v.Length; i++)
            v[i] = -7.9 + 0.4 * i + 0.0123;
        using var xd = _ref.UploadDouble(v, v.Length);
        using var ones = _ref.UploadDouble(Enumerable.Repeat(1.0, v.Length).ToArray(), v.Length);
        using var g = _ref.Allocate(v.Length);
        _ref.UnaryBackward(op, xd, ones, g);
        var numeric = new double[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            using var p = _ref.UploadDouble([v[i] + H], 1);
            using var m = _ref.UploadDouble([v[i] - H], 1);
            using var yp = _ref.Allocate(1);
            using var ym = _ref.Allocate(1);
            _ref.Unary(op, p, yp);
            _ref.Unary(op, m, ym);
            numeric[i] = (ReferenceBackend.D(yp)[0] - ReferenceBackend.D(ym)[0]) / (2 * H);
        }
        TensorAssert.Close(ReferenceBackend.DownloadDouble(g), numeric, FdAtol, FdRtol, $"{typeof(TOp).Name} finite differences");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    [TestCaseSource(nameof(UnaryCases))]
    public void Unary_matches_reference_and_finite_differences(object op)
    {
        switch (op)
        {
            case Sigmoid s: UnaryCheck(s); break;
            case HardSigmoid h: UnaryCheck(h); break;
            case HardSwish w: UnaryCheck(w); break;
            case LeakyRelu l: UnaryCheck(l); break;
            case Clip c: UnaryCheck(c); break;
            default: Assert.Fail($"no case for {op.GetType().Name}"); break;
        }
    }

    [Test]
    public void Kink_conventions_match_PyTorch()
    {
        // hardtanh/ReLU6: no gradient at either bound; leaky ReLU: alpha at 0; hardswish: -1/2 at -3 and 3/2 at 3;
        // hardsigmoid: 0 at +-3 (the corners).
        Assert.That(new Clip(0f, 6f).Derivative(0f), Is.Zero);
        Assert.That(new Clip(0f, 6f).Derivative(6f), Is.Zero);
        Assert.That(new Clip(0f, 6f).Derivative(3f), Is.EqualTo(1f));
        Assert.That(new LeakyRelu(0.1f).Derivative(0f), Is.EqualTo(0.1f));
        Assert.That(new HardSwish().Derivative(-3f), Is.EqualTo(-0.5f));
        Assert.That(new HardSwish().Derivative(3f), Is.EqualTo(1.5f));
        Assert.That(new HardSigmoid(1f / 6f, 0.5f).Derivative(3f), Is.Zero);
        Assert.That(new HardSigmoid(1f / 6f, 0.5f).Derivative(-3f), Is.Zero);
        // The kernels and the reference agree on the kinks too.
        float[] kinks = [-3f, 0f, 3f, 6f];
        var (x, xr) = Pair(kinks, 4);
        var (dy, dyr) = Pair([1f, 1f, 1f, 1f], 4);
        using var dx = Fast.Allocate(4);
        using var dxr = _ref.Allocate(4);
        Fast.UnaryBackward(new HardSwish(), x, dy, dx);
        _ref.UnaryBackward(new HardSwish(), xr, dyr, dxr);
        Assert.That(Fast.Download(dx), Is.EqualTo(new[] { -0.5f, 0.5f, 1.5f, 1f }));
        Compare(dx, dxr, "hardswish at its kinks");
        Fast.UnaryBackward(new Clip(0f, 6f), x, dy, dx);
        _ref.UnaryBackward(new Clip(0f, 6f), xr, dyr, dxr);
        Assert.That(Fast.Download(dx), Is.EqualTo(new[] { 0f, 0f, 1f, 0f }));
        Compare(dx, dxr, "relu6 at its kinks");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    public static IEnumerable<TestCaseData> BinaryCases()
    {
        foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
        {
            yield return new TestCaseData(op, new[] { 2, 3, 4, 5 }, new[] { 2, 3, 4, 5 }).SetName($"Binary_{op}_same");
            yield return new TestCaseData(op, new[] { 2, 3, 4, 5 }, new[] { 2, 3, 1, 1 }).SetName($"Binary_{op}_squeeze_excitation");
            yield return new TestCaseData(op, new[] { 2, 3, 1, 1 }, new[] { 2, 3, 4, 5 }).SetName($"Binary_{op}_scale_first");
            yield return new TestCaseData(op, new[] { 2, 3, 4, 5 }, new[] { 3, 1, 1 }).SetName($"Binary_{op}_channel_constant");
            yield return new TestCaseData(op, new[] { 1 }, new[] { 2, 3, 4, 5 }).SetName($"Binary_{op}_scalar_first");
            yield return new TestCaseData(op, new[] { 2, 7 }, new[] { 7 }).SetName($"Binary_{op}_flat_bias");
        }
    }

    private static float[] AwayFromZero(Random rng, int n)
    {
        var v = TensorAssert.Random(rng, n);
        for (int i = 0; i < n; i++)
            v[i] = v[i] >= 0 ? v[i] + 0.5f : v[i] - 0.5f;
        return v;
    }

    [TestCaseSource(nameof(BinaryCases))]
    public void Binary_matches_reference_and_finite_differences(BinaryOp op, int[] sa, int[] sb)
    {
        var rng = new Random(11);
        var (a, ar) = Pair(AwayFromZero(rng, Count(sa)), sa);
        var (b, br) = Pair(AwayFromZero(rng, Count(sb)), sb);
        int[] sy = BroadcastShape.Broadcast(sa, sb);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, Count(sy)), sy);
        var f = Fast;
        using var y = f.Allocate(sy);
        using var yr = _ref.Allocate(sy);
        f.Binary(op, a, b, y);
        _ref.Binary(op, ar, br, yr);
        Compare(y, yr, $"{op} forward");
        for (int operand = 0; operand < 2; operand++)
        {
            var shape = operand == 0 ? sa : sb;
            using var g = f.Allocate(shape);
            using var gr = _ref.Allocate(shape);
            f.BinaryBackward(op, a, b, dy, g, operand);
            _ref.BinaryBackward(op, ar, br, dyr, gr, operand);
            Compare(g, gr, $"{op} backward operand {operand}");
            var t = operand == 0 ? ar : br;
            var numeric = FiniteDifferenceTests.Numeric(t, dyr, () =>
            {
                var o = _ref.Allocate(sy);
                _ref.Binary(op, ar, br, o);
                return o;
            });
            TensorAssert.Close(ReferenceBackend.DownloadDouble(gr), numeric, FdAtol, FdRtol, $"{op} operand {operand} finite differences");
        }
        foreach (var t in new[] { a, ar, b, br, dy, dyr })
            t.Dispose();
    }

    [Test]
    public void Binary_rejects_shapes_that_do_not_broadcast()
    {
        using var a = _ref.Allocate(2, 3, 4, 5);
        using var b = _ref.Allocate(2, 4, 1, 1);
        using var y = _ref.Allocate(2, 3, 4, 5);
        Assert.Throws<ArgumentException>(() => _ref.Binary(BinaryOp.Mul, a, b, y));
        using var c = _ref.Allocate(3, 1, 1);
        using var wrong = _ref.Allocate(2, 3, 4, 4);
        Assert.Throws<ArgumentException>(() => _ref.Binary(BinaryOp.Mul, a, c, wrong));
    }

    [TestCase(new[] { 2, 3, 4, 5 })]
    [TestCase(new[] { 3, 6 })]
    public void ChannelAffine_matches_reference_and_finite_differences(int[] shape)
    {
        var rng = new Random(3);
        int c = shape[1];
        var (x, xr) = Pair(TensorAssert.Random(rng, Count(shape)), shape);
        var (s, sr) = Pair(TensorAssert.Random(rng, c, 2f), c);
        var (t, tr) = Pair(TensorAssert.Random(rng, c), c);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, Count(shape)), shape);
        var f = Fast;
        using var y = f.Allocate(shape);
        using var yr = _ref.Allocate(shape);
        f.ChannelAffine(x, s, t, y);
        _ref.ChannelAffine(xr, sr, tr, yr);
        Compare(y, yr, "affine forward");
        using var dx = f.Allocate(shape);
        using var dxr = _ref.Allocate(shape);
        f.ChannelAffineBackwardData(dy, s, dx);
        _ref.ChannelAffineBackwardData(dyr, sr, dxr);
        Compare(dx, dxr, "affine dx");
        using var ds = f.Allocate(c);
        using var dsr = _ref.Allocate(c);
        using var dt = f.Allocate(c);
        using var dtr = _ref.Allocate(c);
        f.ChannelAffineBackwardParams(x, dy, ds, dt);
        _ref.ChannelAffineBackwardParams(xr, dyr, dsr, dtr);
        Compare(ds, dsr, "affine dscale");
        Compare(dt, dtr, "affine dshift");
        Tensor Fwd()
        {
            var o = _ref.Allocate(shape);
            _ref.ChannelAffine(xr, sr, tr, o);
            return o;
        }
        TensorAssert.Close(ReferenceBackend.DownloadDouble(dxr), FiniteDifferenceTests.Numeric(xr, dyr, Fwd), FdAtol, FdRtol, "affine dx fd");
        TensorAssert.Close(ReferenceBackend.DownloadDouble(dsr), FiniteDifferenceTests.Numeric(sr, dyr, Fwd), FdAtol, FdRtol, "affine dscale fd");
        TensorAssert.Close(ReferenceBackend.DownloadDouble(dtr), FiniteDifferenceTests.Numeric(tr, dyr, Fwd), FdAtol, FdRtol, "affine dshift fd");
        foreach (var z in new[] { x, xr, s, sr, t, tr, dy, dyr })
            z.Dispose();
    }

    [Test]
    public void Concat_matches_reference_and_its_backward_is_the_split()
    {
        var rng = new Random(8);
        int[][] shapes = [[2, 3, 4, 5], [2, 1, 4, 5], [2, 4, 4, 5]];
        var pairs = shapes.Select(s => Pair(TensorAssert.Random(rng, Count(s)), s)).ToArray();
        var f = Fast;
        using var y = f.Allocate(2, 8, 4, 5);
        using var yr = _ref.Allocate(2, 8, 4, 5);
        f.Concat(pairs.Select(p => p.Fast).ToArray(), y);
        _ref.Concat(pairs.Select(p => p.Ref).ToArray(), yr);
        Compare(y, yr, "concat forward");
        // Channel 3 of sample 1 is channel 0 of the second part.
        Assert.That(f.Download(y)[(1 * 8 + 3) * 20 + 7], Is.EqualTo(f.Download(pairs[1].Fast)[(1 * 1 + 0) * 20 + 7]));
        var dparts = shapes.Select(s => f.Allocate(s)).ToArray();
        var dpartsR = shapes.Select(s => _ref.Allocate(s)).ToArray();
        f.ConcatBackward(y, dparts);
        _ref.ConcatBackward(yr, dpartsR);
        for (int k = 0; k < shapes.Length; k++)
        {
            Compare(dparts[k], dpartsR[k], $"concat backward part {k}");
            Assert.That(f.Download(dparts[k]), Is.EqualTo(f.Download(pairs[k].Fast)), "the split of the concat is the parts");
        }
        using var bad = f.Allocate(2, 7, 4, 5);
        Assert.Throws<ArgumentException>(() => f.Concat(pairs.Select(p => p.Fast).ToArray(), bad));
        foreach (var t in pairs.SelectMany(p => new[] { p.Fast, p.Ref }).Concat(dparts).Concat(dpartsR))
            t.Dispose();
    }

    [TestCase(0, 0, 0, 1, 0f)]
    [TestCase(1, 2, 3, 0, 0.5f)]
    public void Pad_matches_reference_and_finite_differences(int pt, int pl, int pb, int pr, float value)
    {
        var s = new PadShape(2, 3, 4, 5, pt, pl, pb, pr);
        var rng = new Random(9);
        var (x, xr) = Pair(TensorAssert.Random(rng, 2 * 3 * 4 * 5), 2, 3, 4, 5);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, 2 * 3 * s.OH * s.OW), 2, 3, s.OH, s.OW);
        var f = Fast;
        using var y = f.Allocate(2, 3, s.OH, s.OW);
        using var yr = _ref.Allocate(2, 3, s.OH, s.OW);
        f.Pad(x, y, s, value);
        _ref.Pad(xr, yr, s, value);
        Compare(y, yr, "pad forward");
        Assert.That(f.Download(y)[0], Is.EqualTo(pt + pl > 0 ? value : f.Download(x)[0]));
        using var dx = f.Allocate(x.Shape);
        using var dxr = _ref.Allocate(x.Shape);
        f.PadBackward(dy, dx, s);
        _ref.PadBackward(dyr, dxr, s);
        Compare(dx, dxr, "pad backward");
        TensorAssert.Close(ReferenceBackend.DownloadDouble(dxr), FiniteDifferenceTests.Numeric(xr, dyr, () =>
        {
            var o = _ref.Allocate(2, 3, s.OH, s.OW);
            _ref.Pad(xr, o, s, value);
            return o;
        }), FdAtol, FdRtol, "pad finite differences");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }

    /// <summary>Softmax forward on rows of 16-lane vectors and a tail (37, 197: an attention row) and on enough rows to
    /// run in parallel, against the reference; each row sums to 1; a row holding a NaN is NaN; -infinity (a masked
    /// score) gives 0.</summary>
    [TestCase(3, 37)]
    [TestCase(100, 197)]
    public void Softmax_on_long_rows_matches_reference(int rows, int cols)
    {
        var rng = new Random(13);
        var data = TensorAssert.Random(rng, rows * cols, 20f);
        data[cols + 5] = float.NegativeInfinity;
        data[2 * cols + 7] = float.NaN;
        var (x, xr) = Pair(data, rows, cols);
        var f = Fast;
        using var y = f.Allocate(rows, cols);
        using var yr = _ref.Allocate(rows, cols);
        f.Softmax(x, y);
        _ref.Softmax(xr, yr);
        var got = f.Download(y);
        var want = ReferenceBackend.DownloadDouble(yr);
        Assert.That(got.Skip(2 * cols).Take(cols), Is.All.NaN, "the row with a NaN");
        Assert.That(got[cols + 5], Is.EqualTo(0f), "e^-inf");
        for (int r = 0; r < rows; r++)
        {
            if (r == 2)
                continue;
            TensorAssert.Close(got.Skip(r * cols).Take(cols).ToArray(), want.Skip(r * cols).Take(cols).ToArray(), 1e-6, 1e-4, $"softmax row {r}");
            Assert.That(got.Skip(r * cols).Take(cols).Sum(), Is.EqualTo(1f).Within(1e-5), $"row {r} sums to 1");
        }
        x.Dispose();
        xr.Dispose();
    }

    [TestCase(3, 10)]
    [TestCase(1, 1)]
    public void Softmax_matches_reference_and_finite_differences(int rows, int cols)
    {
        var rng = new Random(12);
        var (x, xr) = Pair(TensorAssert.Random(rng, rows * cols, 20f), rows, cols);
        var (dy, dyr) = Pair(TensorAssert.Random(rng, rows * cols), rows, cols);
        var f = Fast;
        using var y = f.Allocate(rows, cols);
        using var yr = _ref.Allocate(rows, cols);
        f.Softmax(x, y);
        _ref.Softmax(xr, yr);
        Compare(y, yr, "softmax forward");
        Assert.That(f.Download(y).Take(cols).Sum(), Is.EqualTo(1f).Within(1e-5));
        using var dx = f.Allocate(rows, cols);
        using var dxr = _ref.Allocate(rows, cols);
        f.SoftmaxBackward(y, dy, dx);
        _ref.SoftmaxBackward(yr, dyr, dxr);
        Compare(dx, dxr, "softmax backward");
        TensorAssert.Close(ReferenceBackend.DownloadDouble(dxr), FiniteDifferenceTests.Numeric(xr, dyr, () =>
        {
            var o = _ref.Allocate(rows, cols);
            _ref.Softmax(xr, o);
            return o;
        }), FdAtol, FdRtol, "softmax finite differences");
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }
}
