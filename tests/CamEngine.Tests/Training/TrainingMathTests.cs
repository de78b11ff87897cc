using CamEngine.Training;
using NUnit.Framework;

namespace CamEngine.Tests.Training;

[TestFixture]
public sealed class TrainingMathTests
{
    [Test]
    public void Softmax_cross_entropy_gradient_matches_finite_differences()
    {
        var rng = new Random(5);
        var z = Enumerable.Range(0, 3 * 4).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        int[] y = [2, 0, 3];
        var g = new float[z.Length];
        var (loss, _) = SoftmaxCrossEntropy.Compute(z, y, g);
        // Hand check of one row: L = mean(logsumexp(z_i) - z_i[y_i]).
        double expected = 0;
        for (int i = 0; i < 3; i++)
        {
            var row = z.Skip(4 * i).Take(4).Select(v => (double)v).ToArray();
            expected += Math.Log(row.Sum(Math.Exp)) - row[y[i]];
        }
        Assert.That(loss, Is.EqualTo(expected / 3).Within(1e-9));
        const float h = 1e-3f;
        var scratch = new float[z.Length];
        for (int j = 0; j < z.Length; j++)
        {
            var zp = (float[])z.Clone();
            var zm = (float[])z.Clone();
            zp[j] += h;
            zm[j] -= h;
            double numeric = (SoftmaxCrossEntropy.Compute(zp, y, scratch).Loss - SoftmaxCrossEntropy.Compute(zm, y, scratch).Loss) / (2 * h);
            Assert.That(g[j], Is.EqualTo(numeric).Within(2e-4), $"dL/dz[{j}]");
        }
    }

    [Test]
    public void AdamW_first_step_moves_each_weight_by_the_learning_rate_against_the_gradient_sign()
    {
        // After one step m/(1-b1) = g and sqrt(v/(1-b2)) = |g|, so the update is lr * sign(g) (plus decay).
        var opt = new AdamW(0.01f, weightDecay: 0.1f);
        float[] p = [1f, -2f, 3f];
        float[] g = [0.5f, -4f, 1e-3f];
        opt.BeginStep();
        opt.Update("w", p, g, decay: true);
        Assert.That(p[0], Is.EqualTo(1f - 0.01f * 0.1f * 1f - 0.01f).Within(1e-6));
        Assert.That(p[1], Is.EqualTo(-2f + 0.01f * 0.1f * 2f + 0.01f).Within(1e-6));
        Assert.That(p[2], Is.EqualTo(3f - 0.01f * 0.1f * 3f - 0.01f * 1e-3f / (1e-3f + 1e-8f)).Within(1e-6));
        float[] b = [1f];
        opt.Update("b", b, [2f], decay: false);
        Assert.That(b[0], Is.EqualTo(1f - 0.01f).Within(1e-6));
    }
}
