namespace CamEngine.Methods;

/// <summary>
/// Non-negative matrix factorization X ~ W H (X: m x n, W: m x k, H: k x n, all >= 0) by coordinate descent on the
/// Frobenius loss, scikit-learn's <c>NMF(solver='cd')</c> without regularization or shuffling: each iteration
/// updates every column t of W, row by row, <c>W[i,t] = max(0, W[i,t] - g / (H H^T)[t,t])</c> with
/// <c>g = (W H H^T - X H^T)[i,t]</c>, then H the same way on the transposed problem; it stops when the summed
/// projected gradient falls to <c>tol</c> times the first iteration's, or after <c>maxIterations</c>.
/// </summary>
internal static class Nmf
{
    /// <summary>Factorizes <paramref name="x"/> (m x n, row-major) from the starting <paramref name="w"/> (m x k)
    /// and <paramref name="h"/> (k x n), updated in place; returns the number of iterations run.</summary>
    public static int Factorize(double[] x, int m, int n, double[] w, double[] h, int k, int maxIterations, double tol)
    {
        var xt = new double[n * m];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
                xt[j * m + i] = x[i * n + j];
        }
        var ht = new double[n * k];
        for (int t = 0; t < k; t++)
        {
            for (int j = 0; j < n; j++)
                ht[j * k + t] = h[t * n + j];
        }
        double first = 0;
        int iteration = 0;
        while (iteration < maxIterations)
        {
            iteration++;
            double violation = Update(x, m, n, w, ht, k) + Update(xt, n, m, ht, w, k);
            if (iteration == 1)
                first = violation;
            if (first == 0 || violation / first <= tol)
                break;
        }
        for (int t = 0; t < k; t++)
        {
            for (int j = 0; j < n; j++)
                h[t * n + j] = ht[j * k + t];
        }
        return iteration;
    }

    // One sweep over the columns of w (rows x k) for x (rows x cols) ~ w ht^T with ht (cols x k) fixed; returns the
    // summed absolute projected gradient.
    private static double Update(double[] x, int rows, int cols, double[] w, double[] ht, int k)
    {
        var hht = new double[k * k];
        for (int a = 0; a < k; a++)
        {
            for (int b = 0; b < k; b++)
            {
                double s = 0;
                for (int j = 0; j < cols; j++)
                    s += ht[j * k + a] * ht[j * k + b];
                hht[a * k + b] = s;
            }
        }
        var xht = new double[rows * k];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                double v = x[i * cols + j];
                if (v == 0)
                    continue;
                for (int t = 0; t < k; t++)
                    xht[i * k + t] += v * ht[j * k + t];
            }
        }
        double violation = 0;
        for (int t = 0; t < k; t++)
        {
            double hess = hht[t * k + t];
            for (int i = 0; i < rows; i++)
            {
                double grad = -xht[i * k + t];
                for (int r = 0; r < k; r++)
                    grad += hht[t * k + r] * w[i * k + r];
                double pg = w[i * k + t] == 0 ? Math.Min(0, grad) : grad;
                violation += Math.Abs(pg);
                if (hess != 0)
                    w[i * k + t] = Math.Max(w[i * k + t] - grad / hess, 0);
            }
        }
        return violation;
    }
}
