namespace CamEngine.Methods;

/// <summary>
/// Projection of per-channel maps on their first principal component, as pytorch-grad-cam's
/// <c>get_2d_projection</c> does for <c>eigen_smooth</c>: X = the (h*w, C) matrix of positions by channels,
/// centred per channel (column means removed); v = the first right singular vector of X; the map is X v.
/// <para>v is found by power iteration on the smaller Gram matrix (X^T X, C x C, or X X^T, hw x hw, whose top
/// eigenvector u gives X v = sqrt(lambda) u), in double precision. The sign of a singular vector is arbitrary
/// (numpy's depends on LAPACK); we fix it so that the projection correlates positively with the uncentred
/// channel sum (the map without smoothing), so a smoothed map highlights the same regions.</para>
/// </summary>
internal static class PrincipalComponent
{
    /// <summary>Max power iterations; convergence is usually reached in far fewer.</summary>
    private const int MaxIterations = 5000;

    /// <summary>
    /// X v for <paramref name="maps"/> laid out (C, plane) row-major: one value per position (plane).
    /// </summary>
    public static float[] Project(ReadOnlySpan<float> maps, int channels, int plane)
    {
        if (channels <= 0 || plane <= 0 || maps.Length != channels * plane)
            throw new ArgumentException($"expected {channels} x {plane} values, got {maps.Length}", nameof(maps));
        // x[j, k] = maps[k, j] - mean_j maps[k, .]
        var x = new double[plane, channels];
        var sum = new double[plane];
        for (int k = 0; k < channels; k++)
        {
            double mean = 0;
            for (int j = 0; j < plane; j++)
                mean += maps[k * plane + j];
            mean /= plane;
            for (int j = 0; j < plane; j++)
            {
                x[j, k] = maps[k * plane + j] - mean;
                sum[j] += maps[k * plane + j];
            }
        }
        var projection = new double[plane];
        if (channels <= plane)
        {
            // Gram = X^T X (C x C); v = its top eigenvector; projection = X v.
            var gram = new double[channels, channels];
            for (int a = 0; a < channels; a++)
            {
                for (int b = a; b < channels; b++)
                {
                    double s = 0;
                    for (int j = 0; j < plane; j++)
                        s += x[j, a] * x[j, b];
                    gram[a, b] = gram[b, a] = s;
                }
            }
            var v = TopEigenvector(gram);
            for (int j = 0; j < plane; j++)
            {
                double s = 0;
                for (int k = 0; k < channels; k++)
                    s += x[j, k] * v[k];
                projection[j] = s;
            }
        }
        else
        {
            // Gram = X X^T (hw x hw); u = its top eigenvector, eigenvalue lambda; X v = sqrt(lambda) u.
            var gram = new double[plane, plane];
            for (int a = 0; a < plane; a++)
            {
                for (int b = a; b < plane; b++)
                {
                    double s = 0;
                    for (int k = 0; k < channels; k++)
                        s += x[a, k] * x[b, k];
                    gram[a, b] = gram[b, a] = s;
                }
            }
            var u = TopEigenvector(gram);
            double lambda = RayleighQuotient(gram, u);
            double sigma = Math.Sqrt(Math.Max(lambda, 0));
            for (int j = 0; j < plane; j++)
                projection[j] = sigma * u[j];
        }
        double corr = 0;
        for (int j = 0; j < plane; j++)
            corr += projection[j] * sum[j];
        double sign = corr < 0 ? -1 : 1;
        var result = new float[plane];
        for (int j = 0; j < plane; j++)
            result[j] = (float)(sign * projection[j]);
        return result;
    }

    /// <summary>Unit eigenvector of the largest eigenvalue of a symmetric positive semi-definite matrix, by power
    /// iteration from the column of largest norm (never orthogonal to the top eigenvector unless the matrix is 0).</summary>
    public static double[] TopEigenvector(double[,] m)
    {
        ArgumentNullException.ThrowIfNull(m);
        int n = m.GetLength(0);
        if (n != m.GetLength(1))
            throw new ArgumentException("the matrix must be square", nameof(m));
        int start = 0;
        double best = -1;
        for (int b = 0; b < n; b++)
        {
            double s = 0;
            for (int a = 0; a < n; a++)
                s += m[a, b] * m[a, b];
            if (s > best)
            {
                best = s;
                start = b;
            }
        }
        var v = new double[n];
        if (best <= 0)
        {
            v[0] = 1;
            return v;
        }
        for (int a = 0; a < n; a++)
            v[a] = m[a, start];
        Normalize(v);
        var next = new double[n];
        for (int it = 0; it < MaxIterations; it++)
        {
            for (int a = 0; a < n; a++)
            {
                double s = 0;
                for (int b = 0; b < n; b++)
                    s += m[a, b] * v[b];
                next[a] = s;
            }
            double norm = Normalize(next);
            if (norm == 0)
                break;
            double diff = 0;
            for (int a = 0; a < n; a++)
                diff = Math.Max(diff, Math.Abs(next[a] - v[a]));
            (v, next) = (next, v);
            if (diff < 1e-13)
                break;
        }
        return v;
    }

    private static double RayleighQuotient(double[,] m, double[] v)
    {
        int n = v.Length;
        double s = 0;
        for (int a = 0; a < n; a++)
        {
            double r = 0;
            for (int b = 0; b < n; b++)
                r += m[a, b] * v[b];
            s += v[a] * r;
        }
        return s;
    }

    private static double Normalize(double[] v)
    {
        double s = 0;
        foreach (double t in v)
            s += t * t;
        double norm = Math.Sqrt(s);
        if (norm > 0)
        {
            for (int a = 0; a < v.Length; a++)
                v[a] /= norm;
        }
        return norm;
    }
}
