using System.Runtime.Intrinsics;
using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The managed CPU backend's vector paths for the element-wise ops of MobileNet and EfficientNet: clip (ReLU6),
/// exactly <see cref="Clip.Value"/> (bounds, NaN, infinities); sigmoid against the double reference; and broadcasts
/// of one value per (n, c) row (squeeze-excitation gates, both operand orders, all four ops, a batch-broadcast gate,
/// a parallel-sized one) and along the last axis (channels-last biases and LayerNorm's per-row statistics) against
/// the reference, with a broadcast outside the fast paths for contrast; erf and small integer powers at the vector
/// width; batched 2-D transposes in 8x8 blocks (NCHW to NHWC and back, edges) exactly; sums over the last axis.
/// </summary>
[TestFixture]
internal sealed class CpuElementwiseFastPathTests
{
    private readonly CpuBackend _cpu = new();
    private readonly ReferenceBackend _ref = new();

    [TestCase(1037)]
    [TestCase(70001)]
    public void Clip_is_exactly_the_scalar_rule(int n)
    {
        var rng = new Random(8);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 16 - 5)).ToArray();
        float[] special = [0f, 6f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 5.9999995f, 1e-30f];
        special.CopyTo(data, n - special.Length - 3);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        var clip = new Clip(0f, 6f);
        _cpu.Unary(clip, x, y);
        var actual = _cpu.Download(y);
        var expected = data.Select(clip.Value).ToArray();
        for (int i = 0; i < n; i++)
            Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected[i])),
                $"clip({data[i]}) at {i}: {actual[i]} vs {expected[i]}");
        Assert.That(actual.Count(v => v == 6f), Is.GreaterThan(n / 8), "values clipped at 6");
    }

    [Test]
    public void Sigmoid_matches_reference()
    {
        const int n = 1037;
        var rng = new Random(9);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 60 - 30)).ToArray();
        float[] special = [0f, -100f, 100f, -88f, 88f, 1e-7f];
        special.CopyTo(data, 5);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        using var xr = _ref.Upload(data, n);
        using var yr = _ref.Allocate(n);
        _cpu.Unary(new Sigmoid(), x, y);
        _ref.Unary(new Sigmoid(), xr, yr);
        TensorAssert.Close(_cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-7, 1e-6, "sigmoid");
    }

    public static IEnumerable<TestCaseData> BroadcastCases()
    {
        var shapes = new (int[] A, int[] B, string Name)[]
        {
            ([2, 5, 7, 9], [2, 5, 1, 1], "gate per (n, c)"),
            ([2, 5, 1, 1], [2, 5, 7, 9], "gate on the left"),
            ([3, 4, 5, 5], [1, 4, 1, 1], "gate broadcast over the batch"),
            ([2, 40, 31, 30], [2, 40, 1, 1], "large enough to run in parallel"),
            ([2, 5, 7, 9], [1, 1, 7, 9], "plane broadcast (rows along the last axis, both full)"),
            ([3, 7, 19], [19], "bias over the last axis (channels last)"),
            ([19], [3, 7, 19], "last-axis vector on the left"),
            ([2, 6, 7, 37], [2, 6, 7, 1], "one value per last-axis row (LayerNorm's mean)"),
            ([2, 6, 7, 1], [2, 6, 7, 37], "per-row value on the left"),
            ([40, 56, 96], [96], "channels-last bias, large enough to run in parallel"),
            ([2, 5, 3, 4], [1, 5, 1, 4], "a last axis under 8 (the index path)"),
        };
        foreach (var (a, b, name) in shapes)
        foreach (var op in Enum.GetValues<BinaryOp>())
            yield return new TestCaseData(a, b, op).SetName($"{op}: {name}");
    }

    [TestCaseSource(nameof(BroadcastCases))]
    public void Row_broadcast_matches_reference(int[] aShape, int[] bShape, BinaryOp op)
    {
        var rng = new Random(10);
        int na = aShape.Aggregate(1, (p, d) => p * d), nb = bShape.Aggregate(1, (p, d) => p * d);
        // Divisors kept away from zero.
        var ad = Enumerable.Range(0, na).Select(_ => (float)(0.5 + rng.NextDouble()) * (rng.Next(2) * 2 - 1)).ToArray();
        var bd = Enumerable.Range(0, nb).Select(_ => (float)(0.5 + rng.NextDouble()) * (rng.Next(2) * 2 - 1)).ToArray();
        var yShape = BroadcastShape.Broadcast(aShape, bShape);
        using var a = _cpu.Upload(ad, aShape);
        using var b = _cpu.Upload(bd, bShape);
        using var y = _cpu.Allocate(yShape);
        using var ar = _ref.Upload(ad, aShape);
        using var br = _ref.Upload(bd, bShape);
        using var yr = _ref.Allocate(yShape);
        _cpu.Binary(op, a, b, y);
        _ref.Binary(op, ar, br, yr);
        TensorAssert.Close(_cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-6, 1e-6, $"{op}");
    }

    [TestCase(CpuSimd.Vector512, 5, 53)]
    [TestCase(CpuSimd.Vector512, 3, 768)]
    [TestCase(CpuSimd.Vector256, 5, 53)]
    [TestCase(CpuSimd.Vector256, 3, 96)]
    [TestCase(CpuSimd.Scalar, 4, 21)]
    public void LayerNorm_at_each_width_matches_the_double_reference(CpuSimd simd, int rows, int cols)
    {
        if (simd == CpuSimd.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated
            || simd == CpuSimd.Vector256 && !System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
            Assert.Ignore($"{simd} is not accelerated here");
        using var cpu = new CpuBackend(simd);
        var reference = new ReferenceBackend();
        var rng = new Random(rows * cols);
        // An offset of 40 and a spread of 3: the mean is far from zero, as two-pass variance must handle.
        float[] xs = Enumerable.Range(0, rows * cols).Select(_ => (float)(40 + rng.NextDouble() * 6 - 3)).ToArray();
        float[] g = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray();
        float[] b = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] Run(Backend be, out float[] stats)
        {
            using var x = be.Upload(xs, rows, cols);
            using var gt = be.Upload(g, cols);
            using var bt = be.Upload(b, cols);
            using var y = be.Allocate(rows, cols);
            using var st = be.Allocate(rows, 2);
            be.LayerNorm(x, gt, bt, y, st, cols, 1e-5f);
            stats = be.Download(st);
            return be.Download(y);
        }
        var actual = Run(cpu, out var s);
        var expected = Run(reference, out var sr);
        TensorAssert.Close(actual, expected, 2e-5, 2e-5, $"layernorm at {simd}");
        TensorAssert.Close(s, sr, 2e-5, 2e-6, $"layernorm (mean, rstd) at {simd}");
    }

    /// <summary>data[i..i+16) through a 512-bit form once and a 256-bit form twice: the sixteen results of each.</summary>
    private static (float[] V512, float[] V256) SixteenLanes(float[] data, int i,
        Func<System.Runtime.Intrinsics.Vector512<float>, System.Runtime.Intrinsics.Vector512<float>> f512,
        Func<System.Runtime.Intrinsics.Vector256<float>, System.Runtime.Intrinsics.Vector256<float>> f256)
    {
        var v512 = new float[16];
        var v256 = new float[16];
        f512(System.Runtime.Intrinsics.Vector512.Create(data.AsSpan(i, 16))).CopyTo(v512);
        f256(System.Runtime.Intrinsics.Vector256.Create(data.AsSpan(i, 8))).CopyTo(v256.AsSpan(0, 8));
        f256(System.Runtime.Intrinsics.Vector256.Create(data.AsSpan(i + 8, 8))).CopyTo(v256.AsSpan(8, 8));
        return (v512, v256);
    }

    [Test]
    public void Sigmoid_is_the_same_bits_at_every_width_and_within_four_ulp_of_the_double_sigmoid()
    {
        var rng = new Random(17);
        var xs = Enumerable.Range(0, 20000).Select(_ => (float)(rng.NextDouble() * 60 - 30)).ToList();
        xs.AddRange(Enumerable.Range(0, 2000).Select(_ => (float)(rng.NextDouble() * 2 - 1)));
        xs.AddRange([0f, -0f, 1e-8f, -1e-8f, 1f, -1f, 16.6f, -16.6f, 87.3f, -87.3f, 87.33654f, -87.33654f, 87.34f, -87.34f,
            -100f, 100f, -1e30f, 1e30f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN]);
        while (xs.Count % 16 != 0)
            xs.Add(0.5f);
        var data = xs.ToArray();
        var op = new SigmoidOp();
        for (int i = 0; i < data.Length; i += 16)
        {
            var (v512, v256) = SixteenLanes(data, i, op.Apply, op.Apply);
            for (int l = 0; l < 16; l++)
            {
                float x = data[i + l], scalar = op.Apply(x);
                Assert.That(BitConverter.SingleToInt32Bits(v512[l]), Is.EqualTo(BitConverter.SingleToInt32Bits(scalar)), $"512-bit sigmoid({x})");
                Assert.That(BitConverter.SingleToInt32Bits(v256[l]), Is.EqualTo(BitConverter.SingleToInt32Bits(scalar)), $"256-bit sigmoid({x})");
                if (float.IsNaN(x))
                {
                    Assert.That(scalar, Is.NaN, "sigmoid(NaN)");
                    continue;
                }
                double e = 1 / (1 + Math.Exp(-(double)x));
                // Below ln 2^-126 the exponential is taken as zero: sigmoid(x) < 1.2e-38 there.
                double ulp = Math.Max(MathF.BitIncrement((float)e) - (float)e, e < 1.2e-38 ? 1.2e-38 : 0);
                Assert.That(Math.Abs(scalar - e), Is.LessThanOrEqualTo(4 * ulp), $"sigmoid({x}) = {scalar}, double {e}");
            }
        }
        Assert.Multiple(() =>
        {
            Assert.That(op.Apply(0f), Is.EqualTo(0.5f));
            Assert.That(op.Apply(float.PositiveInfinity), Is.EqualTo(1f));
            Assert.That(op.Apply(float.NegativeInfinity), Is.EqualTo(0f));
            Assert.That(op.Apply(-100f), Is.EqualTo(0f), "e^-100 is below the smallest normal float");
        });
    }

    [Test]
    public void Fused_exp_of_non_positive_values_is_within_two_ulp_at_both_widths()
    {
        var rng = new Random(16);
        var xs = Enumerable.Range(0, 20000).Select(_ => (float)(-rng.NextDouble() * 87)).ToList();
        xs.AddRange([0f, -0f, -1e-8f, -0.34657359f, -0.6931472f, -1f, -10f, -86.9f, -87f]);
        while (xs.Count % 16 != 0)
            xs.Add(-0.5f);
        var data = xs.ToArray();
        for (int i = 0; i < data.Length; i += 16)
        {
            var (v512, v256) = SixteenLanes(data, i, CpuExp.ExpNonPositive, CpuExp.ExpNonPositive);
            for (int l = 0; l < 16; l++)
            {
                double e = Math.Exp(data[i + l]);
                double ulp = MathF.BitIncrement((float)e) - (float)e;
                Assert.That(BitConverter.SingleToInt32Bits(CpuExp.ExpNonPositive(data[i + l])), Is.EqualTo(BitConverter.SingleToInt32Bits(v512[l])),
                    $"one-lane exp({data[i + l]}): the vector form's bits");
                Assert.That(Math.Abs(v512[l] - e), Is.LessThanOrEqualTo(2 * ulp), $"512-bit exp({data[i + l]}) = {v512[l]}, double {e}");
                Assert.That(Math.Abs(v256[l] - e), Is.LessThanOrEqualTo(2 * ulp), $"256-bit exp({data[i + l]}) = {v256[l]}, double {e}");
            }
        }
    }

    [Test]
    public void Float_exp_is_within_two_ulp_and_the_same_at_every_width()
    {
        var rng = new Random(15);
        var xs = Enumerable.Range(0, 20000).Select(_ => (float)(rng.NextDouble() * 200 - 105)).ToList();
        xs.AddRange([0f, -0f, 1f, -1f, 88.7f, 88.72283f, 88.7229f, 89f, -87.3f, -103.9f, -104f, -200f, 1e-8f, -1e-8f,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN]);
        while (xs.Count % 16 != 0)
            xs.Add(0.5f);
        var data = xs.ToArray();
        var v512 = new float[data.Length];
        var v256 = new float[data.Length];
        for (int i = 0; i < data.Length; i += 16)
        {
            CpuExp.Exp(System.Runtime.Intrinsics.Vector512.Create(data.AsSpan(i, 16))).CopyTo(v512.AsSpan(i, 16));
            CpuExp.Exp(System.Runtime.Intrinsics.Vector256.Create(data.AsSpan(i, 8))).CopyTo(v256.AsSpan(i, 8));
            CpuExp.Exp(System.Runtime.Intrinsics.Vector256.Create(data.AsSpan(i + 8, 8))).CopyTo(v256.AsSpan(i + 8, 8));
        }
        for (int i = 0; i < data.Length; i++)
        {
            float x = data[i], s = CpuExp.Exp(x);
            Assert.That(BitConverter.SingleToInt32Bits(v512[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(s)), $"512-bit exp({x})");
            Assert.That(BitConverter.SingleToInt32Bits(v256[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(s)), $"256-bit exp({x})");
            double e = Math.Exp(x);
            if (float.IsNaN(x))
                Assert.That(float.IsNaN(s), $"exp(NaN) = {s}");
            else if (e > float.MaxValue)
                Assert.That(s, Is.EqualTo(float.PositiveInfinity), $"exp({x}) overflows");
            else if (e < 1.1754943508222875e-38)
                Assert.That(Math.Abs(s - e), Is.LessThanOrEqualTo(2.9e-45), $"exp({x}) in the subnormals: {s} vs {e}");
            else
                Assert.That(Math.Abs(s - e) / e, Is.LessThanOrEqualTo(2.4e-7), $"exp({x}) = {s}, double {e}");
        }
    }

    [Test]
    public void Erf_vector_form_matches_the_scalar_formula()
    {
        const int n = 2011;
        var rng = new Random(12);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 12 - 6)).ToArray();
        float[] special = [0f, -0f, 0.5f, -0.5f, 0.49999997f, 10f, -10f, 1e-8f, float.PositiveInfinity, float.NegativeInfinity];
        special.CopyTo(data, 3);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        _cpu.Unary(new Erf(), x, y);
        var actual = _cpu.Download(y);
        var erf = new Erf();
        for (int i = 0; i < n; i++)
            Assert.That(actual[i], Is.EqualTo(erf.Value(data[i])).Within(3e-7f), $"erf({data[i]}) at {i}");
        // A value from each branch by hand: erf(0.25) = 0.276326390..., erf(1) = 0.842700793... (A&S to 1.5e-7).
        using var x2 = _cpu.Upload(new float[] { 0.25f, 1f, -1f, 0f, 0f, 0f, 0f, 0f, 0f }, 9);
        using var y2 = _cpu.Allocate(9);
        _cpu.Unary(new Erf(), x2, y2);
        var v = _cpu.Download(y2);
        Assert.That(v[0], Is.EqualTo(0.2763263902f).Within(2e-7f));
        Assert.That(v[1], Is.EqualTo(0.8427007929f).Within(2e-7f));
        Assert.That(v[2], Is.EqualTo(-0.8427007929f).Within(2e-7f));
    }

    [Test]
    public void Gelu_vector_form_matches_the_scalar_formula_and_hand_values()
    {
        const int n = 2011;
        var rng = new Random(13);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 16 - 8)).ToArray();
        float[] special = [0f, -0f, 0.70710677f, -0.70710677f, 1f, -1f, 10f, -10f, 1e-8f, -30f];
        special.CopyTo(data, 3);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        _cpu.Unary(new Gelu(), x, y);
        var actual = _cpu.Download(y);
        var gelu = new Gelu();
        for (int i = 0; i < n; i++)
            Assert.That(actual[i], Is.EqualTo(gelu.Value(data[i])).Within(3e-7f * Math.Max(1f, Math.Abs(data[i]))), $"gelu({data[i]}) at {i}");
        // GELU(1) = Phi(1) = 0.841344746..., GELU(-1) = -(1 - Phi(1)) = -0.158655254..., GELU(2) = 2 Phi(2) = 1.954499736...
        Assert.That(actual[7], Is.EqualTo(0.8413447461f).Within(3e-7f));
        Assert.That(actual[8], Is.EqualTo(-0.1586552539f).Within(3e-7f));
        using var x2 = _cpu.Upload(new float[] { 2f, -3f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f }, 17);
        using var y2 = _cpu.Allocate(17);
        _cpu.Unary(new Gelu(), x2, y2);
        var v = _cpu.Download(y2);
        Assert.That(v[0], Is.EqualTo(1.9544997361f).Within(5e-7f));
        Assert.That(v[1], Is.EqualTo(-0.0040496941f).Within(5e-7f));
        // Past |x| = 9 sqrt 2 Phi is 0 or 1, as the scalar form's (GELU(-inf) = -inf * 0 is NaN there too), and NaN passes.
        var edge = new float[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN, -20f, 20f, 14.1f, -14.1f, -5f };
        var wide = edge.Concat(Enumerable.Repeat(0f, 8)).ToArray();
        using var x3 = _cpu.Upload(wide, 16);
        using var y3 = _cpu.Allocate(16);
        _cpu.Unary(new Gelu(), x3, y3);
        var w = _cpu.Download(y3);
        Assert.That(w[0], Is.EqualTo(float.PositiveInfinity));
        Assert.That(float.IsNaN(w[1]) && float.IsNaN(gelu.Value(float.NegativeInfinity)), $"GELU(-inf) = {w[1]}");
        Assert.That(float.IsNaN(w[2]), $"GELU(NaN) = {w[2]}");
        Assert.That(w[3], Is.EqualTo(0f));
        Assert.That(w[4], Is.EqualTo(20f));
        Assert.That(w[5], Is.EqualTo(14.1f));
        Assert.That(w[6], Is.EqualTo(0f).Within(1e-30f));
        // GELU(-5) = -5 (1 - Phi(5)) = -1.4332579e-6; A&S 7.1.26 gives -1.4355e-6 (erfc's absolute error, 2.3e-9 here).
        Assert.That(w[7], Is.EqualTo(-1.4332579e-6f).Within(3e-9f));
    }

    [TestCase(2f)]
    [TestCase(3f)]
    [TestCase(4f)]
    public void Integer_powers_are_exactly_the_scalar_rule(float p)
    {
        const int n = 1029;
        var rng = new Random(13);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        var pow = new Pow(p);
        _cpu.Unary(pow, x, y);
        var actual = _cpu.Download(y);
        for (int i = 0; i < n; i++)
            Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(pow.Value(data[i]))),
                $"{data[i]}^{p} at {i}");
    }

    public static IEnumerable<TestCaseData> TransposeCases()
    {
        yield return new TestCaseData(new[] { 1, 24, 7, 9 }, new[] { 0, 2, 3, 1 }).SetName("NCHW to NHWC, 63-pixel planes");
        yield return new TestCaseData(new[] { 2, 7, 9, 24 }, new[] { 0, 3, 1, 2 }).SetName("NHWC to NCHW, batch 2");
        yield return new TestCaseData(new[] { 3, 13, 21 }, new[] { 0, 2, 1 }).SetName("batched 2-D, edges in both axes");
        yield return new TestCaseData(new[] { 67, 129 }, new[] { 1, 0 }).SetName("2-D, two row blocks");
        yield return new TestCaseData(new[] { 2, 96, 56, 56 }, new[] { 0, 2, 3, 1 }).SetName("ConvNeXt's stem, parallel");
        yield return new TestCaseData(new[] { 2, 3, 4, 5 }, new[] { 0, 2, 1, 3 }).SetName("a permutation that is no 2-D transpose");
        yield return new TestCaseData(new[] { 2, 5, 8 }, new[] { 0, 2, 1 }).SetName("an axis under 8 (the row path)");
    }

    [TestCaseSource(nameof(TransposeCases))]
    public void Transpose_is_exact(int[] shape, int[] perm)
    {
        int n = shape.Aggregate(1, (p, d) => p * d);
        var data = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var outShape = perm.Select(a => shape[a]).ToArray();
        using var x = _cpu.Upload(data, shape);
        using var y = _cpu.Allocate(outShape);
        _cpu.Transpose(x, y, perm);
        var actual = _cpu.Download(y);
        // Output index -> input index by hand.
        var inStride = new int[shape.Length];
        for (int k = shape.Length - 1, s = 1; k >= 0; s *= shape[k], k--)
            inStride[k] = s;
        for (int i = 0; i < n; i++)
        {
            int rest = i, src = 0;
            for (int k = outShape.Length - 1; k >= 0; k--)
            {
                src += rest % outShape[k] * inStride[perm[k]];
                rest /= outShape[k];
            }
            Assert.That(actual[i], Is.EqualTo(data[src]), $"output {i}");
        }
    }

    [TestCase(3, 5)]
    [TestCase(40, 16)]
    [TestCase(7, 37)]
    [TestCase(3136, 96)]
    public void Sum_over_the_last_axis_matches_reference(int rows, int len)
    {
        var rng = new Random(14);
        var data = Enumerable.Range(0, rows * len).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var x = _cpu.Upload(data, rows, len);
        using var y = _cpu.Allocate(rows, 1);
        using var xr = _ref.Upload(data, rows, len);
        using var yr = _ref.Allocate(rows, 1);
        var s = new AxisShape(rows, len, 1);
        _cpu.ReduceSum(x, y, s, mean: true);
        _ref.ReduceSum(xr, yr, s, mean: true);
        TensorAssert.Close(_cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-7, 1e-6, "mean over the last axis");
        // And over a middle axis (Inner lanes at a time, the sums in order).
        var s2 = new AxisShape(1, rows, len);
        using var y2 = _cpu.Allocate(1, len);
        using var yr2 = _ref.Allocate(1, len);
        _cpu.ReduceSum(x, y2, s2, mean: false);
        _ref.ReduceSum(xr, yr2, s2, mean: false);
        TensorAssert.Close(_cpu.Download(y2), ReferenceBackend.DownloadDouble(yr2), 1e-5, 1e-5, "sum over the rows");
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        _cpu.Dispose();
        _ref.Dispose();
    }
}
