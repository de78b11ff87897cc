namespace CamEngine.Autodiff;

/// <summary>
/// A scalar target s = T(z) of one output row z (the logits or embedding), evaluated on jets so that the
/// engine's forward-mode passes give exact second and third derivatives of the target, not just of the logits.
/// </summary>
public abstract class ScoreFunction
{
    /// <summary>True when T is linear in z (its second and third derivatives vanish).</summary>
    public abstract bool IsLinear { get; }

    /// <summary>T applied to a row of jets (z_j(t) for each output j).</summary>
    public abstract Jet3 Evaluate(ReadOnlySpan<Jet3> z);

    /// <summary>The value T(z).</summary>
    public double Value(ReadOnlySpan<double> z) => Evaluate(Constants(z)).C0;

    /// <summary>dT/dz, from one jet per direction e_j.</summary>
    public double[] Gradient(ReadOnlySpan<double> z)
    {
        var jets = Constants(z);
        var g = new double[z.Length];
        for (int j = 0; j < z.Length; j++)
        {
            jets[j] = jets[j] with { C1 = 1 };
            g[j] = Evaluate(jets).C1;
            jets[j] = jets[j] with { C1 = 0 };
        }
        return g;
    }

    /// <summary>The Hessian of T times <paramref name="v"/>: d/dt grad T(z + t v) at t = 0.</summary>
    public double[] HessianVector(ReadOnlySpan<double> z, ReadOnlySpan<double> v)
    {
        // (H v)_j = d^2 T / dt ds at z + t v + s e_j: the mixed coefficient of (t + s)^2 minus the pure ones.
        // With u = v + e_j: T(z + t u) = ... + t^2 (u^T H u) / 2, and u^T H u = v^T H v + 2 (H v)_j + H_jj.
        var jets = Constants(z);
        double vHv = 2 * Along(jets, v, -1).C2;
        var r = new double[z.Length];
        for (int j = 0; j < z.Length; j++)
        {
            double uHu = 2 * Along(jets, v, j).C2;
            double hjj = 2 * Along(jets, default, j).C2;
            r[j] = (uHu - vHv - hjj) / 2;
        }
        return r;
    }

    private Jet3 Along(Jet3[] jets, ReadOnlySpan<double> v, int extra)
    {
        var path = new Jet3[jets.Length];
        for (int j = 0; j < jets.Length; j++)
            path[j] = jets[j] with { C1 = (v.IsEmpty ? 0 : v[j]) + (j == extra ? 1 : 0) };
        return Evaluate(path);
    }

    private static Jet3[] Constants(ReadOnlySpan<double> z)
    {
        var jets = new Jet3[z.Length];
        for (int j = 0; j < z.Length; j++)
            jets[j] = Jet3.Constant(z[j]);
        return jets;
    }

    /// <summary>The raw logit of class <paramref name="c"/>.</summary>
    public static ScoreFunction Logit(int c) => new LogitScore(c);

    /// <summary>The softmax probability of class <paramref name="c"/>.</summary>
    public static ScoreFunction SoftmaxProbability(int c) => new SoftmaxScore(c, log: false);

    /// <summary>The log-softmax of class <paramref name="c"/>.</summary>
    public static ScoreFunction LogSoftmax(int c) => new SoftmaxScore(c, log: true);

    /// <summary>exp of another score: Grad-CAM++'s Y = exp(S).</summary>
    public static ScoreFunction Exp(ScoreFunction inner) => new ExpScore(inner);

    private sealed class LogitScore(int c) : ScoreFunction
    {
        public override bool IsLinear => true;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z) => z[c];
    }

    private sealed class SoftmaxScore(int c, bool log) : ScoreFunction
    {
        public override bool IsLinear => false;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z)
        {
            double max = double.NegativeInfinity;
            foreach (var j in z)
                max = Math.Max(max, j.C0);
            var sum = Jet3.Constant(0);
            foreach (var j in z)
                sum += Jet3.Exp(j - Jet3.Constant(max));
            var shifted = z[c] - Jet3.Constant(max);
            return log ? shifted - Jet3.Log(sum) : Jet3.Exp(shifted) / sum;
        }
    }

    private sealed class ExpScore(ScoreFunction inner) : ScoreFunction
    {
        public override bool IsLinear => false;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z) => Jet3.Exp(inner.Evaluate(z));
    }
}
