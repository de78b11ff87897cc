using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// FullGrad and guided backprop against pytorch-grad-cam 1.5.5's own FullGrad and GuidedBackpropReLUModel run on
/// seeded models with non-trivial BatchNorm (tools/fixtures/make_fullgrad_guided_fixtures.py): a DenseNet with
/// pre-activation BN after Concat (bias terms no conv carries) and a final functional ReLU, a MobileNetV2 with
/// ReLU6 only (guided backprop is the plain gradient there), and a ResNet-style net with a conv bias followed by
/// BN (two pgc bias terms on one folded conv), a conv bias without BN and a BN without affine parameters (no term).
/// </summary>
[TestFixture]
public sealed class FullGradGuidedFixtureTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "fullgrad");

    /// <summary>Max abs difference of the FullGrad map (both in [0, 1]) and of guided backprop relative to its
    /// largest magnitude.</summary>
    internal static (double FullGrad, double Guided, int Target, int RefTarget, double Sensitivity) Compare(string onnx, string npz,
        CamEngine.Backends.Backend backend)
    {
        var refs = Npz.Read(npz);
        using var model = DeviceModel.Load(OnnxConverter.ConvertFile(onnx), backend);
        var input = refs["input"];
        var options = new ExplainOptions { Convention = Convention.PytorchGradCam };
        var r = new Explainer(model).Explain(input, [new FullGrad(), new GuidedBackprop()], options);
        var fg = r["fullgrad"][0];
        var gb = r["guided-backprop"][0];
        var expectedFg = refs["fullgrad"].Data;
        var expectedGb = refs["gbp"].Data;
        double fgDiff = fg.Map.Data.Zip(expectedFg, (a, b) => Math.Abs((double)a - b)).Max();
        double scale = expectedGb.Max(v => Math.Abs((double)v));
        double gbDiff = gb.Raw.Data.Zip(expectedGb, (a, b) => Math.Abs((double)a - b)).Max() / scale;
        double sensitivity = refs.TryGetValue("fullgrad_sensitivity", out var sens) ? sens.Data[0] : 0;
        return (fgDiff, gbDiff, fg.TargetClass, (int)refs["target"].Data[0], sensitivity);
    }

    [TestCase("tiny_densenet")]
    [TestCase("tiny_mobilenet")]
    [TestCase("tiny_resnet")]
    public void FullGrad_and_guided_backprop_match_pytorch_grad_cam(string name)
    {
        var (fg, gb, target, refTarget, _) = Compare(Path.Combine(Dir, name + ".onnx"), Path.Combine(Dir, name + ".npz"), TestDevice.Ilgpu);
        TestContext.Out.WriteLine($"{name}: fullgrad max|diff| {fg:E3}, guided max|diff|/max|ref| {gb:E3}");
        Assert.That(target, Is.EqualTo(refTarget), "target class");
        Assert.That(fg, Is.LessThan(1e-4), "fullgrad map");
        Assert.That(gb, Is.LessThan(1e-4), "guided backprop");
    }

    /// <summary>The full-size comparison (torchvision densenet121, mobilenet_v2, resnet50 with random seeded
    /// weights): set CAM_FULLGRAD_DIR to the output folder of
    /// <c>make_fullgrad_guided_fixtures.py --full DIR</c> and run explicitly. The FullGrad bound is 1e-3, or twice
    /// the map's own conditioning where that is larger: the fixture records how far pgc's float64 map moves when the
    /// input is scaled by (1 + 1e-6 noise), the relative error a float32 forward carries after a few dozen layers
    /// (on the seeded ResNet-50 that moves it by 2.0e-3 in a 28x28 corner, where per-channel min-max normalization
    /// of near-flat bias-gradient maps amplifies any difference).</summary>
    [Explicit("needs CAM_FULLGRAD_DIR from make_fullgrad_guided_fixtures.py --full")]
    [TestCase("densenet121")]
    [TestCase("mobilenet_v2")]
    [TestCase("resnet50")]
    public void Full_size_networks_match_pytorch_grad_cam(string name)
    {
        string dir = Environment.GetEnvironmentVariable("CAM_FULLGRAD_DIR") ?? throw new InconclusiveException("CAM_FULLGRAD_DIR unset");
        var (fg, gb, target, refTarget, sensitivity) = Compare(Path.Combine(dir, name + ".onnx"), Path.Combine(dir, name + ".npz"), TestDevice.Cpu);
        TestContext.Out.WriteLine($"FULLSIZE {name}: fullgrad max|diff| {fg:E3} (pgc's own map moves {sensitivity:E3} under a 1e-6 input change), guided max|diff|/max|ref| {gb:E3}");
        Assert.That(target, Is.EqualTo(refTarget), "target class");
        Assert.That(fg, Is.LessThan(Math.Max(1e-3, 2 * sensitivity)), "fullgrad map");
        Assert.That(gb, Is.LessThan(1e-3), "guided backprop");
    }

    /// <summary>The paper convention guides every ReLU, the functional one included: DenseNet's guided backprop
    /// is then the all-ReLU guided gradient and differs from pgc's, which leaves the final F.relu plain.</summary>
    [Test]
    public void Paper_convention_guides_every_relu_and_pgc_skips_the_functional_one()
    {
        var refs = Npz.Read(Path.Combine(Dir, "tiny_densenet.npz"));
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, "tiny_densenet.onnx"));
        Assert.That(GuidedBackprop.FunctionalRelus(file.Graph.Nodes), Is.EquivalentTo(new[] { "/Relu" }));
        var b = TestDevice.Ilgpu;
        using var model = DeviceModel.Load(file, b);
        var input = refs["input"];
        var paper = new Explainer(model).Explain(input, new GuidedBackprop(), new ExplainOptions { Convention = Convention.Paper })[0];
        using var x = b.Upload(input);
        using var pass = model.Forward(x);
        var seed = new float[pass.Output.Shape.Aggregate(1, (p, d) => p * d)];
        seed[paper.TargetClass] = 1f;
        using var seedTensor = b.Upload(seed, pass.Output.Shape);
        using var all = model.Backward(pass, seedTensor, new BackwardRequest { Input = true, ReluRule = CamEngine.Kernels.ReluRule.Guided });
        var expected = b.Download(all.Input!);
        double scale = expected.Max(v => Math.Abs((double)v));
        TensorAssert.Close(paper.Raw.Data, expected, 1e-6 * scale, 1e-4, "paper guided backprop = all-ReLU guided gradient");
        double fromPgc = paper.Raw.Data.Zip(refs["gbp"].Data, (p, q) => Math.Abs((double)p - q)).Max() / scale;
        Assert.That(fromPgc, Is.GreaterThan(1e-2), "the final ReLU's rule changes the map");
    }

    /// <summary>A BN folded into a conv that had its own bias is recorded as pgc's two terms.</summary>
    [Test]
    public void Folding_a_BatchNorm_into_a_biased_conv_records_both_bias_terms()
    {
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, "tiny_resnet.onnx"));
        var split = file.Graph.Nodes.Where(n => n.Attrs.ContainsKey(FoldedBiasTerms.ConvBias)).ToList();
        Assert.That(split.Select(n => n.Name), Is.EqualTo(new[] { "/conv1/Conv" }));
        Assert.That(split[0].Attrs[FoldedBiasTerms.BatchNormBias], Has.Length.EqualTo(8));
        var mobile = OnnxConverter.ConvertFile(Path.Combine(Dir, "tiny_mobilenet.onnx"));
        Assert.That(mobile.Graph.Nodes.Any(n => n.Attrs.ContainsKey(FoldedBiasTerms.ConvBias)), Is.False);
    }
}
