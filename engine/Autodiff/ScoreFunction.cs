using CamEngine.Tensors;

namespace CamEngine.Autodiff;

/// <summary>
/// A scalar target s = T(z) of one output row z (the logits, an embedding, or a flattened (K, H, W) map),
/// evaluated on jets so that the engine's forward-mode passes give exact second and third derivatives of the
/// target, not just of the logits. The same object is what the explanation methods explain (every
/// <see cref="Methods.Target"/> row holds one): its float <see cref="Value(ReadOnlySpan{float})"/> and
/// <see cref="Gradient(ReadOnlySpan{float}, Span{float})"/> give the score and the reverse pass's seed.
/// </summary>
internal abstract class ScoreFunction
{
    /// <summary>True when T is linear in z (its second and third derivatives vanish).</summary>
    public abstract bool IsLinear { get; }

    /// <summary>T applied to a row of jets (z_j(t) for each output j).</summary>
    public abstract Jet3 Evaluate(ReadOnlySpan<Jet3> z);

    /// <summary>The value T(z).</summary>
    public double Value(ReadOnlySpan<double> z) => Evaluate(Constants(z)).C0;

    /// <summary>T(z) of a float output row (computed in double). The built-in scores override it with their
    /// closed form.</summary>
    public virtual float Value(ReadOnlySpan<float> z) => (float)Value(Widen(z));

    /// <summary>dT/dz of a float output row, written over <paramref name="gradient"/> (same length as
    /// <paramref name="z"/>). By default from one jet per output (K evaluations); the built-in scores override it
    /// with their closed form.</summary>
    public virtual void Gradient(ReadOnlySpan<float> z, Span<float> gradient)
    {
        var g = Gradient(Widen(z));
        for (int j = 0; j < g.Length; j++)
            gradient[j] = (float)g[j];
    }

    private static double[] Widen(ReadOnlySpan<float> z)
    {
        var d = new double[z.Length];
        for (int j = 0; j < z.Length; j++)
            d[j] = z[j];
        return d;
    }

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

    /// <summary>The dot product <c>z . r</c> with a reference embedding r, or the cosine
    /// <c>z . r / (|z| |r|)</c> when <paramref name="cosine"/> (0 for a zero z).</summary>
    public static ScoreFunction Similarity(float[] reference, bool cosine) =>
        new SimilarityScore((float[])reference.Clone(), cosine);

    /// <summary>For an output row laid out (K, H, W): <c>sum_hw mask[h,w] z[c, h, w]</c>.</summary>
    public static ScoreFunction MaskedSum(int c, float[] mask) => new MaskScore(c, (float[])mask.Clone());

    private sealed class LogitScore(int c) : ScoreFunction
    {
        public override bool IsLinear => true;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z) => z[c];

        public override float Value(ReadOnlySpan<float> z) => z[c];

        public override void Gradient(ReadOnlySpan<float> z, Span<float> gradient)
        {
            gradient.Clear();
            gradient[c] = 1f;
        }
    }

    // p = softmax(z) with the max subtracted; d p_c / d z_j = p_c (delta_cj - p_j), d log p_c / d z_j = delta_cj - p_j.
    private sealed class SoftmaxScore(int c, bool log) : ScoreFunction
    {
        public override bool IsLinear => false;

        private static double[] Probabilities(ReadOnlySpan<float> z) => StableSoftmax.Probabilities(z);

        public override float Value(ReadOnlySpan<float> z)
        {
            var p = Probabilities(z);
            return (float)(log ? Math.Log(p[c]) : p[c]);
        }

        public override void Gradient(ReadOnlySpan<float> z, Span<float> gradient)
        {
            var p = Probabilities(z);
            double scale = log ? 1 : p[c];
            for (int j = 0; j < p.Length; j++)
                gradient[j] = (float)(scale * ((j == c ? 1 : 0) - p[j]));
        }

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z)
        {
            if (log)
                return z[c] - StableSoftmax.LogSumExp(z);
            var p = new Jet3[z.Length];
            StableSoftmax.Probabilities(z, p);
            return p[c];
        }
    }

    private sealed class ExpScore(ScoreFunction inner) : ScoreFunction
    {
        public override bool IsLinear => false;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z) => Jet3.Exp(inner.Evaluate(z));
    }

    // dot: s = z.r, ds/dz = r.  cosine: s = z.r / (|z||r|), ds/dz = r / (|z||r|) - s z / |z|^2.
    private sealed class SimilarityScore(float[] reference, bool cosine) : ScoreFunction
    {
        public override bool IsLinear => !cosine;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z)
        {
            var dot = Jet3.Constant(0);
            var zz = Jet3.Constant(0);
            double rr = 0;
            for (int j = 0; j < z.Length; j++)
            {
                dot += reference[j] * z[j];
                zz += z[j] * z[j];
                rr += (double)reference[j] * reference[j];
            }
            if (!cosine)
                return dot;
            if (zz.C0 <= 0 || rr <= 0)
                return Jet3.Constant(0);
            // 1 / |z| = exp(-log(|z|^2) / 2)
            return 1 / Math.Sqrt(rr) * (dot * Jet3.Exp(-0.5 * Jet3.Log(zz)));
        }

        private (double Dot, double NormZ, double NormR) Parts(ReadOnlySpan<float> z)
        {
            double dot = 0, zz = 0, rr = 0;
            for (int j = 0; j < z.Length; j++)
            {
                dot += (double)z[j] * reference[j];
                zz += (double)z[j] * z[j];
                rr += (double)reference[j] * reference[j];
            }
            return (dot, Math.Sqrt(zz), Math.Sqrt(rr));
        }

        public override float Value(ReadOnlySpan<float> z)
        {
            var (dot, nz, nr) = Parts(z);
            return (float)(cosine ? dot / Math.Max(nz * nr, 1e-12) : dot);
        }

        public override void Gradient(ReadOnlySpan<float> z, Span<float> gradient)
        {
            if (!cosine)
            {
                reference.AsSpan().CopyTo(gradient);
                return;
            }
            var (dot, nz, nr) = Parts(z);
            double denom = Math.Max(nz * nr, 1e-12), s = dot / denom, zz = Math.Max(nz * nz, 1e-24);
            for (int j = 0; j < z.Length; j++)
                gradient[j] = (float)(reference[j] / denom - s * z[j] / zz);
        }
    }

    // Output row laid out (K, H, W); the score reads plane c only.
    private sealed class MaskScore(int c, float[] mask) : ScoreFunction
    {
        public override bool IsLinear => true;

        public override Jet3 Evaluate(ReadOnlySpan<Jet3> z)
        {
            var plane = z.Slice(c * mask.Length, mask.Length);
            var s = Jet3.Constant(0);
            for (int j = 0; j < mask.Length; j++)
                s += mask[j] * plane[j];
            return s;
        }

        public override float Value(ReadOnlySpan<float> z)
        {
            var plane = z.Slice(c * mask.Length, mask.Length);
            double s = 0;
            for (int j = 0; j < mask.Length; j++)
                s += (double)mask[j] * plane[j];
            return (float)s;
        }

        public override void Gradient(ReadOnlySpan<float> z, Span<float> gradient)
        {
            gradient.Clear();
            mask.AsSpan().CopyTo(gradient.Slice(c * mask.Length, mask.Length));
        }
    }
}
