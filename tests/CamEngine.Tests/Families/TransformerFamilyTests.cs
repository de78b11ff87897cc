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
    [TestCase("vit", 13, VitFullLayer)]
    [TestCase("vit", 17, VitFullLayer)]
    [TestCase("swin", 13, SwinLayer)]
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

        // pytorch-grad-cam's Grad-CAM on its reshape_transform grid, from the raw layer: ViT drops the class token
        // and reads the tokens as a square grid; Swin's layer is channels-last already. Both (h*w, C) row-major.
        int c = layer.Shape[^1];
        int skip = name.StartsWith("vit", StringComparison.Ordinal) ? 1 : 0;
        int plane = act.Length / c - skip;
        var cam = new double[plane];
        for (int k = 0; k < c; k++)
        {
            double w = 0;
            for (int p = 0; p < plane; p++)
                w += grad[(p + skip) * c + k];
            w /= plane;
            for (int p = 0; p < plane; p++)
                cam[p] += w * act[(p + skip) * c + k];
        }
        var map = cam.Select(v => (float)Math.Max(v, 0)).ToArray();
        var refMap = refs["gradcam"].Data;
        double mmax = refMap.Max(v => Math.Abs((double)v));
        Assert.That(mmax, Is.GreaterThan(0), "the reference Grad-CAM map is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: Grad-CAM map max abs error {MaxError(map, refMap) / mmax:G3} of its max");
        TensorAssert.Close(map, refMap, 1e-3 * mmax, 1e-3, $"{name} opset {opset} Grad-CAM at {layerName}");
    }

    /// <summary>
    /// The export is traced at batch 1, where the batch is invisible in the reshape targets (MultiheadAttention's
    /// <c>(L, N * heads, d)</c>, Swin's <c>(N * windows, ws * ws, C)</c>); the converter decides where it sits. Two
    /// different images in one batch must give each image's own logits and input gradient.
    /// </summary>
    [TestCase("vit", 17)]
    [TestCase("swin", 17)]
    [TestCase("vit", 13)]
    public void A_batch_of_two_images_gives_each_its_own_result(string name, int opset)
    {
        var b = TestDevice.Ilgpu;
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset{opset}.onnx"));
        var refs = Npz.Read(Path.Combine(Dir, name + ".npz"));
        using var model = DeviceModel.Load(file, b);
        var one = refs["input"].Data;
        var other = one.Select((v, i) => 0.7f * one[(i * 7 + 3) % one.Length] - 0.2f * v).ToArray();
        float[][] Single(float[] image)
        {
            using var t = b.Upload(image, refs["input"].Shape);
            using var p = model.Forward(t);
            var l = b.Download(p.Output);
            var s = new float[l.Length];
            s[Array.IndexOf(l, l.Max())] = 1f;
            using var st = b.Upload(s, p.Output.Shape);
            using var g = model.Backward(p, st, new BackwardRequest { Input = true });
            return [l, b.Download(g.Input!), s];
        }
        var r0 = Single(one);
        var r1 = Single(other);
        int[] shape = [2, .. refs["input"].Shape[1..]];
        using var x = b.Upload([.. one, .. other], shape);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        Assert.That(r0[0], Is.Not.EqualTo(r1[0]), "the two images have different logits");
        TensorAssert.Close(logits, [.. r0[0], .. r1[0]], 1e-5, 1e-4, $"{name} batch-of-2 logits");
        using var seed = b.Upload([.. r0[2], .. r1[2]], pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Input = true });
        var dx = b.Download(grads.Input!);
        double gmax = r0[1].Concat(r1[1]).Max(v => Math.Abs((double)v));
        TensorAssert.Close(dx, [.. r0[1], .. r1[1]], 1e-4 * gmax, 1e-4, $"{name} batch-of-2 input gradients");
    }

    private static double MaxError(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();
}
