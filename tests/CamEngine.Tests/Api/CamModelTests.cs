using System.Reflection;
using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Api;

/// <summary>The <see cref="CamModel"/> facade against the engine it wraps, on the managed CPU backend.</summary>
[TestFixture]
public sealed class CamModelTests
{
    private static readonly CamModelOptions s_cpu = new() { Device = "cpu" };

    private static string Bundled(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", name);

    private static string ModelPath => Bundled("tiny_resnet.safetensors");

    private static string Photo(string name) => Bundled(Path.Combine("images", name));

    /// <summary>A synchronous <see cref="IProgress{T}"/>: reports arrive on the calling thread, in order.</summary>
    private sealed class Recorder(Action<ExplainProgress>? onReport = null) : IProgress<ExplainProgress>
    {
        public List<ExplainProgress> Reports { get; } = [];

        public void Report(ExplainProgress value)
        {
            Reports.Add(value);
            onReport?.Invoke(value);
        }
    }

    [Test]
    public void Explain_gives_the_explainers_map_target_and_score_for_the_same_input()
    {
        var file = ModelFile.Load(ModelPath);
        var image = InputLoader.Load(Photo("chelsea.png"), file.Graph)[0];
        using var backend = new CpuBackend();
        using var device = DeviceModel.Load(file, backend);
        var options = new ExplainOptions { Layers = ["block1.relu2"], Target = Target.Class(2) };
        var expected = new Explainer(device).Explain(image.Input, new LayerCam(), options)[0];

        using var model = CamModel.Load(ModelPath, s_cpu);
        var result = model.Explain(Photo("chelsea.png"), "layercam", options);

        Assert.That(result.Map, Is.EqualTo(expected.Map.Data));
        Assert.That((result.ClassIndex, result.Score, result.Method), Is.EqualTo((2, expected.Score, "layercam")));
        Assert.That(result.Layers, Is.EqualTo(expected.Layers));
        Assert.That((result.Height, result.Width), Is.EqualTo((expected.Map.Shape[0], expected.Map.Shape[1])));
        var grid = result.ToArray2D();
        Assert.That(grid[5, 7], Is.EqualTo(result.Map[5 * result.Width + 7]));
        Assert.That(result.Image, Is.Not.Null);
        Assert.That((result.Image!.Width, result.Image.Height), Is.EqualTo((image.Display!.Width, image.Display.Height)));
        Assert.That(result.Source, Is.EqualTo(Photo("chelsea.png")));
    }

    [Test]
    public void A_picture_a_file_and_a_tensor_batch_give_the_same_map()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var fromFile = model.Explain(Photo("coffee.png"), "gradcam");
        var fromPicture = model.Explain(ImageDecoder.Load(Photo("coffee.png")), new GradCam());
        var input = InputLoader.Load(Photo("coffee.png"), ModelFile.Load(ModelPath).Graph)[0].Input;
        var fromTensor = model.Explain(input, [new GradCam()]);
        Assert.That(fromPicture.Map, Is.EqualTo(fromFile.Map));
        Assert.That(fromTensor, Has.Count.EqualTo(1));
        Assert.That(fromTensor[0].Map, Is.EqualTo(fromFile.Map));
        Assert.That(fromTensor[0].Source, Is.Null);
    }

    [Test]
    public void File_stream_memory_and_async_loads_give_identical_outputs()
    {
        var bytes = File.ReadAllBytes(ModelPath);
        var maps = new List<float[]>();
        var logits = new List<float[]>();
        using (var a = CamModel.Load(ModelPath, s_cpu))
            Collect(a);
        using (var stream = new MemoryStream(bytes))
        using (var b = CamModel.Load(stream, s_cpu))
            Collect(b);
        using (var c = CamModel.Load(bytes, s_cpu))
            Collect(c);
        using (var d = CamModel.LoadAsync(ModelPath, s_cpu).GetAwaiter().GetResult())
            Collect(d);
        using (var stream = new MemoryStream(bytes))
        using (var e = CamModel.LoadAsync(stream, s_cpu).GetAwaiter().GetResult())
            Collect(e);
        Assert.That(maps, Has.Count.EqualTo(5));
        foreach (var m in maps.Skip(1))
            Assert.That(m, Is.EqualTo(maps[0]));
        foreach (var l in logits.Skip(1))
            Assert.That(l, Is.EqualTo(logits[0]));

        void Collect(CamModel m)
        {
            maps.Add(m.Explain(Photo("rocket.jpg"), "gradcam").Map);
            logits.Add(m.Outputs(Photo("rocket.jpg")));
        }
    }

