using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// One exported family (tools/fixtures/family_export.py wrote NAME.npz and NAME.opsetNN.onnx) against PyTorch: it
/// converts, and reproduces the logits (1e-4 of the largest), the input gradient of the top-1 logit (1e-3), the raw
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
        var failures = new List<string>();
        string label = $"{name} opset {opset}";
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(refs["input"]);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        Compare(refs, "logits", logits, 1e-4, label, failures);

        var expected = refs["logits"].Data;
        int top1 = Array.IndexOf(expected, expected.Max());
        var seed = new float[logits.Length];
        seed[top1] = 1f;
        var layer = file.Graph.ResolveLayer(layerName);
        using var seedTensor = b.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true, Layers = [layer.Output] });
        Compare(refs, "input_grad", b.Download(grads.Input!), 1e-3, label, failures);

        var refAct = refs["layer_act"];
        Assert.That(layer.Shape, Is.EqualTo(refAct.Shape[1..]), $"layer '{layerName}' resolves to {layer.Output} with PyTorch's raw shape");
        var act = b.Download(pass[layer.Output]);
        var grad = b.Download(grads.Layers[layer.Output]);
        Compare(refs, "layer_act", act, 1e-4, label, failures);
        Compare(refs, "layer_grad", grad, 1e-3, label, failures);

        // pytorch-grad-cam's Grad-CAM, ReLU(sum_k mean_ij(g_k) a_k), on the grid --layout auto decides.
        var reading = LayerLayouts.Of(file.Graph).Read(layer, LayerLayout.Auto);
        TestContext.Out.WriteLine($"{label}: layer {layer.Output} read as {reading.Describe()}");
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
        Compare(refs, "gradcam", cam.Select(v => (float)Math.Max(v, 0)).ToArray(), 1e-3, label, failures);
        Assert.That(failures, Is.Empty, string.Join("; ", failures));
    }

    /// <summary>
    /// The engine's values against PyTorch's, as max |difference| over the reference's max |value|. With a float64
    /// reference (<c>KEY64</c>, the full-size exports) the engine is held to the exact values within
    /// <paramref name="tolerance"/>, or within twice PyTorch's own float32 error or twice the values' conditioning
    /// (<c>KEY_sensitivity</c>: how far the float64 values move under a 1e-6 relative input change): at full size a
    /// float32 forward puts some ReLU inputs and max-pool ties on the other side of their kink, so two float32 runs
    /// can disagree by more than rounding, and neither is the reference of the other.
    /// </summary>
    private static void Compare(Dictionary<string, HostTensor> refs, string key, float[] actual, double tolerance, string label, List<string> failures)
    {
        var ref32 = refs[key].Data;
        Assert.That(actual, Has.Length.EqualTo(ref32.Length), $"{label} {key} length");
        if (refs.TryGetValue(key + "64", out var ref64))
        {
            double scale = ref64.Data.Max(v => Math.Abs((double)v));
            Assert.That(scale, Is.GreaterThan(0), $"{label}: the reference {key} is not all zero");
            double engine = MaxError(actual, ref64.Data) / scale, torch = MaxError(ref32, ref64.Data) / scale;
            double moved = refs.TryGetValue(key + "_sensitivity", out var sens) ? sens.Data[0] : 0;
            TestContext.Out.WriteLine($"{label}: {key} error against float64 PyTorch {engine:G3} of its max "
                + $"(PyTorch float32: {torch:G3}; float64 under a 1e-6 input change: {moved:G3})");
            if (!(engine <= Math.Max(tolerance, 2 * Math.Max(torch, moved))))
                failures.Add($"{key}: {engine:G3} > max({tolerance:G3}, 2 x max(PyTorch float32's {torch:G3}, the 1e-6 sensitivity {moved:G3}))");
            return;
        }
        double max = ref32.Max(v => Math.Abs((double)v));
        Assert.That(max, Is.GreaterThan(0), $"{label}: the reference {key} is not all zero");
        double error = MaxError(actual, ref32) / max;
        TestContext.Out.WriteLine($"{label}: {key} error {error:G3} of its max");
        if (!(error <= tolerance))
            failures.Add($"{key}: {error:G3} > {tolerance:G3}");
    }

    private static double MaxError(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();
}
