using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// An element-wise operation of one input, written once for every width the CPU backend runs
/// (the TensorPrimitives operator style): a new unary op is one small struct plus one
/// <c>CpuElementwise.Map</c> call.
/// </summary>
internal interface IUnaryOp
{
    float Apply(float x);

    Vector256<float> Apply(Vector256<float> x);

    Vector512<float> Apply(Vector512<float> x);
}

/// <summary>An element-wise operation of two inputs of the same length.</summary>
internal interface IBinaryOp
{
    float Apply(float a, float b);

    Vector256<float> Apply(Vector256<float> a, Vector256<float> b);

    Vector512<float> Apply(Vector512<float> a, Vector512<float> b);
}

/// <summary>y = max(x, 0).</summary>
internal readonly struct ReluOp : IUnaryOp
{
    public float Apply(float x) => MathF.Max(x, 0f);

    public Vector256<float> Apply(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);

    public Vector512<float> Apply(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
}

/// <summary>y = x &lt; lo ? lo : x &gt; hi ? hi : x, exactly <see cref="Kernels.Clip.Value"/> (NaN passes).</summary>
internal readonly struct ClipOp(float lo, float hi) : IUnaryOp
{
    public float Apply(float x) => x < lo ? lo : x > hi ? hi : x;

    public Vector256<float> Apply(Vector256<float> x)
    {
        Vector256<float> l = Vector256.Create(lo), h = Vector256.Create(hi);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, l), l, Vector256.ConditionalSelect(Vector256.GreaterThan(x, h), h, x));
    }

    public Vector512<float> Apply(Vector512<float> x)
    {
        Vector512<float> l = Vector512.Create(lo), h = Vector512.Create(hi);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, l), l, Vector512.ConditionalSelect(Vector512.GreaterThan(x, h), h, x));
    }
}

/// <summary>
/// y = 1 / (1 + exp(-x)) (<see cref="Kernels.Sigmoid.Value"/>'s function) as e = exp(-|x|) from
/// <see cref="CpuExp.ExpNonPositiveOrZero(Vector512{float})"/> (zero below ln 2^-126, where it would not be a normal float),
/// then 1 / (1 + e) for x &gt;= 0 and e / (1 + e) below: e never overflows, so no clamps or selects for it, and the
/// quotient is within a few ulp of the double sigmoid. The same operations in the same order at every width and in
/// the scalar tail (the same bits), which SiLU's fused conv stores share. Measured in L1, one thread, 16 floats a
/// step (SiLU, 2026-12-07, the 2-vCPU EPYC VM): 12.0 ns before (the general <see cref="CpuExp.Exp(Vector512{float})"/>
/// of -x, with its overflow, underflow and NaN selects, then the division); EfficientNet-B0's 6.2 million SiLU
/// outputs a batch-1 forward took 2.3 ms of its two cores' time that way. Its lean forward at batch 1 (bench
/// profile, PROFILE_LEAN=1, 100 ms sleep and a 64 MB sweep, sums of node medians, processes of the two builds
/// alternating): 12.47, 12.42, 11.16 ms before, 10.18, 10.06, 10.25 after (its 16->96 1x1 with SiLU at 112x112 0.73-0.79
/// ms to 0.56-0.58).
/// </summary>
internal readonly struct SigmoidOp : IUnaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float x)
    {
        float e = CpuExp.ExpNonPositiveOrZero(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(x) | int.MinValue)); // e^-|x|
        float q = 1f / (1f + e);
        return x >= 0f ? q : e * q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Apply(Vector256<float> x)
    {
        var e = CpuExp.ExpNonPositiveOrZero(x | Vector256.Create(-0f));
        var q = Vector256<float>.One / (Vector256<float>.One + e);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), q, e * q);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Apply(Vector512<float> x)
    {
        var e = CpuExp.ExpNonPositiveOrZero(x | Vector512.Create(-0f));
        var q = Vector512<float>.One / (Vector512<float>.One + e);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), q, e * q);
    }
}