    [Test]
    public void Loading_a_missing_or_corrupt_model_throws_typed_errors()
    {
        Assert.Throws<CamEngineException>(() => CamModel.Load(Bundled("no-such-model.safetensors"), s_cpu));
        Assert.That(async () => await CamModel.LoadAsync(Bundled("no-such-model.safetensors"), s_cpu),
            Throws.InstanceOf<CamEngineException>());
        var bytes = File.ReadAllBytes(ModelPath);
        Assert.Throws<InvalidModelFileException>(() => CamModel.Load(bytes.AsMemory(0, bytes.Length / 2), s_cpu));
        Assert.Throws<CamEngineException>(() => CamModel.Load(ModelPath, new CamModelOptions { Device = "tpu" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => CamModel.Load(ModelPath, new CamModelOptions { Device = "cpu", BatchSize = 0 }));
    }

    [Test]
    public void A_batch_reports_progress_up_to_the_total_and_orders_results_by_image_then_method()
    {
        using var model = CamModel.Load(ModelPath, new CamModelOptions { Device = "cpu", BatchSize = 2 });
        string[] photos = [Photo("chelsea.png"), Photo("coffee.png"), Photo("astronaut.jpg"), Photo("rocket.jpg"), Photo("chelsea.png")];
        var progress = new Recorder();
        var results = model.Explain(photos, "gradcam,xgradcam", progress: progress);
        Assert.That(progress.Reports.Select(p => p.ImagesDone), Is.EqualTo(new[] { 2, 4, 5 }));
        Assert.That(progress.Reports.All(p => p.ImageCount == 5));
        Assert.That(results.Select(r => (r.ImageIndex, r.Method)), Is.EqualTo(
            Enumerable.Range(0, 5).SelectMany(i => new[] { (i, "gradcam"), (i, "xgradcam") })));
        Assert.That(results.Select(r => r.Source), Is.EqualTo(photos.SelectMany(p => new[] { p, p })));
        // Batching changes nothing: the first and the last image are the same photo, in different batches.
        Assert.That(results[8].Map, Is.EqualTo(results[0].Map));
        Assert.That(results[0].Map, Is.EqualTo(model.Explain(photos[0], "gradcam").Map));
    }

    [Test]
    public void A_per_image_target_is_cut_per_batch_and_top_k_gives_k_maps_per_image()
    {
        using var model = CamModel.Load(ModelPath, new CamModelOptions { Device = "cpu", BatchSize = 2 });
        string[] photos = [Photo("chelsea.png"), Photo("coffee.png"), Photo("rocket.jpg")];
        var perImage = model.Explain(photos, "gradcam", new ExplainOptions { Target = Target.PerImage([3, 1, 4]) });
        Assert.That(perImage.Select(r => r.ClassIndex), Is.EqualTo(new[] { 3, 1, 4 }));
        Assert.That(perImage[2].Map, Is.EqualTo(model.Explain(photos[2], "gradcam", new ExplainOptions { Target = Target.Class(4) }).Map));

        var top2 = model.Explain(photos, "gradcam", new ExplainOptions { Target = Target.TopK(2) });
        Assert.That(top2.Select(r => r.ImageIndex), Is.EqualTo(new[] { 0, 0, 1, 1, 2, 2 }));
        var ranked = model.Predict(photos[1], top: 2);
        Assert.That(top2.Where(r => r.ImageIndex == 1).Select(r => r.ClassIndex), Is.EqualTo(ranked.Select(p => p.ClassIndex)));
        Assert.Throws<CamEngineException>(() => model.Explain(photos[0], "gradcam", new ExplainOptions { Target = Target.TopK(2) }));
    }

    [Test]
    public void Cutting_options_for_a_batch_keeps_every_other_option()
    {
        // Guards CamModel.ForImages against options added to ExplainOptions later: every settable property is set
        // to a non-default value and must survive the copy made for a per-image target.
        var properties = typeof(ExplainOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance);
        var options = new ExplainOptions
        {
            Layers = ["layer2", "layer3"], Target = Target.PerImage([1, 2, 3]), Convention = Convention.TorchCam,
            MemoryBudgetBytes = 12345, Fusion = LayerFusion.Product, AugSmooth = true, EigenSmooth = true,
            PerturbationBatch = 7, Seed = 42, Layout = LayerLayout.Tokens(2),
        };
        var defaults = new ExplainOptions();
        foreach (var p in properties.Where(p => p.Name != nameof(ExplainOptions.Target)))
            Assert.That(p.GetValue(options), Is.Not.EqualTo(p.GetValue(defaults)), $"set {p.Name} in this test");
        var cut = CamModel.ForImages(options, 1, 2);
        Assert.That(cut.Target.ToString(), Is.EqualTo("2,3"));
        foreach (var p in properties.Where(p => p.Name != nameof(ExplainOptions.Target)))
            Assert.That(p.GetValue(cut), Is.EqualTo(p.GetValue(options)), p.Name);
        Assert.That(CamModel.ForImages(new ExplainOptions(), 1, 2), Is.Not.Null);
    }

    [Test]
    public void Cancellation_stops_a_batch_between_batches_and_a_cancelled_async_call()
    {
        using var model = CamModel.Load(ModelPath, new CamModelOptions { Device = "cpu", BatchSize = 1 });
        string[] photos = [Photo("chelsea.png"), Photo("coffee.png"), Photo("rocket.jpg")];
        using var cts = new CancellationTokenSource();
        var progress = new Recorder(_ => cts.Cancel());
        Assert.Throws<OperationCanceledException>(() => model.Explain(photos, "gradcam", progress: progress, cancellationToken: cts.Token));
        Assert.That(progress.Reports, Has.Count.EqualTo(1));

        Assert.That(async () => await model.ExplainAsync(photos, "gradcam", cancellationToken: cts.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await model.ExplainAsync(photos[0], "gradcam", cancellationToken: cts.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await CamModel.LoadAsync(ModelPath, s_cpu, cts.Token),
            Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public void ExplainAsync_gives_the_synchronous_maps_and_reports_progress()
    {
        using var model = CamModel.Load(ModelPath, new CamModelOptions { Device = "cpu", BatchSize = 2 });
        string[] photos = [Photo("chelsea.png"), Photo("coffee.png"), Photo("rocket.jpg")];
        var progress = new Recorder();
        var results = model.ExplainAsync(photos, [new GradCam()], progress: progress).GetAwaiter().GetResult();
        Assert.That(progress.Reports[^1], Is.EqualTo(new ExplainProgress(3, 3)));
        Assert.That(results.Select(r => r.Map), Is.EqualTo(model.Explain(photos, "gradcam").Select(r => r.Map)));
        var one = model.ExplainAsync(photos[1]).GetAwaiter().GetResult();
        Assert.That(one.Map, Is.EqualTo(results[1].Map));
        // The asynchronously read file gives the same source, display crop and class as the synchronous call.
        var sync = model.Explain(photos[1]);
        Assert.That((one.Source, one.ClassIndex, one.Image!.Data), Is.EqualTo((sync.Source, sync.ClassIndex, sync.Image!.Data)));
    }

    [Test]
    public void Predict_ranks_the_outputs_with_softmax_probabilities()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var logits = model.Outputs(Photo("astronaut.jpg"));
        var top = model.Predict(Photo("astronaut.jpg"), top: 3);
        Assert.That(top, Has.Count.EqualTo(3));
        int best = Array.IndexOf(logits, logits.Max());
        Assert.That(top[0].ClassIndex, Is.EqualTo(best));
        Assert.That(top[0].Logit, Is.EqualTo(logits[best]));
        double sum = logits.Sum(v => Math.Exp(v - logits[best]));
        Assert.That(top[0].Probability, Is.EqualTo(1 / sum).Within(1e-6));
        Assert.That(top.Select(p => p.Logit), Is.Ordered.Descending);
        Assert.That(model.Predict(ImageDecoder.Load(Photo("astronaut.jpg")), 3), Is.EqualTo(top));
        Assert.That(model.Explain(Photo("astronaut.jpg")).ClassIndex, Is.EqualTo(best));
    }

    [Test]
    public void Model_facts_and_methods_are_discoverable()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var graph = ModelFile.Load(ModelPath).Graph;
        Assert.That((model.InputChannels, model.InputHeight, model.InputWidth), Is.EqualTo((graph.InputShape[0], graph.InputShape[1], graph.InputShape[2])));
        Assert.That(model.OutputShape, Is.EqualTo(graph.OutputShape));
        Assert.That(model.Layers, Has.Count.EqualTo(graph.Nodes.Count));
        Assert.That(model.SuggestedLayers[0], Is.EqualTo(graph.DefaultTargetLayer().Output));
        Assert.That(model.DeviceName, Is.EqualTo("cpu"));
        Assert.That(CamModel.Methods.Select(m => m.Name), Is.EqualTo(MethodCatalog.All.Select(m => m.Name)));
        Assert.That(CamModel.Methods.All(m => m.Summary.Length > 0 && m.Paper.Length > 0));
        Assert.Throws<CamEngineException>(() => model.Explain(Photo("chelsea.png"), "no-such-method"));
    }

    [Test]
    public void Overlay_pictures_and_png_bytes_match_the_engines_overlay()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var result = model.Explain(Photo("chelsea.png"), "gradcam");
        var picture = result.Image!;
        var expected = Overlay.Blend(picture, Resize.Bilinear(result.Explanation.Map, picture.Height, picture.Width));
        Assert.That(result.ToOverlay(new OverlayOptions { View = OverlayView.Crop }).Data, Is.EqualTo(expected.Data));
        // The default view is the whole photo with the crop painted and outlined: the engine's full-view picture.
        var photo = PhotoView.Of(ImageDecoder.Load(Photo("chelsea.png")), ModelFile.Load(ModelPath).Graph.Preprocessing);
        expected = ExplanationPicture.Map(result.Explanation.Map, picture, photo, OverlayOptions.Default);
        Assert.That((expected.Width, expected.Height), Is.EqualTo((451, 300)));
        Assert.That(result.ToOverlay().Data, Is.EqualTo(expected.Data));
        Assert.That(result.EncodeOverlayPng(), Is.EqualTo(Overlay.EncodePng(expected)));
        var heat = result.ToHeatmap();
        Assert.That((heat.Width, heat.Height), Is.EqualTo((result.Width, result.Height)));
        string png = Path.Combine(Path.GetTempPath(), $"camengine-api-{Guid.NewGuid():N}.png");
        try
        {
            result.SaveOverlayPng(png);
            var decoded = ImageDecoder.Load(png);
            Assert.That(decoded.Data, Is.EqualTo(expected.Data));
        }
        finally
        {
            File.Delete(png);
        }
    }

    [Test]
    public void Every_call_after_dispose_throws_ObjectDisposedException_and_dispose_twice_is_harmless()
    {
        var model = CamModel.Load(ModelPath, s_cpu);
        var picture = ImageDecoder.Load(Photo("chelsea.png"));
        model.Dispose();
        model.Dispose();
        Assert.Multiple(() =>
        {
            Assert.Throws<ObjectDisposedException>(() => model.Explain(Photo("chelsea.png")));
            Assert.Throws<ObjectDisposedException>(() => model.Explain(picture, "gradcam"));
            Assert.Throws<ObjectDisposedException>(() => model.Explain([Photo("chelsea.png")], "gradcam"));
            Assert.Throws<ObjectDisposedException>(() => model.Predict(Photo("chelsea.png")));
            Assert.Throws<ObjectDisposedException>(() => model.Outputs(Photo("chelsea.png")));
            Assert.Throws<ObjectDisposedException>(() => _ = model.DeviceName);
            Assert.Throws<ObjectDisposedException>(() => _ = model.Layers);
            Assert.That(async () => await model.ExplainAsync(Photo("chelsea.png")), Throws.InstanceOf<ObjectDisposedException>());
        });
    }

    [Test]
    public void Overlay_options_pick_the_colormap_alpha_and_contour()
    {
        using var model = CamModel.Load(ModelPath, s_cpu);
        var result = model.Explain(Photo("chelsea.png"), "gradcam");

        Assert.That(result.ToOverlay(OverlayOptions.Default).Data, Is.EqualTo(result.ToOverlay().Data));
        Assert.That(result.ToOverlay(new OverlayOptions { Alpha = 0.3f }).Data, Is.EqualTo(result.ToOverlay(0.3f).Data));
        var viridis = result.ToOverlay(new OverlayOptions { Colormap = ColormapKind.Viridis, ContourPercent = 20, View = OverlayView.Crop });
        Assert.That((viridis.Width, viridis.Height), Is.EqualTo((result.Image!.Width, result.Image.Height)));
        Assert.That(viridis.Data, Is.Not.EqualTo(result.ToOverlay().Data));
        string png = Path.Combine(Path.GetTempPath(), $"camengine-overlay-{Guid.NewGuid():N}.png");
        try
        {
            result.SaveOverlayPng(png, new OverlayOptions { Colormap = ColormapKind.Turbo });
            Assert.That(ImageDecoder.Load(png).Data,
                Is.EqualTo(result.ToOverlay(new OverlayOptions { Colormap = ColormapKind.Turbo }).Data));
        }
        finally
        {
            File.Delete(png);
        }
    }
}
