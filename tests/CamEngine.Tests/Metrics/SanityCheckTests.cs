using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Metrics;

/// <summary>Spearman's rho with ties, and the cascading randomization on the 3x8x8 conv-relu-GAP-gemm model.</summary>
[TestFixture]
public sealed class SanityCheckTests
{
    private const string Relu = "/relu/Relu_output_0";

    [Test]
    public void Spearman_uses_average_ranks_for_ties()
    {
        Assert.That(RankCorrelation.AverageRanks([10f, 20f, 20f, 30f]), Is.EqualTo(new[] { 1, 2.5, 2.5, 4 }));
        Assert.That(RankCorrelation.AverageRanks([3f, 1f, 3f, 3f]), Is.EqualTo(new[] { 3, 1, 3, 3.0 }));
        // Ranks (1, 2.5, 2.5, 4) and (1, 4, 2.5, 2.5): deviations (-1.5, 0, 0, 1.5) and (-1.5, 1.5, 0, 0): 2.25 / 4.5.
        Assert.That(RankCorrelation.Spearman([1f, 2f, 2f, 3f], [1f, 3f, 2f, 2f]), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(RankCorrelation.Spearman([1f, 2f, 3f, 4f], [40f, 30f, 20f, 10f]), Is.EqualTo(-1).Within(1e-12));
        Assert.That(RankCorrelation.Spearman([1f, 5f, 2f], [0.1f, 0.9f, 0.3f]), Is.EqualTo(1).Within(1e-12));
        // No ties: 1 - 6 sum d^2 / (n (n^2 - 1)); ranks (1,2,3,4,5) vs (2,1,4,3,5): sum d^2 = 4, rho = 1 - 24/120.
        Assert.That(RankCorrelation.Spearman([1f, 2f, 3f, 4f, 5f], [2f, 1f, 4f, 3f, 5f]), Is.EqualTo(0.8).Within(1e-12));
        Assert.That(double.IsNaN(RankCorrelation.Spearman([1f, 1f, 1f], [1f, 2f, 3f])), Is.True);
        Assert.That(() => RankCorrelation.Spearman([1f, 2f], [1f]), Throws.ArgumentException);
    }

    private static HostTensor Inputs() => new([2, 3, 8, 8], TensorAssert.Random(new Random(7), 2 * 192, 2f));

    [Test]
    public void Cascading_randomization_starts_at_one_is_seeded_and_restores_the_weights()
    {
        using var model = DeviceModel.Load(TinyModel.Create(), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var metrics = new MetricEvaluator(explainer);
        var input = Inputs();
        var before = explainer.Outputs(input);
        var options = new ExplainOptions { Layers = [Relu] };
        var a = metrics.SanityCheck(input, new GradCam(), options, new SanityCheckOptions { Seed = 3 });
        Assert.That(explainer.Outputs(input), Is.EqualTo(before), "weights restored bit for bit");
        var b = metrics.SanityCheck(input, new GradCam(), options, new SanityCheckOptions { Seed = 3 });
        var c = metrics.SanityCheck(input, new GradCam(), options, new SanityCheckOptions { Seed = 4 });

        // Steps: the original, then the gemm (output layer), then the conv below it.
        Assert.That(a.Steps.Select(s => s.Layer), Is.EqualTo(new[] { "", "/fc/Gemm", "/conv/Conv" }));
        Assert.That(a.Steps[1].Parameters, Is.EqualTo(new[] { "fc.bias", "fc.weight" }));
        Assert.That(a.Steps[0].Correlations, Is.EqualTo(new[] { 1.0, 1.0 }));
        for (int s = 0; s < 3; s++)
            Assert.That(b.Steps[s].Correlations, Is.EqualTo(a.Steps[s].Correlations), $"step {s}: same seed, same numbers");
        Assert.That(c.Steps[2].Correlations, Is.Not.EqualTo(a.Steps[2].Correlations));
        Assert.That(a.Steps.Skip(1).SelectMany(s => s.Correlations).Any(r => Math.Abs(r - 1) > 1e-3), Is.True,
            "random weights change Grad-CAM's maps");
        // The original maps are the method's own, for the classes it chose.
        var direct = explainer.Explain(input, new GradCam(), options);
        Assert.That(a.Original.Select(e => e.Map.Data), Is.EqualTo(direct.Select(e => e.Map.Data)));

        // Step 1 by hand: redraw the gemm's weights as the check does and recompute Grad-CAM for the same classes.
        var saved = model.ParameterNames.ToDictionary(n => n, n => model.Backend.Download(model.Parameter(n)));
        try
        {
            model.SetParameter("fc.bias", MetricEvaluator.Redraw(saved["fc.bias"], MetricEvaluator.Stream(3, 0, 0)));
            model.SetParameter("fc.weight", MetricEvaluator.Redraw(saved["fc.weight"], MetricEvaluator.Stream(3, 0, 1)));
            var classes = direct.Select(e => e.TargetClass).ToArray();
            var step1 = explainer.Explain(input, new GradCam(), new ExplainOptions { Layers = [Relu], Target = Target.PerImage(classes) });
            for (int i = 0; i < 2; i++)
            {
                Assert.That(a.Steps[1].Correlations[i],
                    Is.EqualTo(RankCorrelation.Spearman(direct[i].Map.Data, step1[i].Map.Data)).Within(1e-12));
            }
        }
        finally
        {
            foreach (var (name, values) in saved)
                model.SetParameter(name, values);
        }
    }

    [Test]
    public void The_weights_come_back_when_the_check_is_cancelled_midway()
    {
        using var model = DeviceModel.Load(TinyModel.Create(), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Inputs();
        var before = explainer.Outputs(input);
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Done == 1)
                cancel.Cancel(); // after the first randomized step
        });
        Assert.That(() => new MetricEvaluator(explainer).SanityCheck(input, new GradCam(),
                new ExplainOptions { Layers = [Relu] }, null, progress, cancel.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(explainer.Outputs(input), Is.EqualTo(before));
    }

    [Test]
    public void Redrawn_weights_keep_the_tensor_mean_and_deviation()
    {
        var values = Enumerable.Range(0, 4000).Select(i => (float)(Math.Sin(i) * 3 + 1)).ToArray();
        var drawn = MetricEvaluator.Redraw(values, new Random(1));
        double mean = drawn.Average(v => (double)v), std = Math.Sqrt(drawn.Average(v => (v - mean) * (v - mean)));
        double m0 = values.Average(v => (double)v), s0 = Math.Sqrt(values.Average(v => (v - m0) * (v - m0)));
        Assert.That(mean, Is.EqualTo(m0).Within(0.15));
        Assert.That(std, Is.EqualTo(s0).Within(0.1));
        Assert.That(MetricEvaluator.Redraw([2f, 2f], new Random(1)), Is.EqualTo(new[] { 2f, 2f }));
    }
}