/// <summary>
/// y = erf(x), <see cref="Kernels.Erf.Value"/>'s formulas (the Maclaurin series below |x| = 0.5, Abramowitz and
/// Stegun 7.1.26 above) in the same order, both evaluated per vector and blended, with <see cref="CpuExp"/> (within a
/// few ulp of MathF.Exp). The scalar form is Erf.Value itself.
/// </summary>
internal readonly struct ErfOp : IUnaryOp
{
    private const float TwoOverSqrtPi = 1.1283791670955126f;

    public float Apply(float x) => new Kernels.Erf().Value(x);

    public Vector256<float> Apply(Vector256<float> x)
    {
        static Vector256<float> C(float v) => Vector256.Create(v);
        var a = Vector256.Abs(x);
        var z = x * x;
        var p = Vector256<float>.One + z * (C(-1f / 3f) + z * (C(1f / 10f) + z * (C(-1f / 42f) + z * (C(1f / 216f) + z * (C(-1f / 1320f) + z * (1f / 9360f))))));
        var small = TwoOverSqrtPi * x * p;
        var t = Vector256<float>.One / (Vector256<float>.One + 0.3275911f * a);
        var poly = t * (C(0.254829592f) + t * (C(-0.284496736f) + t * (C(1.421413741f) + t * (C(-1.453152027f) + t * 1.061405429f))));
        var r = Vector256<float>.One - poly * CpuExp.Exp(-a * a);
        var large = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -r, r);
        return Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(0.5f)), small, large);
    }

    public Vector512<float> Apply(Vector512<float> x)
    {
        static Vector512<float> C(float v) => Vector512.Create(v);
        var a = Vector512.Abs(x);
        var z = x * x;
        var p = Vector512<float>.One + z * (C(-1f / 3f) + z * (C(1f / 10f) + z * (C(-1f / 42f) + z * (C(1f / 216f) + z * (C(-1f / 1320f) + z * (1f / 9360f))))));
        var small = TwoOverSqrtPi * x * p;
        var t = Vector512<float>.One / (Vector512<float>.One + 0.3275911f * a);
        var poly = t * (C(0.254829592f) + t * (C(-0.284496736f) + t * (C(1.421413741f) + t * (C(-1.453152027f) + t * 1.061405429f))));
        var r = Vector512<float>.One - poly * CpuExp.Exp(-a * a);
        var large = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -r, r);
        return Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(0.5f)), small, large);
    }
}

