namespace CamEngine.Metrics;

/// <summary>
/// Preconditioned conjugate gradients (Hestenes and Stiefel 1952; Saad, "Iterative Methods for Sparse Linear
/// Systems", algorithm 9.1) for a symmetric positive definite system M x = b, in double precision.
/// </summary>
internal static class ConjugateGradient
{
    /// <summary>
    /// Solves M x = b from x = 0. <paramref name="multiply"/>(v, result) writes M v; <paramref name="diagonal"/>
    /// is M's diagonal (all positive). Stops when |r| &lt;= <paramref name="tolerance"/> |b|; throws when that
    /// takes more than <paramref name="maxIterations"/> steps (M not positive definite). Returns the iterations.
    /// </summary>
    public static int Solve(
        Action<double[], double[]> multiply, double[] diagonal, double[] b, double[] x, double tolerance,
        int maxIterations) =>
        Solve(multiply, (r, z) =>
        {
            for (int i = 0; i < r.Length; i++)
                z[i] = r[i] / diagonal[i];
        }, b, x, tolerance, maxIterations);

    /// <summary>
    /// Solves M x = b from x = 0 with the preconditioner B: <paramref name="precondition"/>(r, z) writes z = B r,
    /// B symmetric positive definite (an approximation of M^-1). The stopping test is the one of the Jacobi
    /// overload, |r| &lt;= <paramref name="tolerance"/> |b| on the true (unpreconditioned) residual, so the
    /// preconditioner changes the number of steps, not the accuracy. Returns the iterations.
    /// </summary>
    public static int Solve(
        Action<double[], double[]> multiply, Action<double[], double[]> precondition, double[] b, double[] x,
        double tolerance, int maxIterations)
    {
        int n = b.Length;
        Array.Clear(x);
        double bNorm = Math.Sqrt(Dot(b, b));
        if (bNorm == 0)
            return 0;
        var r = (double[])b.Clone();
        var z = new double[n];
        var p = new double[n];
        var mp = new double[n];
        precondition(r, z);
        Array.Copy(z, p, n);
        double rz = Dot(r, z);
        for (int it = 1; it <= maxIterations; it++)
        {
            multiply(p, mp);
            double pmp = Dot(p, mp);
            if (!(pmp > 0))
                throw new CamEngineException($"conjugate gradients: the system is not positive definite (p.Mp = {pmp})");
            double alpha = rz / pmp;
            for (int i = 0; i < n; i++)
            {
                x[i] += alpha * p[i];
                r[i] -= alpha * mp[i];
            }
            if (Math.Sqrt(Dot(r, r)) <= tolerance * bNorm)
                return it;
            precondition(r, z);
            double next = Dot(r, z);
            double beta = next / rz;
            rz = next;
            for (int i = 0; i < n; i++)
                p[i] = z[i] + beta * p[i];
        }
        throw new CamEngineException(
            $"conjugate gradients did not reach a relative residual of {tolerance:G3} in {maxIterations} iterations");
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += a[i] * b[i];
        return s;
    }
}
