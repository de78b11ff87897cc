using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// One exported family (tools/fixtures/family_export.py wrote NAME.npz and NAME.opsetNN.onnx) against PyTorch: it
/// converts, and reproduces the logits (1e-4 of the largest), the input gradient of the top-1 logit, the raw
/// activation (1e-4) and gradient (1e-3) at the layer users pick, and pytorch-grad-cam's Grad-CAM there (1e-3),
/// computed on the (C, h, w) grid that <c>--layout auto</c> reads from the graph (ViT tokens without the class token,
/// Swin channels last, CNNs as they are): so the test also proves the automatic layout of every family.
/// </summary>
internal static class FamilyCheck
{
    public static void Check(string dir, string name, int opset, string layerName, Backend b, LayerLayoutKind expectedLayout)
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
        Assert.That(layer.Shape, Is.EqualTo(refAct.Shape[1..]), $"layer '{layerName}' resolves to {layer.Output} with PyTorch's raw shape");
        var act = b.Download(pass[layer.Output]);
        var grad = b.Download(grads.Layers[layer.Output]);
        double amax = refAct.Data.Max(v => Math.Abs((double)v)), lgmax = refGrad.Data.Max(v => Math.Abs((double)v));
        Assert.That(lgmax, Is.GreaterThan(0), "the reference layer gradient is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: layer activation error {MaxError(act, refAct.Data) / amax:G3}, "
            + $"layer gradient error {MaxError(grad, refGrad.Data) / lgmax:G3} of their max");
        TensorAssert.Close(act, refAct.Data, 1e-4 * amax, 1e-4, $"{name} opset {opset} activation at {layerName}");
        TensorAssert.Close(grad, refGrad.Data, 1e-3 * lgmax, 1e-3, $"{name} opset {opset} gradient at {layerName}");

        // pytorch-grad-cam's Grad-CAM, ReLU(sum_k mean_ij(g_k) a_k), on the grid --layout auto decides.
        var reading = LayerLayouts.Of(file.Graph).Read(layer, LayerLayout.Auto);
        TestContext.Out.WriteLine($"{name} opset {opset}: layer {layer.Output} read as {reading.Describe()}");
        Assert.That(reading.Layout.Kind, Is.EqualTo(expectedLayout), $"--layout auto at {layerName}");
        var grid = new LayerGrid(layer, reading);
        var a = grid.ToGrid(act);
        var g = grid.ToGrid(grad);
        int k = reading.Channels, plane = reading.Height * reading.Width;
        var cam = new double[plane];
        for (int c = 0; c < k; c++)
        {
            double w = 0;
            for (int p = 0; p < plane; p++)
                w += g[c * plane + p];
            w /= plane;
            for (int p = 0; p < plane; p++)
                cam[p] += w * a[c * plane + p];
        }
        var map = cam.Select(v => (float)Math.Max(v, 0)).ToArray();
        var refMap = refs["gradcam"].Data;
        double mmax = refMap.Max(v => Math.Abs((double)v));
        Assert.That(mmax, Is.GreaterThan(0), "the reference Grad-CAM map is not all zero");
        TestContext.Out.WriteLine($"{name} opset {opset}: Grad-CAM map max abs error {MaxError(map, refMap) / mmax:G3} of its max");
        TensorAssert.Close(map, refMap, 1e-3 * mmax, 1e-3, $"{name} opset {opset} Grad-CAM at {layerName}");
    }

    private static double MaxError(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();
}