/// <summary>
/// y = x Phi(x), exact GELU, at the vector width with its own arrangement of <see cref="Kernels.Erf"/>'s large-x
/// formula (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7 on erf): with a = |x| / sqrt 2,
/// t = 1 / (1 + p a) and q = t P(t) exp(-a^2) = erfc(a), Phi(x) = 1 - q/2 for x &gt;= 0 and q/2 below, so the
/// negative side keeps its digits (no 1 + erf cancellation) and no small-x series is needed (GELU's error near 0 is
/// erf's absolute error times x / 2). Fused multiply-adds, <see cref="CpuExp.ExpNonPositive(Vector512{float})"/>, and
/// with AVX-512 a reciprocal estimate refined by one Newton step instead of a division: about 2.5x fewer cycles than
/// erf then four passes' arithmetic, within 3e-7 max(1, |x|) of <see cref="Kernels.Gelu.Value"/> (the scalar form, and
/// this map's scalar tail). Beyond |x| = 9 sqrt 2, Phi is exactly 0 or 1 (so GELU(-inf) is NaN, as the scalar form).
/// </summary>
internal readonly struct GeluOp : IUnaryOp
{
    private const float InvSqrt2 = 0.70710678118654752f;

    // Past a = 9 (|x| = 12.7) Phi is 0 or 1 to within 2e-37; the cut keeps exp's argument above -81 and every
    // product out of the subnormals, which cost a microcode assist each (a +-21 spread ran 1.8x slower without it).
    private const float Cutoff = 9f;
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    public float Apply(float x) => new Kernels.Gelu().Value(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Apply(Vector256<float> x)
    {
        static Vector256<float> C(float v) => Vector256.Create(v);
        var a = Vector256.Min(Vector256.Abs(x) * InvSqrt2, C(Cutoff));
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(a, C(P), Vector256<float>.One);
        var poly = Vector256.FusedMultiplyAdd(C(A5), t, C(A4));
        poly = Vector256.FusedMultiplyAdd(poly, t, C(A3));
        poly = Vector256.FusedMultiplyAdd(poly, t, C(A2));
        poly = Vector256.FusedMultiplyAdd(poly, t, C(A1)) * t;
        var half = poly * CpuExp.ExpNonPositive(-(a * a)) * 0.5f;
        half = Vector256.ConditionalSelect(Vector256.LessThan(a, C(Cutoff)), half, Vector256<float>.Zero);
        return x * Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), half, Vector256<float>.One - half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Apply(Vector512<float> x)
    {
        static Vector512<float> C(float v) => Vector512.Create(v);
        var a = Vector512.Min(Vector512.Abs(x) * InvSqrt2, C(Cutoff));
        var d = Vector512.FusedMultiplyAdd(a, C(P), Vector512<float>.One);
        Vector512<float> t;
        if (Avx512F.IsSupported)
        {
            // 14-bit estimate, one Newton step: t (2 - d t), relative error about 2^-28.
            var r = Avx512F.Reciprocal14(d);
            t = r * Vector512.FusedMultiplyAdd(-d, r, C(2f));
        }
        else
        {
            t = Vector512<float>.One / d;
        }
        var poly = Vector512.FusedMultiplyAdd(C(A5), t, C(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, C(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, C(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, C(A1)) * t;
        var half = poly * CpuExp.ExpNonPositive(-(a * a)) * 0.5f;
        half = Vector512.ConditionalSelect(Vector512.LessThan(a, C(Cutoff)), half, Vector512<float>.Zero);
        return x * Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), half, Vector512<float>.One - half);
    }
}

/// <summary>y = x^P for P = 2, 3 or 4 by the same multiplications as <see cref="Kernels.Pow.Value"/> (exactly its values).</summary>
internal readonly struct IntPowOp(int p) : IUnaryOp
{
    public float Apply(float x) => p == 2 ? x * x : p == 3 ? x * x * x : x * x * x * x;

    public Vector256<float> Apply(Vector256<float> x) => p == 2 ? x * x : p == 3 ? x * x * x : x * x * x * x;

    public Vector512<float> Apply(Vector512<float> x) => p == 2 ? x * x : p == 3 ? x * x * x : x * x * x * x;
}

/// <summary>y = x * s.</summary>
internal readonly struct ScaleOp(float s) : IUnaryOp
{
    public float Apply(float x) => x * s;

    public Vector256<float> Apply(Vector256<float> x) => x * s;

    public Vector512<float> Apply(Vector512<float> x) => x * s;
}

/// <summary>y = a + b.</summary>
internal readonly struct AddOp : IBinaryOp
{
    public float Apply(float a, float b) => a + b;

    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a + b;

    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a + b;
}

/// <summary>y = max(0, a + b): a residual addition and the ReLU after it in one pass.</summary>
internal readonly struct AddReluOp : IBinaryOp
{
    public float Apply(float a, float b) => MathF.Max(a + b, 0f);

    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256.Max(a + b, Vector256<float>.Zero);

    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => Vector512.Max(a + b, Vector512<float>.Zero);
}

/// <summary>y = a - b.</summary>
internal readonly struct SubOp : IBinaryOp
{
    public float Apply(float a, float b) => a - b;

    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a - b;

    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a - b;
}

/// <summary>y = a * b.</summary>
internal readonly struct MulOp : IBinaryOp
{
    public float Apply(float a, float b) => a * b;

    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * b;

    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a * b;
}

/// <summary>y = a / b.</summary>
internal readonly struct DivOp : IBinaryOp
{
    public float Apply(float a, float b) => a / b;

    public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a / b;

    public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a / b;
}

/// <summary>ReLU backward, standard rule: dx = dy * [x &gt; 0] (ReLU'(0) = 0). Inputs (x, dy).</summary>
internal readonly struct ReluGradOp : IBinaryOp
{
    public float Apply(float x, float dy) => x > 0f ? dy : 0f;

    public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);

    public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
}

/// <summary>Guided backpropagation: dx = dy * [x &gt; 0] * [dy &gt; 0]. Inputs (x, dy).</summary>
internal readonly struct GuidedReluGradOp : IBinaryOp
{
    public float Apply(float x, float dy) => x > 0f && dy > 0f ? dy : 0f;

    public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) =>
        Vector256.ConditionalSelect(
            Vector256.GreaterThan(x, Vector256<float>.Zero) & Vector256.GreaterThan(dy, Vector256<float>.Zero),
            dy, Vector256<float>.Zero);

    public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) =>
        Vector512.ConditionalSelect(
            Vector512.GreaterThan(x, Vector512<float>.Zero) & Vector512.GreaterThan(dy, Vector512<float>.Zero),
            dy, Vector512<float>.Zero);
}

