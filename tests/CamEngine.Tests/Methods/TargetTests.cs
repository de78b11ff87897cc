using CamEngine.Autodiff;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;
using static CamEngine.Tests.Methods.FixtureData;

namespace CamEngine.Tests.Methods;

/// <summary>
/// Targets checked on hand-computed cases: score functions against finite differences; top-k and per-image
/// rows against single-class runs; softmax, similarity and mask targets against the linearity of the reverse
/// pass in its seed (HiResCAM's raw map, sum_k G (.) A, is linear in G, so a target with seed s gives
/// sum_j s_j * raw(class j)).
/// </summary>
[TestFixture]
public sealed class TargetTests
{
    private static readonly float[] s_logits = [1.5f, -0.25f, 3f, 0.5f, 2.75f];

    private static HostTensor Batch(params string[] images)
    {
        var parts = images.Select(i => Npy.Read(FixturePaths.Input(i))).ToList();
        int size = parts[0].Length;
        var data = new float[size * parts.Count];
        for (int i = 0; i < parts.Count; i++)
            parts[i].Data.CopyTo(data, i * size);
        return new HostTensor([parts.Count, .. parts[0].Shape[1..]], data);
    }

    private static void CheckGradient(ScoreFunction score, float[] y)
    {
        var g = new float[y.Length];
        score.Gradient(y, g);
        const double h = 1e-2;
        for (int j = 0; j < y.Length; j++)
        {
            var plus = (float[])y.Clone();
            var minus = (float[])y.Clone();
            plus[j] += (float)h;
            minus[j] -= (float)h;
            double fd = (score.Value(plus) - (double)score.Value(minus)) / (2 * h);
            Assert.That(g[j], Is.EqualTo(fd).Within(2e-4), $"d score / d y[{j}]");
        }
    }

    [Test]
    public void Softmax_probability_and_its_gradient_match_hand_values_and_finite_differences()
    {
        var score = ScoreFunction.SoftmaxProbability(2);
        double sum = s_logits.Sum(v => Math.Exp(v));
        var p = s_logits.Select(v => Math.Exp(v) / sum).ToArray();
        Assert.That(score.Value(s_logits), Is.EqualTo(p[2]).Within(1e-6));
        var g = new float[5];
        score.Gradient(s_logits, g);
        for (int j = 0; j < 5; j++)
            Assert.That(g[j], Is.EqualTo(p[2] * ((j == 2 ? 1 : 0) - p[j])).Within(1e-7), $"p_c (delta - p) at {j}");
        CheckGradient(score, s_logits);
    }

    [Test]
    public void Similarity_scores_and_gradients_match_finite_differences()
    {
        float[] r = [0.5f, -1f, 2f, 0.25f, 1f];
        var dot = ScoreFunction.Similarity(r, cosine: false);
        var cos = ScoreFunction.Similarity(r, cosine: true);
        Assert.That(dot.Value(s_logits), Is.EqualTo(s_logits.Zip(r, (a, b) => a * b).Sum()).Within(1e-5));
        Assert.That(cos.Value(r), Is.EqualTo(1).Within(1e-6), "cosine of a vector with itself");
        CheckGradient(dot, s_logits);
        CheckGradient(cos, s_logits);
    }

    [Test]
    public void Mask_score_sums_one_class_plane_and_its_gradient_is_the_mask()
    {
        // Output (K=2, H=2, W=2), mask over the 2x2 plane.
        float[] y = [1, 2, 3, 4, 10, 20, 30, 40];
        float[] mask = [1, 0, 1, 0.5f];
        var score = ScoreFunction.MaskedSum(1, mask);
        Assert.That(score.Value(y), Is.EqualTo(10 + 30 + 20).Within(1e-5));
        var g = new float[8];
        score.Gradient(y, g);
        Assert.That(g, Is.EqualTo(new float[] { 0, 0, 0, 0, 1, 0, 1, 0.5f }));
        Assert.That(() => Target.Mask(0, mask).Rows(s_logits, 1, [5]), Throws.TypeOf<CamEngineException>());
    }

    [Test]
    public void Parse_reads_every_target_syntax()
    {
        Assert.That(Target.Parse("top1").ToString(), Is.EqualTo("top1"));
        Assert.That(Target.Parse("7").ToString(), Is.EqualTo("7"));
        Assert.That(Target.Parse("top3").ToString(), Is.EqualTo("top3"));
        Assert.That(Target.Parse("softmax").ToString(), Is.EqualTo("softmax"));
        Assert.That(Target.Parse("softmax:4").ToString(), Is.EqualTo("softmax:4"));
        Assert.That(Target.Parse("3,5,7").ToString(), Is.EqualTo("3,5,7"));
        Assert.That(() => Target.Parse("bogus"), Throws.TypeOf<CamEngineException>());
        Assert.That(() => Target.Parse("3,x"), Throws.TypeOf<CamEngineException>());
        Assert.That(Target.TopK(2).Resolve(s_logits, 1), Is.EqualTo(new[] { 2, 4 }));
        Assert.That(Target.Top1.Resolve(s_logits, 1), Is.EqualTo(new[] { 2 }));
    }

