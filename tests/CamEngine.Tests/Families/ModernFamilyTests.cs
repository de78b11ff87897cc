using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// Width-reduced torchvision MNASNet, ShuffleNetV2 and ConvNeXt (tools/fixtures/make_modern_family_fixtures.py: the
/// families' own classes with fewer channels and blocks, so the same operators and graph structure), exported by
/// PyTorch at two opsets (ConvNeXt at 13, where LayerNorm is decomposed into ReduceMean/Sub/Pow/Sqrt/Div, and at 17,
/// where it is one LayerNormalization): each converts and, on the ILGPU CPU accelerator, matches PyTorch
/// (<see cref="FamilyCheck"/>). The full-size models: <see cref="FullSizeFamilyTests"/>.
/// </summary>
[TestFixture]
public sealed class ModernFamilyTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "families");

    public static IEnumerable<TestCaseData> Cases()
    {
        (string Name, int[] Opsets, string Layer)[] families =
        [
            ("mnasnet", [11, 17], "layers"), ("shufflenet_v2", [11, 17], "conv5"), ("convnext", [13, 17], "features"),
        ];
        foreach (var (name, opsets, layer) in families)
        {
            foreach (int opset in opsets)
                yield return new TestCaseData(name, opset, layer).SetName($"Family_{name}_opset{opset}_matches_PyTorch");
        }
    }

    /// <summary>The depthwise families (MNASNet's 3x3/5x5 and ConvNeXt's 7x7 depthwise convs) on the managed CPU backend.</summary>
    [TestCase("mnasnet", 17, "layers")]
    [TestCase("convnext", 17, "features")]
    public void Depthwise_family_matches_PyTorch_on_the_managed_cpu(string name, int opset, string layerName) =>
        FamilyCheck.Check(Dir, name, opset, layerName, TestDevice.Cpu, LayerLayoutKind.Nchw);

    [TestCaseSource(nameof(Cases))]
    public void Family_matches_PyTorch(string name, int opset, string layerName) =>
        FamilyCheck.Check(Dir, name, opset, layerName, TestDevice.Ilgpu, LayerLayoutKind.Nchw);

    [TestCase("mnasnet", 17, "layers")]
    [TestCase("shufflenet_v2", 17, "conv5")]
    [TestCase("convnext", 17, "features")]
    [TestCase("convnext", 13, "features")]
    public void The_suggested_layer_is_the_one_users_pick_and_never_channels_last(string name, int opset, string layer)
    {
        var g = OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset{opset}.onnx")).Graph;
        var suggested = g.SuggestedLayers().ToList();
        Assert.That(suggested.First(), Is.EqualTo(g.ResolveLayer(layer).Output));
        Assert.That(g.DefaultTargetLayer().Output, Is.EqualTo(g.ResolveLayer(layer).Output));
        // Inside a ConvNeXt block the tensors between the two transposes are (N, H, W, C): none is suggested.
        foreach (var n in g.Nodes.Where(n => n.Op is Ops.LayerNorm or Ops.MatMul or Ops.Erf))
            Assert.That(suggested, Does.Not.Contain(n.Output), n.Name);
        if (name == "convnext")
            Assert.That(g.Nodes.Count(n => n.Op is Ops.MatMul && !g.IsChannelsFirst(n.Output)), Is.EqualTo(g.Nodes.Count(n => n.Op is Ops.MatMul)));
    }

    [Test]
    public void ConvNeXt_opset17_keeps_LayerNormalization_as_one_op_and_opset13_is_fused_to_it()
    {
        var g17 = OnnxConverter.ConvertFile(Path.Combine(Dir, "convnext.opset17.onnx")).Graph;
        var g13 = OnnxConverter.ConvertFile(Path.Combine(Dir, "convnext.opset13.onnx")).Graph;
        var raw13 = OnnxConverter.ConvertFile(Path.Combine(Dir, "convnext.opset13.onnx"), new OnnxConvertOptions { FuseDecomposedOperators = false }).Graph;
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.LayerNorm), Is.GreaterThan(0));
        Assert.That(g13.Nodes.Count(n => n.Op == Ops.LayerNorm), Is.EqualTo(g17.Nodes.Count(n => n.Op == Ops.LayerNorm)));
        Assert.That(raw13.Nodes.Count(n => n.Op == Ops.LayerNorm), Is.Zero);
        Assert.That(raw13.Nodes.Count(n => n.Op == Ops.ReduceMean), Is.GreaterThan(0));
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.Transpose), Is.GreaterThan(0));
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.MatMul), Is.GreaterThan(0));
    }
}
