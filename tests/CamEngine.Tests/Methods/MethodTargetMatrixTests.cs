using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// Every method against every kind of target on the tiny bundled-style model (issue 18): each pair either gives a
/// finite map at input resolution or is refused with <see cref="UnsupportedTargetException"/>, and a refusal is
/// exactly what <see cref="CamMethod.CheckTarget"/> predicts without running anything. Finer-CAM with an embedding
/// target used to throw IndexOutOfRangeException. The vision-transformer methods run on the small ViT fixture
/// instead (the same targets over its 10 outputs), and must refuse the CNNs by <see cref="MethodNotApplicableException"/>.
/// </summary>
[TestFixture]
public sealed class MethodTargetMatrixTests
{
    private static readonly string[] s_kinds = ["top1", "index", "top2", "softmax", "per-image", "similar", "cosine"];

    private static IEnumerable<TestCaseData> Pairs() =>
        from m in MethodCatalog.All from k in s_kinds select new TestCaseData(m.Name, k).SetName($"{m.Name} x {k}");

    private static IEnumerable<TestCaseData> MaskPairs() =>
        MethodCatalog.All.Select(m => new TestCaseData(m.Name).SetName($"{m.Name} x mask"));

    private static Target TargetOf(string kind, int outputs = 5) => kind switch
    {
        "top1" => Target.Top1,
        "index" => Target.Class(3),
        "top2" => Target.TopK(2),
        "softmax" => Target.Softmax(),
        "per-image" => Target.PerImage([1, 4]),
        "similar" => Target.Similarity(Reference(outputs), cosine: false),
        "cosine" => Target.Similarity(Reference(outputs), cosine: true),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static float[] Reference(int outputs) =>
        Enumerable.Range(0, outputs).Select(i => new[] { 0.5f, -1f, 0.25f, 2f, 1f }[i % 5]).ToArray();

    private static ModelFile? s_vit;

    /// <summary>The small torchvision ViT of the transformer fixtures (3x32x32 input, 10 outputs).</summary>
    private static ModelFile Vit => s_vit ??= CamEngine.Onnx.OnnxConverter.ConvertFile(Path.Combine(FixturePaths.Root, "transformers", "vit.opset17.onnx"));

    /// <summary>Small settings so the perturbation and sampling methods stay quick on the 8x8 model.</summary>
    private static CamMethod Quick(string name)
    {
        var method = MethodCatalog.Get(name);
        var keys = method.Parameters.Select(p => p.Key).ToHashSet();
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        // Occlusion's default 16-pixel window is for photos: on the 8x8 input it is refused as larger than the image.
        foreach (var (key, value) in new[] { ("samples", "3"), ("steps", "3"), ("iterations", "3"), ("masks", "16"), ("window", "4"), ("stride", "2") })
        {
            if (keys.Contains(key))
                settings[key] = value;
        }
        return method.WithParameters(settings);
    }

    private static HostTensor Input(int images, int seed, int side = 8)
    {
        var rng = new Random(seed);
        var input = new HostTensor(images, 3, side, side);
        for (int i = 0; i < input.Length; i++)
            input.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        return input;
    }

    private static void RunPair(ModelFile file, CamMethod method, Target target, int images)
    {
        using var model = DeviceModel.Load(file, TestDevice.Cpu);
        var explainer = new Explainer(model);
        int side = file.Graph.InputShape[1];
        string[] layers = method is TransformerMethod ? [] : ["/relu/Relu_output_0"];
        var options = new ExplainOptions { Target = target, Layers = layers, PerturbationBatch = 8 };
        string? predicted = null;
        try
        {
            method.CheckTarget(target);
        }
        catch (UnsupportedTargetException e)
        {
            predicted = e.Message;
        }
        IReadOnlyList<Explanation> maps;
        try
        {
            maps = explainer.Explain(Input(images, 7, side), method, options);
        }
        catch (UnsupportedTargetException e)
        {
            Assert.That(predicted, Is.EqualTo(e.Message), "the explainer refuses exactly what CheckTarget predicts");
            Assert.That(e.Message, Does.Contain(method.Name).And.Contain(target.ToString()));
            return;
        }
        Assert.That(predicted, Is.Null, "CheckTarget refused a pair the explainer ran");
        Assert.That(maps, Is.Not.Empty);
        foreach (var e in maps)
        {
            Assert.That(e.Map.Shape[^2..], Is.EqualTo(new[] { side, side }), $"{method.Name} map shape");
            Assert.That(e.Map.Data.All(float.IsFinite), Is.True, $"{method.Name} map is finite");
            Assert.That(e.Image, Is.InRange(0, images - 1));
        }
    }

    [TestCaseSource(nameof(Pairs))]
    public void Method_gives_a_map_or_refuses_the_target_by_name(string method, string kind)
    {
        var m = Quick(method);
        if (m is TransformerMethod)
        {
            Assert.That(() => m.CheckModel(TinyModel.Create().Graph, []), Throws.TypeOf<MethodNotApplicableException>());
            RunPair(Vit, m, TargetOf(kind, outputs: 10), images: 2);
            return;
        }
        RunPair(TinyModel.Create(), m, TargetOf(kind), images: 2);
    }

    [TestCaseSource(nameof(MaskPairs))]
    public void Method_with_a_mask_target_on_a_segmentation_model(string method)
    {
        var mask = new float[64];
        for (int j = 0; j < 64; j++)
            mask[j] = j % 8 < 4 ? 1 : 0;
        var m = Quick(method);
        if (m is TransformerMethod)
        {
            // No vision transformer here: refused as such before any work, whatever the target.
            using var segmentation = DeviceModel.Load(TinyModel.Segmentation(), TestDevice.Cpu);
            Assert.That(() => new Explainer(segmentation).Explain(Input(1, 7), m,
                    new ExplainOptions { Target = Target.Mask(1, mask) }),
                Throws.TypeOf<MethodNotApplicableException>().With.Message.StartsWith(m.Name + " cannot explain this model"));
            return;
        }
        RunPair(TinyModel.Segmentation(), m, Target.Mask(1, mask), images: 1);
    }

    [Test]
    public void Finercam_refuses_embedding_targets_before_any_work()
    {
        // A model that cannot run: were any work done, the forward pass would fail first.
        var e = Assert.Throws<UnsupportedTargetException>(() => new FinerCam().CheckTarget(TargetOf("cosine")))!;
        Assert.That(e.Message, Does.StartWith("finercam").And.Contain("cosine"));
        using var model = DeviceModel.Load(TinyModel.Create(), TestDevice.Cpu);
        var explainer = new Explainer(model);
        var bad = Input(1, 1);
        bad.Data[0] = float.NaN; // the explainer's input check would refuse this: the target check comes first
        Assert.That(() => explainer.Explain(bad, [new GradCam(), new FinerCam()], new ExplainOptions { Target = TargetOf("similar") }),
            Throws.TypeOf<UnsupportedTargetException>().With.Message.StartsWith("finercam"));
    }

    [Test]
    public void A_target_that_does_not_fit_the_output_is_refused_before_any_work()
    {
        using var model = DeviceModel.Load(TinyModel.Create(), TestDevice.Cpu);
        var explainer = new Explainer(model);
        var bad = Input(1, 1);
        bad.Data[0] = float.NaN; // the input check would refuse this: the target checks come first
        var cases = new (Target Target, string Message)[]
        {
            (Target.Mask(1, new float[64]), "a mask target needs an (N, K, H, W) output; the model outputs (N, 5)"),
            (Target.Class(5), "target class 5 is out of range: the model has 5 outputs"),
            (Target.TopK(6), "top-6 asks for more classes than the model's 5 outputs"),
            (Target.Similarity([1f, 2f], cosine: true), "the reference embedding has 2 values but the model outputs 5 per image"),
        };
        foreach (var (target, message) in cases)
        {
            Assert.That(() => explainer.Explain(bad, new GradCam(), new ExplainOptions { Target = target }),
                Throws.TypeOf<CamEngineException>().With.Message.EqualTo(message), target.ToString());
        }
    }
}