    [Test]
    public void Top_k_rows_equal_single_class_runs_and_keep_the_image_index()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_gapcnn"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Batch("chelsea", "coffee");
        var outputs = explainer.Outputs(input);
        var maps = explainer.Explain(input, new HiResCam(), new ExplainOptions { Target = Target.TopK(3) });
        Assert.That(maps.Select(e => e.Image), Is.EqualTo(new[] { 0, 0, 0, 1, 1, 1 }));
        for (int image = 0; image < 2; image++)
        {
            var row = outputs.AsSpan(image * 10, 10).ToArray();
            var expectedClasses = Enumerable.Range(0, 10).OrderByDescending(c => row[c]).Take(3).ToArray();
            var single = new HostTensor([1, 3, 32, 32], input.Data.AsSpan(image * 3072, 3072).ToArray());
            for (int r = 0; r < 3; r++)
            {
                var e = maps[image * 3 + r];
                Assert.That(e.TargetClass, Is.EqualTo(expectedClasses[r]));
                Assert.That(e.Score, Is.EqualTo(row[expectedClasses[r]]));
                var one = explainer.Explain(single, new HiResCam(), new ExplainOptions { Target = Target.Class(e.TargetClass) })[0];
                TensorAssert.Close(e.Raw.Data, one.Raw.Data, 1e-6, 1e-5, $"image {image} rank {r} raw");
                TensorAssert.Close(e.Map.Data, one.Map.Data, 1e-6, 1e-5, $"image {image} rank {r} map");
            }
        }
    }

    [Test]
    public void Per_image_targets_equal_single_class_runs()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_resnet"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Batch("astronaut", "rocket");
        var maps = explainer.Explain(input, new GradCam(), new ExplainOptions { Target = Target.PerImage([3, 5]) });
        Assert.That(maps.Select(e => e.TargetClass), Is.EqualTo(new[] { 3, 5 }));
        Assert.That(maps.Select(e => e.Image), Is.EqualTo(new[] { 0, 1 }));
        for (int i = 0; i < 2; i++)
        {
            var single = new HostTensor([1, 3, 32, 32], input.Data.AsSpan(i * 3072, 3072).ToArray());
            var one = explainer.Explain(single, new GradCam(), new ExplainOptions { Target = Target.Class(i == 0 ? 3 : 5) })[0];
            TensorAssert.Close(maps[i].Raw.Data, one.Raw.Data, 1e-6, 1e-5, $"image {i}");
        }
        Assert.That(() => explainer.Explain(input, new GradCam(), new ExplainOptions { Target = Target.PerImage([1, 2, 3]) }),
            Throws.TypeOf<CamEngineException>());
    }

    /// <summary>HiResCAM raw maps of every class of one image, (classes, h*w).</summary>
    private static float[][] RawPerClass(Explainer explainer, HostTensor input) =>
        Enumerable.Range(0, 10)
            .Select(c => explainer.Explain(input, new HiResCam(), new ExplainOptions { Target = Target.Class(c) })[0].Raw.Data)
            .ToArray();

    private static float[] Combine(float[][] perClass, ReadOnlySpan<float> seed)
    {
        var r = new float[perClass[0].Length];
        for (int c = 0; c < perClass.Length; c++)
        {
            for (int j = 0; j < r.Length; j++)
                r[j] += seed[c] * perClass[c][j];
        }
        return r;
    }

    [Test]
    public void Softmax_and_similarity_targets_backpropagate_their_score_gradient()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_gapcnn"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Batch("chelsea");
        var y = explainer.Outputs(input);
        var perClass = RawPerClass(explainer, input);

        var softmax = explainer.Explain(input, new HiResCam(), new ExplainOptions { Target = Target.Softmax(4) })[0];
        var seed = new float[10];
        ScoreFunction.SoftmaxProbability(4).Gradient(y, seed);
        Assert.That(softmax.TargetClass, Is.EqualTo(4));
        Assert.That(softmax.Score, Is.EqualTo(ScoreFunction.SoftmaxProbability(4).Value(y)).Within(1e-7));
        TensorAssert.Close(softmax.Raw.Data, Combine(perClass, seed), 1e-7, 1e-4, "softmax target raw");

        var reference = explainer.Outputs(Batch("coffee"));
        foreach (bool cosine in new[] { false, true })
        {
            var e = explainer.Explain(input, new HiResCam(), new ExplainOptions { Target = Target.Similarity(reference, cosine) })[0];
            ScoreFunction.Similarity(reference, cosine).Gradient(y, seed);
            Assert.That(e.TargetClass, Is.EqualTo(-1));
            Assert.That(e.Score, Is.EqualTo(ScoreFunction.Similarity(reference, cosine).Value(y)).Within(1e-5));
            TensorAssert.Close(e.Raw.Data, Combine(perClass, seed), 1e-6, 1e-4, cosine ? "cosine raw" : "dot raw");
        }
        var self = explainer.Explain(input, new HiResCam(), new ExplainOptions { Target = Target.Similarity(y, cosine: true) })[0];
        Assert.That(self.Score, Is.EqualTo(1).Within(1e-5), "cosine similarity of an image with itself");
    }

    [Test]
    public void Mask_target_explains_the_masked_sum_of_a_segmentation_output()
    {
        using var model = DeviceModel.Load(Model.TinyModel.Segmentation(), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var rng = new Random(3);
        var input = new HostTensor(1, 3, 8, 8);
        for (int i = 0; i < input.Length; i++)
            input.Data[i] = (float)rng.NextDouble();
        var y = explainer.Outputs(input);
        var left = new float[64];
        var right = new float[64];
        for (int j = 0; j < 64; j++)
            (j % 8 < 4 ? left : right)[j] = 1;
        var both = left.Zip(right, (a, b) => a + b).ToArray();
        var options = (float[] m) => new ExplainOptions { Target = Target.Mask(1, m), Layers = ["/relu/Relu_output_0"] };
        var eLeft = explainer.Explain(input, new HiResCam(), options(left))[0];
        var eRight = explainer.Explain(input, new HiResCam(), options(right))[0];
        var eBoth = explainer.Explain(input, new HiResCam(), options(both))[0];
        Assert.That(eBoth.TargetClass, Is.EqualTo(1));
        Assert.That(eBoth.Score, Is.EqualTo(y.Skip(64).Take(64).Sum()).Within(1e-4), "sum of class 1 over the whole mask");
        TensorAssert.Close(eBoth.Raw.Data, eLeft.Raw.Data.Zip(eRight.Raw.Data, (a, b) => a + b).ToArray(), 1e-6, 1e-4,
            "mask targets add up");
        Assert.That(eLeft.Raw.Data, Is.Not.EqualTo(eRight.Raw.Data));
    }

    [Test]
    public void Similarity_and_mask_scores_on_jets_agree_with_their_closed_forms()
    {
        float[] r = [0.5f, -1f, 2f, 0.25f, 1f, -0.75f, 0.1f, 3f];
        float[] y = [1, 2, 3, 4, 10, -20, 30, 40];
        var scores = new[]
        {
            ("dot", ScoreFunction.Similarity(r, cosine: false)), ("cosine", ScoreFunction.Similarity(r, cosine: true)),
            ("mask", ScoreFunction.MaskedSum(1, [1, 0, 1, 0.5f])),
        };
        var yd = y.Select(v => (double)v).ToArray();
        foreach (var (name, score) in scores)
        {
            Assert.That(score.Value(yd), Is.EqualTo(score.Value(y)).Within(1e-5 * Math.Abs(score.Value(y)) + 1e-7), $"{name} value");
            var closed = new float[y.Length];
            score.Gradient(y, closed);
            TensorAssert.Close(closed, score.Gradient(yd), 1e-7, 1e-5, $"{name} gradient: closed form vs jets");
        }
        // The cosine's Hessian-vector product (jets) against central differences of its closed-form gradient.
        var cosine = scores[1].Item2;
        double[] v = [0.3, -0.1, 0.2, 0.05, -0.4, 0.6, 0.1, -0.2];
        var hv = cosine.HessianVector(yd, v);
        const double h = 1e-3;
        var plus = new float[y.Length];
        var minus = new float[y.Length];
        cosine.Gradient(y.Select((t, j) => (float)(t + h * v[j])).ToArray(), plus);
        cosine.Gradient(y.Select((t, j) => (float)(t - h * v[j])).ToArray(), minus);
        var fd = plus.Zip(minus, (a, b) => (a - (double)b) / (2 * h)).ToArray();
        TensorAssert.Close(hv.Select(t => (float)t).ToArray(), fd, 1e-5, 2e-2, "cosine H v");
        Assert.That(ScoreFunction.Similarity(r, cosine: true).IsLinear, Is.False);
        Assert.That(ScoreFunction.Similarity(r, cosine: false).IsLinear && ScoreFunction.MaskedSum(0, [1f]).IsLinear, Is.True);
    }
}
