using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// exp in float for the CPU backend's vector maps (sigmoid, erf): Cody-Waite reduction <c>x = n ln2 + r</c> with
/// |r| &lt;= ln2 / 2, the degree-6 polynomial of Cephes' expf for <c>e^r</c> (within 2 ulp of exp over the float range,
/// by the tests against the double exp), and <c>2^n</c> built in the exponent bits as two factors (so results down to
/// the subnormals and up to the largest float are reached). Above 88.72284 it gives +infinity, below -103.97 zero,
/// NaN for NaN. The scalar form does the same float operations in the same order, so a vector lane and the scalar
/// form of one value agree to the bit. About 4x cheaper than <see cref="Vector512.Exp(Vector512{float})"/>, which
/// works in double.
/// </summary>
internal static class CpuExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float Overflow = 88.7228394f;
    private const float Underflow = -103.972084f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /// <summary>e^x.</summary>
    public static float Exp(float x)
    {
        if (float.IsNaN(x))
            return x;
        if (x > Overflow)
            return float.PositiveInfinity;
        if (x < Underflow)
            return 0f;
        float n = MathF.Round(x * Log2E, MidpointRounding.ToEven);
        float r = x - n * Ln2Hi - n * Ln2Lo;
        float z = r * r;
        float y = (((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5) * z + r + 1f;
        int k = (int)n, k1 = k >> 1;
        return y * BitConverter.Int32BitsToSingle((k1 + 127) << 23) * BitConverter.Int32BitsToSingle((k - k1 + 127) << 23);
    }

    /// <summary>e^x lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var c = Vector512.Min(Vector512.Max(x, Vector512.Create(Underflow)), Vector512.Create(Overflow));
        var n = Vector512.Round(c * Log2E);
        var r = c - n * Ln2Hi - n * Ln2Lo;
        var z = r * r;
        var y = (((((Vector512.Create(P0) * r + Vector512.Create(P1)) * r + Vector512.Create(P2)) * r + Vector512.Create(P3)) * r
                  + Vector512.Create(P4)) * r + Vector512.Create(P5)) * z + r + Vector512<float>.One;
        var k = Vector512.ConvertToInt32(n);
        var k1 = Vector512.ShiftRightArithmetic(k, 1);
        var bias = Vector512.Create(127);
        var e = y * Vector512.ShiftLeft(k1 + bias, 23).AsSingle() * Vector512.ShiftLeft(k - k1 + bias, 23).AsSingle();
        e = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(Overflow)), Vector512.Create(float.PositiveInfinity), e);
        e = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Underflow)), Vector512<float>.Zero, e);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), e, x);
    }

    /// <summary>
    /// e^x for x in [-87, 0] (the caller clamps; NaN is not handled): the same reduction and polynomial with fused
    /// multiply-adds and one exponent factor, about half the operations of <see cref="Exp(Vector512{float})"/> and
    /// within 2 ulp of exp, but not its bits: for maps that owe no bit agreement to a scalar form (GELU's).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpNonPositive(Vector512<float> x)
    {
        var n = Vector512.Round(x * Log2E);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P2));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P3));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P4));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P5));
        y = Vector512.FusedMultiplyAdd(y, r * r, r + Vector512<float>.One);
        return y * Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
    }

    /// <summary>ln 2^-126: below it <see cref="ExpNonPositive(Vector512{float})"/> would not give a normal float.</summary>
    private const float NormalFloor = -87.33654f;

    /// <summary>e^x for any x &lt;= 0 (-infinity included): <see cref="ExpNonPositive(Vector512{float})"/>, zero below
    /// ln 2^-126; NaN stays NaN. For a sigmoid's e^-|x| and a softmax's e^(x - max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpNonPositiveOrZero(Vector512<float> x) =>
        Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(NormalFloor)), Vector512<float>.Zero, ExpNonPositive(x));

    /// <summary>e^x for any x &lt;= 0, eight lanes (see the sixteen-lane form).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpNonPositiveOrZero(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(NormalFloor)), Vector256<float>.Zero, ExpNonPositive(x));

    /// <summary>e^x for any x &lt;= 0, one lane: the same bits as each lane of the vector forms.</summary>
    public static float ExpNonPositiveOrZero(float x) => x < NormalFloor ? 0f : ExpNonPositive(x);

    /// <summary>e^x for x in [-87, 0], one lane: the operations of the vector forms in the same order, so the same
    /// bits as each of their lanes.</summary>
    public static float ExpNonPositive(float x)
    {
        float n = MathF.Round(x * Log2E, MidpointRounding.ToEven);
        float r = MathF.FusedMultiplyAdd(n, -Ln2Hi, x);
        r = MathF.FusedMultiplyAdd(n, -Ln2Lo, r);
        float y = MathF.FusedMultiplyAdd(P0, r, P1);
        y = MathF.FusedMultiplyAdd(y, r, P2);
        y = MathF.FusedMultiplyAdd(y, r, P3);
        y = MathF.FusedMultiplyAdd(y, r, P4);
        y = MathF.FusedMultiplyAdd(y, r, P5);
        y = MathF.FusedMultiplyAdd(y, r * r, r + 1f);
        return y * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }

    /// <summary>e^x for x in [-87, 0], eight lanes (see the sixteen-lane form).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpNonPositive(Vector256<float> x)
    {
        var n = Vector256.Round(x * Log2E);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P2));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P3));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P4));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P5));
        y = Vector256.FusedMultiplyAdd(y, r * r, r + Vector256<float>.One);
        return y * Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
    }

    /// <summary>e^x lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var c = Vector256.Min(Vector256.Max(x, Vector256.Create(Underflow)), Vector256.Create(Overflow));
        var n = Vector256.Round(c * Log2E);
        var r = c - n * Ln2Hi - n * Ln2Lo;
        var z = r * r;
        var y = (((((Vector256.Create(P0) * r + Vector256.Create(P1)) * r + Vector256.Create(P2)) * r + Vector256.Create(P3)) * r
                  + Vector256.Create(P4)) * r + Vector256.Create(P5)) * z + r + Vector256<float>.One;
        var k = Vector256.ConvertToInt32(n);
        var k1 = Vector256.ShiftRightArithmetic(k, 1);
        var bias = Vector256.Create(127);
        var e = y * Vector256.ShiftLeft(k1 + bias, 23).AsSingle() * Vector256.ShiftLeft(k - k1 + bias, 23).AsSingle();
        e = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(Overflow)), Vector256.Create(float.PositiveInfinity), e);
        e = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Underflow)), Vector256<float>.Zero, e);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), e, x);
    }
}
