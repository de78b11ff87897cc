using CamEngine.Autodiff;

namespace CamEngine.Tensors;

/// <summary>
/// The numerically stable softmax on the host, in double, written once:
/// <code>p_j = exp(z_j - max z) / sum_l exp(z_l - max z)</code>
/// Subtracting the maximum keeps every exponent at or below 0, so nothing overflows and the largest term is 1
/// (the sum is at least 1). Callers: class probabilities, metrics, Score-CAM weights, losses, the softmax
/// score's gradient and the softmax op's jets (<see cref="Autodiff.Jet3"/> version in <c>Graph/Ops/Softmax.cs</c>
/// follows the same two steps). The device kernels (<c>kernels/Softmax.cs</c>) use the same formula.
/// </summary>
internal static class StableSoftmax
{
    /// <summary>Writes softmax(<paramref name="z"/>) into <paramref name="p"/> (same length, at least 1).</summary>
    public static void Probabilities(ReadOnlySpan<float> z, Span<double> p)
    {
        Check(z.Length, p.Length);
        double max = double.NegativeInfinity;
        foreach (float v in z)
            max = Math.Max(max, v);
        double sum = 0;
        for (int j = 0; j < z.Length; j++)
            sum += p[j] = Math.Exp(z[j] - max);
        for (int j = 0; j < z.Length; j++)
            p[j] /= sum;
    }

    /// <summary>Writes softmax(<paramref name="z"/>) into <paramref name="p"/> (same length, at least 1).</summary>
    public static void Probabilities(ReadOnlySpan<double> z, Span<double> p)
    {
        Check(z.Length, p.Length);
        double max = double.NegativeInfinity;
        foreach (double v in z)
            max = Math.Max(max, v);
        double sum = 0;
        for (int j = 0; j < z.Length; j++)
            sum += p[j] = Math.Exp(z[j] - max);
        for (int j = 0; j < z.Length; j++)
            p[j] /= sum;
    }

    /// <summary>softmax(<paramref name="z"/>) as a new array.</summary>
    public static double[] Probabilities(ReadOnlySpan<float> z)
    {
        var p = new double[z.Length];
        Probabilities(z, p);
        return p;
    }

    /// <summary>softmax(<paramref name="z"/>) as a new array.</summary>
    public static double[] Probabilities(ReadOnlySpan<double> z)
    {
        var p = new double[z.Length];
        Probabilities(z, p);
        return p;
    }

    /// <summary><c>log sum_j exp(z_j)</c> = max + log sum exp(z_j - max); log p_c = z_c - LogSumExp(z).</summary>
    public static double LogSumExp(ReadOnlySpan<float> z)
    {
        Check(z.Length, z.Length);
        double max = double.NegativeInfinity;
        foreach (float v in z)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in z)
            sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    /// <summary>
    /// softmax on Taylor jets (orders 0..3, <see cref="Jet3"/>): the same two steps, shifting by the order-0
    /// maximum, a constant, so the higher orders pass unchanged through the shift.
    /// </summary>
    public static void Probabilities(ReadOnlySpan<Jet3> z, Span<Jet3> p)
    {
        Check(z.Length, p.Length);
        double max = double.NegativeInfinity;
        foreach (var v in z)
            max = Math.Max(max, v.C0);
        var sum = Jet3.Constant(0);
        for (int j = 0; j < z.Length; j++)
            sum += p[j] = Jet3.Exp(z[j] - Jet3.Constant(max));
        for (int j = 0; j < z.Length; j++)
            p[j] /= sum;
    }

    /// <summary><c>log sum_j exp(z_j)</c> on jets, shifted by the order-0 maximum.</summary>
    public static Jet3 LogSumExp(ReadOnlySpan<Jet3> z)
    {
        Check(z.Length, z.Length);
        double max = double.NegativeInfinity;
        foreach (var v in z)
            max = Math.Max(max, v.C0);
        var sum = Jet3.Constant(0);
        foreach (var v in z)
            sum += Jet3.Exp(v - Jet3.Constant(max));
        return Jet3.Log(sum) + Jet3.Constant(max);
    }

    private static void Check(int n, int m)
    {
        if (n < 1)
            throw new ArgumentException("softmax needs at least one value");
        if (m != n)
            throw new ArgumentException($"softmax of {n} values into {m}");
    }
}