/// <summary>Deconvnet: dx = dy * [dy &gt; 0], ignoring x. Inputs (x, dy).</summary>
internal readonly struct DeconvReluGradOp : IBinaryOp
{
    public float Apply(float x, float dy) => dy > 0f ? dy : 0f;

    public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(dy, Vector256<float>.Zero), dy, Vector256<float>.Zero);

    public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(dy, Vector512<float>.Zero), dy, Vector512<float>.Zero);
}

/// <summary>Element-wise loops over raw spans at the backend's vector width, split across cores when long.</summary>
internal static unsafe class CpuElementwise
{
    private const int Chunk = 1 << 15;

    /// <summary>y[i] = op(x[i]); x and y may be the same buffer.</summary>
    public static void Map<TOp>(float* x, float* y, long n, TOp op, CpuSimd simd) where TOp : struct, IUnaryOp
    {
        if (n < 8 * Chunk)
        {
            MapRange(x, y, (int)n, op, simd);
            return;
        }
        long chunks = (n + Chunk - 1) / Chunk;
        CpuParallel.For((int)chunks, c =>
        {
            long i0 = (long)c * Chunk;
            MapRange(x + i0, y + i0, (int)Math.Min(Chunk, n - i0), op, simd);
        });
    }

    /// <summary>y[i] = op(a[i], b[i]); y may alias either input.</summary>
    public static void Map<TOp>(float* a, float* b, float* y, long n, TOp op, CpuSimd simd) where TOp : struct, IBinaryOp
    {
        if (n < 8 * Chunk)
        {
            MapRange(a, b, y, (int)n, op, simd);
            return;
        }
        long chunks = (n + Chunk - 1) / Chunk;
        CpuParallel.For((int)chunks, c =>
        {
            long i0 = (long)c * Chunk;
            MapRange(a + i0, b + i0, y + i0, (int)Math.Min(Chunk, n - i0), op, simd);
        });
    }

    private static void MapRange<TOp>(float* x, float* y, int n, TOp op, CpuSimd simd) where TOp : struct, IUnaryOp
    {
        int i = 0;
        if (simd == CpuSimd.Vector512)
        {
            for (; i <= n - 16; i += 16)
                op.Apply(Vector512.Load(x + i)).Store(y + i);
        }
        else if (simd == CpuSimd.Vector256)
        {
            for (; i <= n - 8; i += 8)
                op.Apply(Vector256.Load(x + i)).Store(y + i);
        }
        for (; i < n; i++)
            y[i] = op.Apply(x[i]);
    }

