namespace CamEngine.Metrics;

/// <summary>
/// Preconditioned conjugate gradients (Hestenes and Stiefel 1952; Saad, "Iterative Methods for Sparse Linear
/// Systems", algorithm 9.1) for symmetric positive definite systems M x = b, in double precision. Several
/// right-hand sides of the same M can be solved together: vectors then hold them interleaved (entry i of system
/// s at <c>i * count + s</c>), each system keeps its own step sizes and stops on its own, and the product and the
/// preconditioner pass over M's entries once for all of them.
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
        }, b, x, 1, tolerance, maxIterations);

    /// <summary>
    /// Solves M x_s = b_s from x_s = 0 for <paramref name="count"/> interleaved systems (see the type's remarks)
    /// with the preconditioner B: <paramref name="multiply"/>(v, result) writes M v_s and
    /// <paramref name="precondition"/>(r, z) writes z_s = B r_s for every system s, B symmetric positive definite
    /// (an approximation of M^-1). System s stops when |r_s| &lt;= <paramref name="tolerance"/> |b_s| on its true
    /// (unpreconditioned) residual, the test of the Jacobi overload, so the preconditioner changes the number of
    /// steps, not the accuracy; a stopped system's x_s is left as it is while the others go on. Throws when a
    /// system takes more than <paramref name="maxIterations"/> steps. Returns the largest number of iterations.
    /// </summary>
    public static int Solve(
        Action<double[], double[]> multiply, Action<double[], double[]> precondition, double[] b, double[] x,
        int count, double tolerance, int maxIterations)
    {
        int length = b.Length;
        if (count < 1 || length % count != 0 || x.Length != length)
            throw new ArgumentException($"{length} values do not hold {count} systems");
        Array.Clear(x);
        var bNorm = Norms(b, count);
        var active = new bool[count];
        int running = 0;
        for (int s = 0; s < count; s++)
        {
            active[s] = bNorm[s] > 0;
            running += active[s] ? 1 : 0;
        }
        if (running == 0)
            return 0;
        var r = (double[])b.Clone();
        var z = new double[length];
        var p = new double[length];
        var mp = new double[length];
        precondition(r, z);
        Array.Copy(z, p, length);
        var rz = Dots(r, z, count);
        var alpha = new double[count];
        var beta = new double[count];
        for (int it = 1; it <= maxIterations; it++)
        {
            multiply(p, mp);
            var pmp = Dots(p, mp, count);
            for (int s = 0; s < count; s++)
            {
                alpha[s] = 0;
                if (!active[s])
                    continue;
                if (!(pmp[s] > 0))
                    throw new CamEngineException($"conjugate gradients: the system is not positive definite (p.Mp = {pmp[s]})");
                alpha[s] = rz[s] / pmp[s];
            }
            for (int i = 0; i < length; i += count)
            {
                for (int s = 0; s < count; s++)
                {
                    x[i + s] += alpha[s] * p[i + s];
                    r[i + s] -= alpha[s] * mp[i + s];
                }
            }
            var rNorm = Norms(r, count);
            for (int s = 0; s < count; s++)
            {
                if (active[s] && rNorm[s] <= tolerance * bNorm[s])
                {
                    active[s] = false;
                    running--;
                }
            }
            if (running == 0)
                return it;
            precondition(r, z);
            var next = Dots(r, z, count);
            for (int s = 0; s < count; s++)
            {
                beta[s] = active[s] ? next[s] / rz[s] : 0;
                rz[s] = next[s];
            }
            for (int i = 0; i < length; i += count)
            {
                for (int s = 0; s < count; s++)
                {
                    if (active[s])
                        p[i + s] = z[i + s] + beta[s] * p[i + s];
                }
            }
        }
        throw new CamEngineException(
            $"conjugate gradients did not reach a relative residual of {tolerance:G3} in {maxIterations} iterations");
    }

    private static double[] Dots(double[] a, double[] b, int count)
    {
        var sums = new double[count];
        for (int i = 0; i < a.Length; i += count)
        {
            for (int s = 0; s < count; s++)
                sums[s] += a[i + s] * b[i + s];
        }
        return sums;
    }

    private static double[] Norms(double[] a, int count)
    {
        var norms = Dots(a, a, count);
        for (int s = 0; s < count; s++)
            norms[s] = Math.Sqrt(norms[s]);
        return norms;
    }
}
