using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Onnx;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// Attention rollout, LeGrad and ViT Recipro-CAM on the small torchvision ViT of
/// tools/fixtures/make_transformer_fixtures.py (2 blocks, 2 heads, 17 tokens), against the direct PyTorch
/// implementations in tools/fixtures/make_vit_method_fixtures.py (vit-explain's rollout with rows normalized,
/// TorchCAM's LeGrad arithmetic, OpenVINO XAI's ViTReciproCAM mosaic), two images of one batch, at both exported
/// opsets (17 has LayerNormalization nodes, 13 the decomposed form), raw (h, w) maps.
/// </summary>
[TestFixture]
public sealed class TransformerMethodTests
{
    private const double Tol = 1e-4;

    private static Dictionary<string, HostTensor>? s_refs;

    private static Dictionary<string, HostTensor> Refs =>
        s_refs ??= Npz.Read(Path.Combine(FixturePaths.Root, "vitmethods", "vit.npz"));

    private static DeviceModel Load(int opset, Backend b) =>
        DeviceModel.Load(OnnxConverter.ConvertFile(Path.Combine(FixturePaths.Root, "transformers", $"vit.opset{opset}.onnx")), b);

    private static float[] Explain(DeviceModel model, CamMethod method, int batch = 32)
    {
        var input = Refs["input"];
        var e = new Explainer(model).Explain(input, method, new ExplainOptions { PerturbationBatch = batch });
        Assert.That(e, Has.Count.EqualTo(2));
        var classes = Refs["classes"].Data;
        var raw = new List<float>();
        for (int i = 0; i < 2; i++)
        {
            Assert.That(e[i].TargetClass, Is.EqualTo((int)classes[i]), $"top-1 class of image {i}");
            Assert.That(e[i].Raw.Shape, Is.EqualTo(new[] { 4, 4 }));
            Assert.That(e[i].Map.Shape, Is.EqualTo(new[] { 32, 32 }));
            Assert.That(e[i].Map.Data.Max(), Is.EqualTo(1f).Within(1e-6), "the map is normalized");
            raw.AddRange(e[i].Raw.Data);
        }
        return raw.ToArray();
    }

    private static void Check(float[] actual, float[] expected, double tol, string what) =>
        TestContext.Out.WriteLine($"{what}: max error {MethodFixtures.AssertClose(actual, expected, tol, what):G3} of the largest value");

    public static IEnumerable<TestCaseData> Opsets() =>
        new[] { 13, 17 }.Select(o => new TestCaseData(o).SetArgDisplayNames($"opset{o}"));

    [TestCaseSource(nameof(Opsets))]
    public void Structure_is_found_at_both_opsets(int opset)
    {
        using var model = Load(opset, TestDevice.Cpu);
        var vit = VitStructure.Of(model.Graph, "test");
        Assert.That(vit.Blocks, Has.Count.EqualTo(2));
        Assert.That((vit.Tokens, vit.Channels, vit.Heads), Is.EqualTo((17, 16, 2)));
        Assert.That(vit.GridSide(1, "test"), Is.EqualTo(4));
        foreach (var b in vit.Blocks)
        {
            Assert.That(b.AttentionInput, Is.Not.EqualTo(b.Input), "ln_1 sits between the block input and Q/K/V");
            Assert.That(b.Output, Is.Not.EqualTo(b.Input));
        }
        Assert.That(vit.Blocks[1].Input, Is.EqualTo(vit.Blocks[0].Output), "block 2 reads block 1's output");
        Assert.Throws<CamEngineException>(() => vit.GridSide(2, "test"), "15 patches are not a square");
    }

    [TestCaseSource(nameof(Opsets))]
    public void Attention_rollout_matches_the_reference(int opset)
    {
        using var model = Load(opset, TestDevice.Ilgpu);
        foreach (var (key, p) in new[]
                 {
                     ("rollout_mean_0.9", ""), ("rollout_max_0.5", "head_fusion=max,discard_ratio=0.5"),
                     ("rollout_min_0", "head_fusion=min,discard_ratio=0"),
                 })
        {
            var method = MethodCatalog.WithParameters([new AttentionRollout()], p)[0];
            Check(Explain(model, method), Refs[key].Data, Tol, $"opset {opset} {key}");
        }
    }

    [TestCaseSource(nameof(Opsets))]
    public void LeGrad_matches_the_reference(int opset)
    {
        using var model = Load(opset, TestDevice.Ilgpu);
        Check(Explain(model, new LeGrad()), Refs["legrad"].Data, 1e-3, $"opset {opset} legrad");
        var last = MethodCatalog.WithParameters([new LeGrad()], "blocks=1")[0];
        Check(Explain(model, last), Refs["legrad_last"].Data, 1e-3, $"opset {opset} legrad blocks=1");
    }

    [TestCaseSource(nameof(Opsets))]
    public void Vit_recipro_cam_matches_the_reference(int opset)
    {
        using var model = Load(opset, TestDevice.Ilgpu);
        // Batches of 5 do not divide the 32 copies, so the last batch is partial and mixes the two images.
        Check(Explain(model, new VitReciproCam(), batch: 5), Refs["vitrecipro"].Data, Tol, $"opset {opset} vit-reciprocam");
        var plain = MethodCatalog.WithParameters([new VitReciproCam()], "gaussian=false")[0];
        Check(Explain(model, plain), Refs["vitrecipro_plain"].Data, Tol, $"opset {opset} gaussian=false");
        var k2 = MethodCatalog.WithParameters([new VitReciproCam()], "block=2")[0];
        Check(Explain(model, k2), Refs["vitrecipro_k2"].Data, Tol, $"opset {opset} block=2");
    }

    [Test]
    public void Methods_refuse_a_cnn_and_swin_before_any_work()
    {
        using var cnn = DeviceModel.Load(FixtureData.ModelFor("tiny_gapcnn"), TestDevice.Cpu);
        using var swin = DeviceModel.Load(
            OnnxConverter.ConvertFile(Path.Combine(FixturePaths.Root, "transformers", "swin.opset17.onnx")), TestDevice.Cpu);
        foreach (var method in new CamMethod[] { new AttentionRollout(), new LeGrad(), new VitReciproCam() })
        {
            var e = Assert.Throws<MethodNotApplicableException>(() =>
                new Explainer(cnn).Explain(Npy.Read(FixturePaths.Input("chelsea")), method))!;
            Assert.That(e.Message, Does.StartWith($"{method.Name} cannot explain this model: the model has no self-attention"));
            var input = new HostTensor([1, .. swin.Graph.InputShape], new float[swin.Graph.InputShape.Aggregate(1, (a, d) => a * d)]);
            e = Assert.Throws<MethodNotApplicableException>(() => new Explainer(swin).Explain(input, method))!;
            Assert.That(e.Message, Does.Contain("Swin"), e.Message);
        }
    }

    [Test]
    public void Parameters_are_checked()
    {
        Assert.That(() => MethodCatalog.WithParameters([new AttentionRollout()], "discard_ratio=1"),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("below 1"));
        Assert.That(() => MethodCatalog.WithParameters([new AttentionRollout()], "head_fusion=median"),
            Throws.TypeOf<CamEngineException>());
        Assert.That(() => MethodCatalog.WithParameters([new VitReciproCam()], "gaussian=maybe"),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("true or false"));
        using var model = Load(17, TestDevice.Cpu);
        var tooMany = MethodCatalog.WithParameters([new LeGrad()], "blocks=3")[0];
        Assert.That(() => new Explainer(model).Explain(Refs["input"], tooMany),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("the model has 2 blocks"));
    }
}
