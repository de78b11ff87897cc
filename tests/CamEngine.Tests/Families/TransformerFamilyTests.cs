using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// Width-reduced torchvision VisionTransformer and SwinTransformer (tools/fixtures/make_transformer_fixtures.py: the
/// families' own classes with fewer layers and narrower dims, so the same operators and graph structure as vit_b_16
/// and swin_t), exported by PyTorch at opsets 13 and 17: each converts (its shape arithmetic folded, the batch
/// tracked through MultiheadAttention's batch-second transposes and Swin's window reshapes), and on the ILGPU CPU
/// accelerator reproduces PyTorch's logits (1e-4 relative), the input gradient of the top-1 logit, and the raw
/// activation and gradient at the layer users pick (1e-3 of their largest magnitude): ViT's last ln_1 as tokens
/// (1+h*w, C), Swin's norm channels-last (h, w, C).
/// </summary>
[TestFixture]
public sealed class TransformerFamilyTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "transformers");

    private const string VitLayer = "encoder.layers.encoder_layer_1.ln_1";
    private const string VitFullLayer = "encoder.layers.encoder_layer_11.ln_1";
    private const string SwinLayer = "norm";

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (name, layer) in new[] { ("vit", VitLayer), ("swin", SwinLayer) })
        {
            foreach (int opset in new[] { 13, 17 })
                yield return new TestCaseData(name, opset, layer).SetName($"Transformer_{name}_opset{opset}_matches_PyTorch");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Transformer_matches_PyTorch(string name, int opset, string layer) =>
        Check(Dir, name, opset, layer, TestDevice.Ilgpu);

    /// <summary>
    /// vit_b_16 and swin_t at full size (make_transformer_fixtures.py DIR --full writes NAME.full.*, 224x224, too
    /// large to commit), on the managed CPU backend; run explicitly with CAMENGINE_FULL_FAMILIES naming the folder.
    /// </summary>
    [Explicit("needs the full-size exports: make_transformer_fixtures.py DIR --full, then CAMENGINE_FULL_FAMILIES=DIR")]
    [TestCase("vit", 17, VitFullLayer)]
    [TestCase("swin", 17, SwinLayer)]
    public void Full_size_transformer_matches_PyTorch(string name, int opset, string layer)
    {
        string? dir = Environment.GetEnvironmentVariable("CAMENGINE_FULL_FAMILIES");
        if (dir == null || !File.Exists(Path.Combine(dir, $"{name}.full.npz")))
            Assert.Ignore("CAMENGINE_FULL_FAMILIES does not name a folder with the full-size exports");
        Check(dir, name + ".full", opset, layer, TestDevice.Cpu);
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

        var refAct = refs["layer_act"];
        var refGrad = refs["layer_grad"];
        Assert.That(layer.Shape, Is.EqualTo(refAct.Shape[1..]), $"layer '{layerName}' has PyTorch's raw shape");
        var act = b.Download(pass[layer.Output]);
        var grad = b.Download(grads.Layers[layer.Output]);
        double amax = refAct.Data.Max(v => Math.Abs((double)v)), lgmax = refGrad.Data.Max(v => Math.Abs((double)v));
        Assert.That(lgmax, Is.GreaterThan(0), "the reference layer gradient is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: layer activation error {MaxError(act, refAct.Data) / amax:G3}, "
            + $"layer gradient error {MaxError(grad, refGrad.Data) / lgmax:G3} of their max");
        TensorAssert.Close(act, refAct.Data, 1e-4 * amax, 1e-4, $"{name} opset {opset} activation at {layerName}");
        TensorAssert.Close(grad, refGrad.Data, 1e-3 * lgmax, 1e-3, $"{name} opset {opset} gradient at {layerName}");
    }

    private static double MaxError(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();
}
