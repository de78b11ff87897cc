namespace CamEngine.Methods;

/// <summary>
/// The leading eigenpair of a small symmetric matrix in double precision, for the eigen and kernel-PCA CAMs:
/// cyclic Jacobi rotations up to <see cref="JacobiLimit"/> rows (exact to rounding), power iteration above.
/// </summary>
internal static class SymmetricEigen
{
    public const int JacobiLimit = 192;

    /// <summary>The largest eigenvalue of the (d, d) row-major symmetric matrix <paramref name="m"/> and its
    /// unit eigenvector, with the sign chosen so that the entry of largest magnitude is positive
    /// (scikit-learn's <c>svd_flip</c> rule).</summary>
    public static (double Value, double[] Vector) Leading(double[] m, int d)
    {
        var (value, v) = d <= JacobiLimit ? Jacobi(m, d) : Power(m, d);
        int arg = 0;
        for (int i = 1; i < d; i++)
        {
            if (Math.Abs(v[i]) > Math.Abs(v[arg]))
                arg = i;
        }
        if (v[arg] < 0)
        {
            for (int i = 0; i < d; i++)
                v[i] = -v[i];
        }
        return (value, v);
    }

    private static (double, double[]) Jacobi(double[] input, int d)
    {
        var a = (double[])input.Clone();
        var v = new double[d * d];
        for (int i = 0; i < d; i++)
            v[i * d + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int p = 0; p < d; p++)
            {
                diag += a[p * d + p] * a[p * d + p];
                for (int q = p + 1; q < d; q++)
                    off += a[p * d + q] * a[p * d + q];
            }
            if (off <= 1e-30 * Math.Max(diag, 1e-300))
                break;
            for (int p = 0; p < d - 1; p++)
            {
                for (int q = p + 1; q < d; q++)
                {
                    double apq = a[p * d + q];
                    if (apq == 0)
                        continue;
                    // Rotation that zeroes a[p,q]: tan(2 theta) = 2 a_pq / (a_qq - a_pp).
                    double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                        t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < d; k++)
                    {
                        double akp = a[k * d + p], akq = a[k * d + q];
                        a[k * d + p] = c * akp - s * akq;
                        a[k * d + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < d; k++)
                    {
                        double apk = a[p * d + k], aqk = a[q * d + k];
                        a[p * d + k] = c * apk - s * aqk;
                        a[q * d + k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < d; k++)
                    {
                        double vkp = v[k * d + p], vkq = v[k * d + q];
                        v[k * d + p] = c * vkp - s * vkq;
                        v[k * d + q] = s * vkp + c * vkq;
                    }
                }
            }
        }
        int best = 0;
        for (int i = 1; i < d; i++)
        {
            if (a[i * d + i] > a[best * d + best])
                best = i;
        }
        var vec = new double[d];
        for (int k = 0; k < d; k++)
            vec[k] = v[k * d + best];
        return (a[best * d + best], vec);
    }

    private static (double, double[]) Power(double[] m, int d)
    {
        // Power iteration finds the eigenvalue largest in magnitude; when that one is negative (indefinite
        // kernels), shift the spectrum by it so that the largest eigenvalue dominates.
        var (lambda, v) = Iterate(m, d, 0);
        return lambda >= 0 ? (lambda, v) : Iterate(m, d, -lambda);
    }

    private static (double, double[]) Iterate(double[] m, int d, double shift)
    {
        var v = new double[d];
        for (int i = 0; i < d; i++)
            v[i] = 1.0 / Math.Sqrt(d) * (1 + 1e-3 * Math.Sin(i + 1));
        var w = new double[d];
        for (int iter = 0; iter < 5000; iter++)
        {
            MultiplyShifted(m, d, shift, v, w);
            double norm = Math.Sqrt(w.Sum(x => x * x));
            if (norm == 0)
                break;
            double change = 0;
            for (int i = 0; i < d; i++)
            {
                double next = w[i] / norm;
                change += (next - v[i]) * (next - v[i]);
                v[i] = next;
            }
            if (change < 1e-26)
                break;
        }
        MultiplyShifted(m, d, 0, v, w);
        double rayleigh = 0;
        for (int i = 0; i < d; i++)
            rayleigh += v[i] * w[i];
        return (rayleigh, v);
    }

    private static void MultiplyShifted(double[] m, int d, double shift, double[] v, double[] w)
    {
        for (int i = 0; i < d; i++)
        {
            double s = shift * v[i];
            for (int j = 0; j < d; j++)
                s += m[i * d + j] * v[j];
            w[i] = s;
        }
    }
}
