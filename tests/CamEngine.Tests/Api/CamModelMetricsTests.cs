using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Api;

/// <summary>The <see cref="CamModel"/> metric facade (explain, then evaluate) against <see cref="MetricEvaluator"/>
/// over the explainer's own explanations of the same inputs, on the managed CPU backend.</summary>
[TestFixture]
public sealed class CamModelMetricsTests
{
    private static readonly CamModelOptions s_cpu = new() { Device = "cpu", BatchSize = 1 };

    private static string Bundled(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", name);

    private static string ModelPath => Bundled("tiny_resnet.safetensors");

    private static string[] Photos => [Bundled("images/chelsea.png"), Bundled("images/coffee.png")];

    /// <summary>A synchronous <see cref="IProgress{T}"/>: reports arrive on the calling thread, in order.</summary>
    private sealed class Recorder : IProgress<MetricProgress>
    {
        public List<MetricProgress> Reports { get; } = [];

        public void Report(MetricProgress value) => Reports.Add(value);
    }

    /// <summary>The engine underneath the facade: the photos stacked into one batch, the explainer's maps of it and
    /// an evaluator over the same model.</summary>
    private sealed class Engine : IDisposable
    {
        private readonly CpuBackend _backend = new();
        private readonly DeviceModel _device;

        public Engine(CamMethod method, ExplainOptions? options = null)
        {
            var file = ModelFile.Load(ModelPath);
            Input = InputLoader.Stack(Photos.Select(p => InputLoader.Load(p, file.Graph)[0]).ToList());
            _device = DeviceModel.Load(file, _backend);
            var explainer = new Explainer(_device);
            Explanations = explainer.Explain(Input, method, options ?? new ExplainOptions());
            Evaluator = new MetricEvaluator(explainer);
        }

        public HostTensor Input { get; }

        public IReadOnlyList<Explanation> Explanations { get; }

        public MetricEvaluator Evaluator { get; }

        public void Dispose()
        {
            _device.Dispose();
            _backend.Dispose();
        }
    }

    [Test]
    public void Confidence_change_equals_the_evaluators_over_the_same_maps()
    {
        using var engine = new Engine(new GradCam());
        var expected = engine.Evaluator.ConfidenceChange(engine.Input, engine.Explanations);

        using var model = CamModel.Load(ModelPath, s_cpu);
        var fromPaths = model.EvaluateConfidenceChange(Photos, "gradcam");
        var fromResults = model.EvaluateConfidenceChange(model.Explain(Photos, "gradcam"));

        foreach (var actual in new[] { fromPaths, fromResults })
        {
            Assert.That(actual.Original, Is.EqualTo(expected.Original).Within(1e-6));
            Assert.That(actual.Masked, Is.EqualTo(expected.Masked).Within(1e-6));
            Assert.That(actual.AverageDrop, Is.EqualTo(expected.AverageDrop).Within(1e-6));
            Assert.That(actual.IncreaseInConfidence, Is.EqualTo(expected.IncreaseInConfidence).Within(1e-6));
        }
    }

    [Test]
    public void Deletion_and_insertion_equal_the_evaluators_over_the_same_maps()
    {
        var options = new DeletionInsertionOptions { Steps = 16 };
        using var engine = new Engine(new LayerCam());
        var deletion = engine.Evaluator.Deletion(engine.Input, engine.Explanations, options);
        var insertion = engine.Evaluator.Insertion(engine.Input, engine.Explanations, options);

        using var model = CamModel.Load(ModelPath, s_cpu);
        var progress = new Recorder();
        var actualDeletion = model.EvaluateDeletion(Photos, new LayerCam(), options: options, progress: progress);
        var actualInsertion = model.EvaluateInsertion(model.Explain(Photos, "layercam"), options);

        Assert.That(actualDeletion.Insertion, Is.False);
        Assert.That(actualInsertion.Insertion, Is.True);
        foreach (var (actual, expected) in new[] { (actualDeletion, deletion), (actualInsertion, insertion) })
        {
            Assert.That(actual.Curves, Has.Count.EqualTo(expected.Curves.Count));
            for (int i = 0; i < expected.Curves.Count; i++)
            {
                Assert.That((actual.Curves[i].Image, actual.Curves[i].TargetClass),
                    Is.EqualTo((expected.Curves[i].Image, expected.Curves[i].TargetClass)));
                Assert.That(actual.Curves[i].Scores, Is.EqualTo(expected.Curves[i].Scores).Within(1e-6));
                Assert.That(actual.Curves[i].Auc, Is.EqualTo(expected.Curves[i].Auc).Within(1e-6));
            }
            Assert.That(actual.MeanAuc, Is.EqualTo(expected.MeanAuc).Within(1e-6));
        }
        // The explain stage reports images, then the metric reports perturbed inputs up to its total.
        Assert.That(progress.Reports.TakeWhile(r => r.Stage == "explain").Select(r => r.Done), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(progress.Reports[^1].Stage, Is.EqualTo("deletion"));
        Assert.That(progress.Reports[^1].Done, Is.EqualTo(progress.Reports[^1].Total));
    }

    [Test]
    public void Road_equals_the_evaluators_over_the_same_maps()
    {
        var options = new RoadOptions { Percentiles = [20, 50, 80], Seed = 3 };
        using var engine = new Engine(new GradCamPlusPlus());
        var expected = engine.Evaluator.Road(engine.Input, engine.Explanations, options);

        using var model = CamModel.Load(ModelPath, s_cpu);
        var actual = model.EvaluateRoad(Photos, "gradcampp", options: options);

        Assert.That(actual.Percentiles, Is.EqualTo(expected.Percentiles));
        Assert.That(actual.Original, Is.EqualTo(expected.Original).Within(1e-6));
        for (int i = 0; i < expected.MostRelevantFirst.Length; i++)
        {
            Assert.That(actual.MostRelevantFirst[i], Is.EqualTo(expected.MostRelevantFirst[i]).Within(1e-6));
            Assert.That(actual.LeastRelevantFirst[i], Is.EqualTo(expected.LeastRelevantFirst[i]).Within(1e-6));
        }
        Assert.That(actual.MeanCombined, Is.EqualTo(expected.MeanCombined).Within(1e-6));
    }

    [Test]
    public void Sanity_check_equals_the_evaluators_and_leaves_the_model_as_it_was()
    {
        var options = new SanityCheckOptions { Seed = 5 };
        using var engine = new Engine(new GradCam());
        var expected = engine.Evaluator.SanityCheck(engine.Input, new GradCam(), options: options);

        using var model = CamModel.Load(ModelPath, s_cpu);
        var before = model.Explain(Photos[0], "gradcam").Map;
        var actual = model.EvaluateSanity(Photos, "gradcam", options: options);
        var batch = model.EvaluateSanity(engine.Input, new GradCam(), options: options);

        foreach (var result in new[] { actual, batch })
        {
            Assert.That(result.Steps.Select(s => s.Layer), Is.EqualTo(expected.Steps.Select(s => s.Layer)));
            for (int s = 0; s < expected.Steps.Count; s++)
                Assert.That(result.Steps[s].Correlations, Is.EqualTo(expected.Steps[s].Correlations).Within(1e-6));
            Assert.That(result.FinalCorrelation, Is.EqualTo(expected.FinalCorrelation).Within(1e-6));
        }
        Assert.That(model.Explain(Photos[0], "gradcam").Map, Is.EqualTo(before), "the weights are restored");
    }

    [Test]
    public void Results_of_several_images_and_calls_are_stacked_by_image()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var first = model.Explain(Photos[0], "gradcam");
        var second = model.Explain(Photos[1], "gradcam");
        var separate = model.EvaluateDeletion([first, second]);
        var together = model.EvaluateDeletion(Photos, "gradcam");

        Assert.That(separate.Curves.Select(c => c.Image), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(separate.MeanAuc, Is.EqualTo(together.MeanAuc).Within(1e-6));
    }

    [Test]
    public void Results_of_several_methods_or_none_are_refused()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var mixed = model.Explain([Photos[0]], "gradcam,layercam");

        Assert.Throws<ArgumentException>(() => model.EvaluateConfidenceChange(mixed));
        Assert.Throws<ArgumentException>(() => model.EvaluateRoad([]));
    }

    [Test]
    public void Pointing_game_over_results_equals_the_static_game_over_their_maps()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var results = model.Explain(Photos, "gradcam");
        var truths = results.Select(r => GroundTruth.FromBoxes(r.Height, r.Width, [new PixelBox(4, 4, 20, 20)])).ToList();

        var actual = CamModel.EvaluatePointingGame(results, truths);
        var expected = PointingGame.Evaluate(results.Select(r => r.Explanation.Map).ToList(), truths);

        Assert.That(actual.Hits, Is.EqualTo(expected.Hits));
        Assert.That(actual.Energies, Is.EqualTo(expected.Energies));
    }
}
