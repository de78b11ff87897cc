using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Metrics;

/// <summary>
/// Average drop / increase and the deletion / insertion curves on <see cref="LinearModel"/>, where every score
/// is a hand-computable function of the mean pixel value.
/// </summary>
[TestFixture]
public sealed class ConfidenceAndCurveTests
{
    private static Backend Device => TestDevice.Ilgpu;

    private static MetricEvaluator Evaluator(DeviceModel model) => new(new Explainer(model));

    [Test]
    public void Average_drop_and_increase_match_the_hand_computed_softmax_scores()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        // Image 0: all ones (m = 1); image 1: all minus ones (m = -1). Maps: 0.5 everywhere, so O reads m / 2.
        var input = new HostTensor([2, 1, 4, 4], [.. Enumerable.Repeat(1f, 16), .. Enumerable.Repeat(-1f, 16)]);
        var half = Enumerable.Repeat(0.5f, 16).ToArray();
        var maps = new[] { LinearModel.Map(0, 0, 4, 4, half), LinearModel.Map(1, 0, 4, 4, half) };
        var r = Evaluator(model).ConfidenceChange(input, maps, new MetricOptions { BatchSize = 1 });
        // p0 = sigmoid(2 m): Y = (s(2), s(-2)), O = (s(1), s(-1)).
        TensorAssert.Close(r.Original, [0.8807970779778823, 0.11920292202211755], 1e-6, 0, "Y");
        TensorAssert.Close(r.Masked, [0.7310585786300049, 0.2689414213699951], 1e-6, 0, "O");
        // 100/2 (Y0 - O0) / Y0; image 1 rose, so it counts for the increase only.
        Assert.That(r.AverageDrop, Is.EqualTo(8.50017007842739).Within(1e-5));
        Assert.That(r.IncreaseInConfidence, Is.EqualTo(50).Within(1e-9));
        Assert.That(r.DropInConfidence, Is.EqualTo((0.8807970779778823 - 0.7310585786300049) / 2).Within(1e-6));