    private static void MapRange<TOp>(float* a, float* b, float* y, int n, TOp op, CpuSimd simd)
        where TOp : struct, IBinaryOp
    {
        int i = 0;
        if (simd == CpuSimd.Vector512)
        {
            for (; i <= n - 16; i += 16)
                op.Apply(Vector512.Load(a + i), Vector512.Load(b + i)).Store(y + i);
        }
        else if (simd == CpuSimd.Vector256)
        {
            for (; i <= n - 8; i += 8)
                op.Apply(Vector256.Load(a + i), Vector256.Load(b + i)).Store(y + i);
        }
        for (; i < n; i++)
            y[i] = op.Apply(a[i], b[i]);
    }

    /// <summary>dst[i] = src[i] + b (a short row; 256-bit, which every x64 JIT handles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddScalar(float* src, float b, float* dst, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(b);
            for (; i <= n - 8; i += 8)
                (Vector256.Load(src + i) + v).Store(dst + i);
        }
        for (; i < n; i++)
            dst[i] = src[i] + b;
    }

    /// <summary>dst[i] += src[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddInPlace(float* src, float* dst, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
                (Vector256.Load(dst + i) + Vector256.Load(src + i)).Store(dst + i);
        }
        for (; i < n; i++)
            dst[i] += src[i];
    }

    /// <summary>Sum of n floats, accumulated in double across 8-lane float partial sums.</summary>
    public static double Sum(float* p, int n)
    {
        double acc = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // Blocks of up to 1024 keep the float partial sums short.
            while (i <= n - 8)
            {
                var v = Vector256<float>.Zero;
                int end = Math.Min(n - 7, i + 1024);
                for (; i < end; i += 8)
                    v += Vector256.Load(p + i);
                acc += Vector256.Sum(v);
            }
        }
        for (; i < n; i++)
            acc += p[i];
        return acc;
    }
    /// <summary>
    /// The dot products of <paramref name="w"/> with four vectors of length n, sharing the loads of w. Each
    /// result's summation order depends only on n (two vector accumulators per product, then the tail), so a
    /// product comes out the same whichever slot it is computed in.
    /// </summary>
    public static (float D0, float D1, float D2, float D3) Dot4(float* w, float* x0, float* x1, float* x2, float* x3, int n)
    {
        int i = 0;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            for (; i <= n - 32; i += 32)
            {
                var u = Vector512.Load(w + i);
                var v = Vector512.Load(w + i + 16);
                a0 = Vector512.FusedMultiplyAdd(u, Vector512.Load(x0 + i), a0);
                b0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x0 + i + 16), b0);
                a1 = Vector512.FusedMultiplyAdd(u, Vector512.Load(x1 + i), a1);
                b1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x1 + i + 16), b1);
                a2 = Vector512.FusedMultiplyAdd(u, Vector512.Load(x2 + i), a2);
                b2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x2 + i + 16), b2);
                a3 = Vector512.FusedMultiplyAdd(u, Vector512.Load(x3 + i), a3);
                b3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x3 + i + 16), b3);
            }
            (s0, s1, s2, s3) = (Vector512.Sum(a0 + b0), Vector512.Sum(a1 + b1), Vector512.Sum(a2 + b2), Vector512.Sum(a3 + b3));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= n - 8; i += 8)
            {
                var u = Vector256.Load(w + i);
                a0 = Vector256.FusedMultiplyAdd(u, Vector256.Load(x0 + i), a0);
                a1 = Vector256.FusedMultiplyAdd(u, Vector256.Load(x1 + i), a1);
                a2 = Vector256.FusedMultiplyAdd(u, Vector256.Load(x2 + i), a2);
                a3 = Vector256.FusedMultiplyAdd(u, Vector256.Load(x3 + i), a3);
            }
            (s0, s1, s2, s3) = (Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3));
        }
        for (; i < n; i++)
        {
            s0 = MathF.FusedMultiplyAdd(w[i], x0[i], s0);
            s1 = MathF.FusedMultiplyAdd(w[i], x1[i], s1);
            s2 = MathF.FusedMultiplyAdd(w[i], x2[i], s2);
            s3 = MathF.FusedMultiplyAdd(w[i], x3[i], s3);
        }
        return (s0, s1, s2, s3);
    }
}
