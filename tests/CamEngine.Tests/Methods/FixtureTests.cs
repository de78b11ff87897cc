using System.Text.Json;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// End to end against PyTorch: both fixture models converted from ONNX by our converter, run by our kernels
/// on each test device (ILGPU's CPU accelerator in CI, and the managed CPU backend), compared with the references that pytorch-grad-cam and
/// TorchCAM produced (fixtures/README.md): logits, activations and gradients at the target layers, the input
/// gradient, guided backprop, and the Grad-CAM maps raw and final, single layer and fused.
/// </summary>
[TestFixture]
public sealed class FixtureTests
{
    // Tensors: float32 against float32 computed in another summation order.
    private const double TensorAtol = 1e-5, TensorRtol = 1e-4;

    // Maps: compared after min-max normalizing both sides (fixtures/README.md: agree to 1e-3).
    private const double MapAtol = 1e-3;

    private static readonly Dictionary<string, ModelFile> s_models = [];

    private static ModelFile Model(string name)
    {
        lock (s_models)
        {
            if (!s_models.TryGetValue(name, out var m))
                s_models[name] = m = OnnxConverter.ConvertFile(FixturePaths.Onnx(name));
            return m;
        }
    }

    public static IEnumerable<TestCaseData> Cases() =>
        from d in new[] { "ilgpu", "cpu" }
        from m in FixturePaths.Models
        from i in FixturePaths.Images
        select new TestCaseData(m, i, d).SetName($"{m}_{i}_{d}");

    private sealed record Reference(NpzArchive Npz, string L0, string L1, int TargetClass)
    {
        public float[] this[string key] => Npz.Arrays[key].Data;
    }

    private static Reference LoadReference(string model, string image)
    {
        var npz = Npz.ReadAll(FixturePaths.Refs(model, image));
        using var meta = JsonDocument.Parse(npz.Strings["meta"][0]);
        var layers = meta.RootElement.GetProperty("target_layers");
        return new Reference(npz, layers.GetProperty("L0").GetString()!, layers.GetProperty("L1").GetString()!,
            meta.RootElement.GetProperty("target_class").GetInt32());
    }

    private static float[] MinMax(float[] v)
    {
        var r = (float[])v.Clone();
        CamEngine.Imaging.MapOps.MinMaxNormalize(r);
        return r;
    }

    [TestCaseSource(nameof(Cases))]
    public void Logits_activations_and_gradients_match_pytorch(string modelName, string image, string device)
    {
        var reference = LoadReference(modelName, image);
        var backend = TestDevice.Named(device);
        using var model = DeviceModel.Load(Model(modelName), backend);
        var input = Npy.Read(FixturePaths.Input(image));
        using var x = backend.Upload(input);
        using var pass = model.Forward(x);
        var logits = backend.Download(pass.Output);
        TensorAssert.Close(logits, reference["logits"], TensorAtol, TensorRtol, "logits");
        Assert.That(Target.Top1.Resolve(logits, 1)[0], Is.EqualTo(reference.TargetClass), "top-1 class");

        var seed = new float[logits.Length];
        seed[reference.TargetClass] = 1f;
        using var seedTensor = backend.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, seedTensor, new BackwardRequest
        {
            Layers = [reference.L0, reference.L1], Input = true,
        });
        foreach (var (key, layer) in new[] { ("L0", reference.L0), ("L1", reference.L1) })
        {
            TensorAssert.Close(backend.Download(pass[layer]), reference[$"{key}.act"], TensorAtol, TensorRtol, $"{key}.act");
            TensorAssert.Close(backend.Download(grads.Layers[layer]), reference[$"{key}.grad"], 1e-6, 1e-3, $"{key}.grad");
        }
        TensorAssert.Close(backend.Download(grads.Input!), reference["input_grad"], 1e-6, 1e-3, "input_grad");

        using var guided = model.Backward(pass, seedTensor, new BackwardRequest
        {
            Input = true, ReluRule = CamEngine.Kernels.ReluRule.Guided,
        });
        TensorAssert.Close(backend.Download(guided.Input!), reference["gbp"], 1e-6, 1e-3, "gbp");
    }

    [TestCaseSource(nameof(Cases))]
    public void GradCam_maps_match_pytorch_grad_cam_and_torchcam(string modelName, string image, string device)
    {
        var reference = LoadReference(modelName, image);
        using var model = DeviceModel.Load(Model(modelName), TestDevice.Named(device));
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input(image));
        foreach (var (key, layer) in new[] { ("L0", reference.L0), ("L1", reference.L1) })
        {
            var e = explainer.Explain(input, new GradCam(), new ExplainOptions { Layers = [layer] })[0];
            Assert.That(e.TargetClass, Is.EqualTo(reference.TargetClass));
            // Raw map (before ReLU) directly, then normalized; the final map normalized.
            TensorAssert.Close(e.Raw.Data, reference[$"{key}.pgc.gradcam.raw"], 1e-6, 1e-3, $"{key}.pgc.gradcam.raw");
            TensorAssert.Close(MinMax(e.Raw.Data), MinMax(reference[$"{key}.pgc.gradcam.raw"]), MapAtol, 0, $"{key} raw normalized");
            TensorAssert.Close(e.Map.Data, MinMax(reference[$"{key}.pgc.gradcam.cam"]), MapAtol, 0, $"{key}.pgc.gradcam.cam");
            // TorchCAM's raw map is ReLU(sum_k w_k A_k) at layer resolution.
            var relu = e.Raw.Data.Select(v => Math.Max(v, 0f)).ToArray();
            TensorAssert.Close(MinMax(relu), MinMax(reference[$"{key}.tc.gradcam.raw"]), MapAtol, 0, $"{key}.tc.gradcam.raw");
        }
        var fused = explainer.Explain(input, new GradCam(), new ExplainOptions { Layers = [reference.L0, reference.L1] })[0];
        TensorAssert.Close(fused.Map.Data, MinMax(reference["Lall.pgc.gradcam.cam"]), MapAtol, 0, "Lall.pgc.gradcam.cam");
    }

    [TestCaseSource(nameof(Cases))]
    public void Saliency_and_guided_backprop_methods_match_the_reference_gradients(string modelName, string image, string device)
    {
        var reference = LoadReference(modelName, image);
        using var model = DeviceModel.Load(Model(modelName), TestDevice.Named(device));
        var input = Npy.Read(FixturePaths.Input(image));
        var results = new Explainer(model).Explain(input, [new Saliency(), new GuidedBackprop()]);
        var saliency = results["saliency"][0];
        var gbp = results["guided-backprop"][0];
        TensorAssert.Close(gbp.Raw.Data, reference["gbp"], 1e-6, 1e-3, "guided-backprop raw");
        Assert.That(gbp.Raw.Shape, Is.EqualTo(new[] { 3, 32, 32 }));
        // Vanilla saliency = max over channels of |input_grad|, min-max normalized.
        var g = reference["input_grad"];
        var expected = new float[32 * 32];
        for (int j = 0; j < expected.Length; j++)
            expected[j] = Math.Max(Math.Abs(g[j]), Math.Max(Math.Abs(g[1024 + j]), Math.Abs(g[2048 + j])));
        TensorAssert.Close(saliency.Map.Data, MinMax(expected), MapAtol, 0, "saliency");
    }
}