        // pytorch-grad-cam's undivided drop on raw logits: Y = (1, -1), O = (0.5, -0.5): mean of (0.5, 0) = 0.25.
        var logits = Evaluator(model).ConfidenceChange(input, maps, new MetricOptions { Score = MetricScore.Logit });
        Assert.That(logits.DropInConfidence, Is.EqualTo(0.25).Within(1e-6));
        Assert.That(logits.IncreaseInConfidence, Is.EqualTo(50).Within(1e-9));
        Assert.That(double.IsNaN(logits.AverageDrop), Is.True, "Y = -1 is not a confidence");
    }

    [Test]
    public void Average_drop_multiplies_every_channel_by_a_non_uniform_map()
    {
        // Two channels, logits (m0 + m1, 0): class 0 probability sigmoid(m0 + m1).
        using var model = DeviceModel.Load(LinearModel.Create(2, 2, 2, new float[,] { { 1, 1 }, { 0, 0 } }), Device);
        var input = new HostTensor([1, 2, 2, 2], [1, 2, 3, 4, 4, 0, -2, 2]);
        var map = new float[] { 1, 0.5f, 0, 0.25f };
        var r = Evaluator(model).ConfidenceChange(input, [LinearModel.Map(0, 0, 2, 2, map)]);
        // Before: m0 = 10/4, m1 = 4/4, z = 3.5. After: channel 0 (1 + 1 + 0 + 1)/4 = 0.75, channel 1 (4 + 0 + 0 + 0.5)/4 = 1.125.
        double y = 1 / (1 + Math.Exp(-3.5)), o = 1 / (1 + Math.Exp(-1.875));
        Assert.That(r.Original[0], Is.EqualTo(y).Within(1e-6));
        Assert.That(r.Masked[0], Is.EqualTo(o).Within(1e-6));
        Assert.That(r.AverageDrop, Is.EqualTo(100 * (y - o) / y).Within(1e-5));
        Assert.That(r.IncreaseInConfidence, Is.Zero);
    }

    // 4x4 image x_p = p + 1 (sum 136); map (p % 4) / 3: columns rank 3, 2, 1, 0, ties within a column by index.
    private static (HostTensor Input, Explanation Map) Ramp()
    {
        var input = new HostTensor([1, 1, 4, 4], Enumerable.Range(1, 16).Select(v => (float)v).ToArray());
        var map = Enumerable.Range(0, 16).Select(p => (p % 4) / 3f).ToArray();
        return (input, LinearModel.Map(0, 0, 4, 4, map));
    }

    [Test]
    public void Deletion_and_insertion_curves_and_areas_are_exact_on_a_linear_score()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        var (input, map) = Ramp();
        var metrics = Evaluator(model);
        var options = new DeletionInsertionOptions { Steps = 4, Score = MetricScore.Logit, BatchSize = 3 };
        // One column per step: the columns sum to 40, 36, 32, 28 (from column 3 down).
        var deletion = metrics.Deletion(input, [map], options).Curves[0];
        TensorAssert.Close(deletion.Fractions, [0, 0.25, 0.5, 0.75, 1], 0, 0, "fractions");
        TensorAssert.Close(deletion.Scores, [8.5, 6, 3.75, 1.75, 0], 1e-5, 0, "deletion scores");
        Assert.That(deletion.Auc, Is.EqualTo(3.9375).Within(1e-5));
        var insertion = metrics.Insertion(input, [map], options).Curves[0];
        TensorAssert.Close(insertion.Scores, [0, 2.5, 4.75, 6.75, 8.5], 1e-5, 0, "insertion scores");
        Assert.That(insertion.Auc, Is.EqualTo(4.5625).Within(1e-5));
    }

    [Test]
    public void Equal_map_values_are_deleted_in_pixel_index_order()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        var (input, map) = Ramp();
        // Two pixels a step: pixels 3 and 7 (values 4 and 8) go first, not 15 and 11.
        var r = Evaluator(model).Deletion(input, [map], new DeletionInsertionOptions { Steps = 8, Score = MetricScore.Logit });
        TensorAssert.Close(r.Curves[0].Scores, [8.5, 7.75, 6, 5.375, 3.75, 3.25, 1.75, 1.375, 0], 1e-5, 0, "scores");
        Assert.That(r.MeanAuc, Is.EqualTo(4.1875).Within(1e-5));
        Assert.That(MetricEvaluator.RankPixels([1f, 2f, 2f, 0f, 2f]), Is.EqualTo(new[] { 1, 2, 4, 0, 3 }));
    }

    [Test]
    public void Curve_points_use_ceil_steps_and_end_at_every_pixel_and_softmax_is_the_default_score()
    {
        Assert.That(MetricEvaluator.CurveCounts(16, 3), Is.EqualTo(new[] { 0, 6, 12, 16 }));
        Assert.That(MetricEvaluator.CurveCounts(16, 20), Is.EqualTo(Enumerable.Range(0, 17).ToArray()));
        Assert.That(MetricEvaluator.CurveCounts(10, 4), Is.EqualTo(new[] { 0, 3, 6, 9, 10 }));
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        var (input, map) = Ramp();
        var progress = new List<MetricProgress>();
        var r = Evaluator(model).Deletion(input, [map, map], new DeletionInsertionOptions { Steps = 3, BatchSize = 5 },
            new SyncProgress(progress.Add));
        // Softmax of (m, -m): sigmoid(2 m); deleting every pixel gives m = 0, p = 0.5.
        Assert.That(r.Curves[0].Scores[0], Is.EqualTo(1 / (1 + Math.Exp(-17))).Within(1e-6));
        Assert.That(r.Curves[1].Scores[^1], Is.EqualTo(0.5).Within(1e-6));
        // 2 explanations x 4 points in chunks of 5.
        Assert.That(progress.Select(p => p.Done), Is.EqualTo(new[] { 5, 8 }));
        Assert.That(progress.All(p => p.Total == 8 && p.Stage == "deletion"), Is.True);
    }

    [Test]
    public void The_mean_baseline_replaces_pixels_by_the_channel_mean_and_the_blur_keeps_constants()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        var (input, map) = Ramp();
        var options = new DeletionInsertionOptions { Steps = 4, Score = MetricScore.Logit, Baseline = PerturbationBaseline.Mean };
        var metrics = Evaluator(model);
        // A column of the mean sums to 34; the columns sum to 40, 36, 32, 28. Deletion after column 3: (136 - 40 + 34) / 16.
        TensorAssert.Close(metrics.Deletion(input, [map], options).Curves[0].Scores,
            [8.5, 130 / 16.0, 128 / 16.0, 130 / 16.0, 8.5], 1e-5, 0, "deletion");
        // Insertion after column 3: (3 x 34 + 40) / 16.
        TensorAssert.Close(metrics.Insertion(input, [map], options).Curves[0].Scores,
            [8.5, 142 / 16.0, 144 / 16.0, 142 / 16.0, 8.5], 1e-5, 0, "insertion");

        var constant = Enumerable.Repeat(3f, 35).ToArray();
        var blurred = new float[35];
        MetricEvaluator.GaussianBlur(constant, blurred, 5, 7, 2);
        TensorAssert.Close(blurred, constant, 1e-6, 0, "blurred constant");
        // A unit impulse far from the borders spreads into the normalized separable Gaussian: g(dy) g(dx).
        var impulse = new float[31 * 31];
        impulse[15 * 31 + 15] = 1;
        var spread = new float[impulse.Length];
        MetricEvaluator.GaussianBlur(impulse, spread, 31, 31, 1.5);
        double z = Enumerable.Range(-5, 11).Sum(d => Math.Exp(-d * d / 4.5));
        Assert.That(spread[15 * 31 + 15], Is.EqualTo(1 / (z * z)).Within(1e-7));
        Assert.That(spread[17 * 31 + 14], Is.EqualTo(Math.Exp(-4 / 4.5) * Math.Exp(-1 / 4.5) / (z * z)).Within(1e-7));
        Assert.That(spread[15 * 31 + 21], Is.Zero, "radius ceil(3 sigma) = 5");
    }

    [Test]
    public void Bad_arguments_are_refused_with_a_named_error()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(4, 4), Device);
        var (input, map) = Ramp();
        var metrics = Evaluator(model);
        Assert.That(() => metrics.Deletion(input, [map], new DeletionInsertionOptions { Steps = 0 }),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("steps"));
        Assert.That(() => metrics.ConfidenceChange(input, [LinearModel.Map(1, 0, 4, 4, map.Map.Data)]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("image 1"));
        Assert.That(() => metrics.ConfidenceChange(input, [LinearModel.Map(0, 0, 2, 8, map.Map.Data)]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("4x4"));
        Assert.That(() => metrics.ConfidenceChange(input, [LinearModel.Map(0, 5, 4, 4, map.Map.Data)]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("out of range"));
        Assert.That(() => metrics.ConfidenceChange(input, [map], new MetricOptions { BatchSize = 0 }),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("batch"));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(() => metrics.Insertion(input, [map], null, null, cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
    }
}

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (Progress&lt;T&gt; posts).</summary>
internal sealed class SyncProgress(Action<MetricProgress> report) : IProgress<MetricProgress>
{
    public void Report(MetricProgress value) => report(value);
}
