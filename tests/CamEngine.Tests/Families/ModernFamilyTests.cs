using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// Width-reduced torchvision MNASNet, ShuffleNetV2 and ConvNeXt (tools/fixtures/make_modern_family_fixtures.py: the
/// families' own classes with fewer channels and blocks, so the same operators and graph structure), exported by
/// PyTorch at two opsets (ConvNeXt at 13, where LayerNorm is decomposed into ReduceMean/Sub/Pow/Sqrt/Div, and at 17,
/// where it is one LayerNormalization): each converts, and on the ILGPU CPU accelerator reproduces PyTorch's logits
/// (1e-4 relative), the input gradient of the top-1 logit and the Grad-CAM map at the layer users pick (1e-3 of
/// their largest magnitude).
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
        Check(Dir, name, opset, layerName, TestDevice.Cpu);

    public static IEnumerable<TestCaseData> FullCases() =>
        Cases().Select(c => new TestCaseData(c.Arguments).SetName($"Full_size_{c.Arguments[0]}_opset{c.Arguments[1]}_matches_PyTorch"));

    [TestCaseSource(nameof(Cases))]
    public void Family_matches_PyTorch(string name, int opset, string layerName) =>
        Check(Dir, name, opset, layerName, TestDevice.Ilgpu);

    /// <summary>
    /// The full-size torchvision models (make_modern_family_fixtures.py --full writes NAME.full.*, 224x224, too large
    /// to commit), on the managed CPU backend; run explicitly with CAMENGINE_FULL_FAMILIES naming their folder.
    /// </summary>
    [Explicit("needs the full-size exports: make_modern_family_fixtures.py DIR --full, then CAMENGINE_FULL_FAMILIES=DIR")]
    [TestCaseSource(nameof(FullCases))]
    public void Full_size_family_matches_PyTorch(string name, int opset, string layerName)
    {
        string? dir = Environment.GetEnvironmentVariable("CAMENGINE_FULL_FAMILIES");
        if (dir == null || !File.Exists(Path.Combine(dir, $"{name}.full.npz")))
            Assert.Ignore("CAMENGINE_FULL_FAMILIES does not name a folder with the full-size exports");
        Check(dir, name + ".full", opset, layerName, TestDevice.Cpu);
    }

    private static void Check(string dir, string name, int opset, string layerName, Backend b)
    {
        var file = OnnxConverter.ConvertFile(Path.Combine(dir, $"{name}.opset{opset}.onnx"));
        var refs = Npz.Read(Path.Combine(dir, name + ".npz"));
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(refs["input"]);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        var expected = refs["logits"].Data;
        double scale = expected.Max(v => Math.Abs((double)v));
        TestContext.Out.WriteLine($"{name} opset {opset}: logits max abs error {MaxError(logits, expected):G3} (max |logit| {scale:G3})");
        TensorAssert.Close(logits, expected, 1e-4 * scale, 1e-4, $"{name} opset {opset} logits");

        int top1 = Array.IndexOf(expected, expected.Max());
        var seed = new float[logits.Length];
        seed[top1] = 1f;
        var layer = file.Graph.ResolveLayer(layerName);
        using var seedTensor = b.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true, Layers = [layer.Output] });

        var dx = b.Download(grads.Input!);
        var gx = refs["input_grad"].Data;
        double gmax = gx.Max(v => Math.Abs((double)v));
        Assert.That(gmax, Is.GreaterThan(0), "the reference gradient is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: input gradient max abs error {MaxError(dx, gx) / gmax:G3} of its max");
        TensorAssert.Close(dx, gx, 1e-3 * gmax, 1e-3, $"{name} opset {opset} input gradient");

        // Grad-CAM at the layer: ReLU(sum_k mean_ij(dy/dA_k) A_k), A (1, K, h, w).
        var act = b.Download(pass[layer.Output]);
        var grad = b.Download(grads.Layers[layer.Output]);
        var refAct = refs["layer_act"];
        Assert.That(layer.Shape, Is.EqualTo(refAct.Shape[1..]), $"layer '{layerName}' resolves to {layer.Output}");
        TensorAssert.Close(act, refAct.Data, 1e-4 * refAct.Data.Max(v => Math.Abs((double)v)), 1e-4, "layer activation");
        int k = layer.Shape[0], plane = layer.Shape[1] * layer.Shape[2];
        var cam = new double[plane];
        for (int c = 0; c < k; c++)
        {
            double w = 0;
            for (int p = 0; p < plane; p++)
                w += grad[c * plane + p];
            w /= plane;
            for (int p = 0; p < plane; p++)
                cam[p] += w * act[c * plane + p];
        }
        var map = cam.Select(v => (float)Math.Max(v, 0)).ToArray();
        var refMap = refs["gradcam"].Data;
        double mmax = refMap.Max(v => Math.Abs((double)v));
        Assert.That(mmax, Is.GreaterThan(0), "the reference Grad-CAM map is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: Grad-CAM map max abs error {MaxError(map, refMap) / mmax:G3} of its max");
        TensorAssert.Close(map, refMap, 1e-3 * mmax, 1e-3, $"{name} opset {opset} Grad-CAM at {layerName}");
    }

    private static double MaxError(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();

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
    public void ConvNeXt_opset17_keeps_LayerNormalization_as_one_op_and_opset13_decomposes_it()
    {
        var g17 = OnnxConverter.ConvertFile(Path.Combine(Dir, "convnext.opset17.onnx")).Graph;
        var g13 = OnnxConverter.ConvertFile(Path.Combine(Dir, "convnext.opset13.onnx")).Graph;
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.LayerNorm), Is.GreaterThan(0));
        Assert.That(g13.Nodes.Count(n => n.Op == Ops.LayerNorm), Is.Zero);
        Assert.That(g13.Nodes.Count(n => n.Op == Ops.ReduceMean), Is.GreaterThan(0));
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.Transpose), Is.GreaterThan(0));
        Assert.That(g17.Nodes.Count(n => n.Op == Ops.MatMul), Is.GreaterThan(0));
    }
}
