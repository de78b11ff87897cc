using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using NUnit.Framework;
using static CamEngine.Tests.Methods.FixtureData;

namespace CamEngine.Tests.Methods;

/// <summary>
/// HiResCAM, Grad-CAM element-wise, Grad-CAM++, XGrad-CAM, Layer-CAM and Smooth Grad-CAM++ against every
/// pytorch-grad-cam and TorchCAM reference key for both tiny models and all four images, each under the
/// matching convention (fixtures/README.md): raw maps (directly and min-max normalized), channel weights where
/// recorded, final maps, the fused two-layer Layer-CAM map, and TorchCAM's Smooth Grad-CAM++ replaying its noise.
/// </summary>
[TestFixture]
public sealed class GradientVariantFixtureTests
{
    // Maps: compared after min-max normalizing both sides (fixtures/README.md: agree to 1e-3).
    private const double MapAtol = 1e-3;

    private static readonly (string Key, GradientCamMethod Method)[] s_pgc =
    [
        ("hirescam", new HiResCam()), ("gradcam_elementwise", new GradCamElementwise()), ("gradcampp", new GradCamPlusPlus()),
        ("xgradcam", new XGradCam()), ("layercam", new LayerCam()),
    ];

    private static readonly (string Key, GradientCamMethod Method)[] s_tc =
    [
        ("gradcampp", new GradCamPlusPlus()), ("xgradcam", new XGradCam()), ("layercam", new LayerCam()),
    ];

    [TestCaseSource(typeof(FixtureData), nameof(FixtureData.Cases))]
    public void Pytorch_grad_cam_maps_and_weights_match(string modelName, string image)
    {
        var reference = Load(modelName, image);
        using var model = DeviceModel.Load(ModelFor(modelName), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input(image));
        var options = new ExplainOptions { Convention = Convention.PytorchGradCam };
        foreach (var key in new[] { "L0", "L1" })
        {
            var results = explainer.Explain(input, s_pgc.Select(m => (CamMethod)m.Method).ToList(),
                new ExplainOptions { Layers = [reference.Layer(key)], Convention = Convention.PytorchGradCam });
            var shape = reference.Shape($"{key}.act");
            int c = shape[0], plane = shape[1] * shape[2];
            foreach (var (name, method) in s_pgc)
            {
                string k = $"{key}.pgc.{name}";
                var e = results[method.Name][0];
                Assert.That(e.TargetClass, Is.EqualTo(reference.TargetClass), k);
                Assert.That(e.Raw.Shape, Is.EqualTo(new[] { shape[1], shape[2] }), k);
                TensorAssert.Close(e.Raw.Data, reference[$"{k}.raw"], 1e-6, 1e-3, $"{k}.raw");
                TensorAssert.Close(MinMax(e.Raw.Data), MinMax(reference[$"{k}.raw"]), MapAtol, 0, $"{k}.raw normalized");
                TensorAssert.Close(e.Map.Data, MinMax(reference[$"{k}.cam"]), MapAtol, 0, $"{k}.cam");
                if (reference.Npz.Arrays.ContainsKey($"{k}.weights"))
                {
                    var w = method.WeightsFor(reference[$"{key}.act"], reference[$"{key}.grad"], c, plane, Convention.PytorchGradCam)!;
                    TensorAssert.Close(w, reference[$"{k}.weights"], 1e-6, 1e-3, $"{k}.weights");
                }
            }
        }
        var fused = explainer.Explain(input, new LayerCam(),
            options.With(layers: [reference.L0, reference.L1]))[0];
        TensorAssert.Close(fused.Map.Data, MinMax(reference["Lall.pgc.layercam.cam"]), MapAtol, 0, "Lall.pgc.layercam.cam");
    }

    [TestCaseSource(typeof(FixtureData), nameof(FixtureData.Cases))]
    public void TorchCam_raw_maps_match(string modelName, string image)
    {
        var reference = Load(modelName, image);
        using var model = DeviceModel.Load(ModelFor(modelName), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input(image));
        foreach (var key in new[] { "L0", "L1" })
        {
            var results = explainer.Explain(input, s_tc.Select(m => (CamMethod)m.Method).ToList(),
                new ExplainOptions { Layers = [reference.Layer(key)], Convention = Convention.TorchCam });
            foreach (var (name, method) in s_tc)
            {
                string k = $"{key}.tc.{name}.raw";
                // TorchCAM's raw map (normalized=False) is already ReLU'd.
                var ours = Relu(results[method.Name][0].Raw.Data);
                TensorAssert.Close(MinMax(ours), MinMax(reference[k]), MapAtol, 0, k);
            }
        }
    }

    // The fixtures store TorchCAM's Smooth Grad-CAM++ noise for chelsea only (both models, both layers); the
    // other images' maps come from noise that was not kept, so they cannot be reproduced.
    public static IEnumerable<TestCaseData> NoiseCases() =>
        from m in FixturePaths.Models select new TestCaseData(m, "chelsea").SetName($"{m}_chelsea");

    [TestCaseSource(nameof(NoiseCases))]
    public void TorchCam_smooth_gradcampp_matches_with_replayed_noise(string modelName, string image)
    {
        var reference = Load(modelName, image);
        using var model = DeviceModel.Load(ModelFor(modelName), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input(image));
        foreach (var key in new[] { "L0", "L1" })
        {
            string noiseKey = $"{key}.tc.smoothgradcampp.noise";
            var noise = reference[noiseKey];
            int samples = reference.Shape(noiseKey)[0], size = noise.Length / samples;
            var replay = Enumerable.Range(0, samples).Select(s => noise.AsSpan(s * size, size).ToArray()).ToList();
            var method = new SmoothGradCamPlusPlus { ReplayNoise = replay };
            var e = explainer.Explain(input, method,
                new ExplainOptions { Layers = [reference.Layer(key)], Convention = Convention.TorchCam })[0];
            string k = $"{key}.tc.smoothgradcampp.raw";
            TensorAssert.Close(MinMax(Relu(e.Raw.Data)), MinMax(reference[k]), MapAtol, 0, k);
        }
    }
}

internal static class ExplainOptionsTestExtensions
{
    public static ExplainOptions With(this ExplainOptions o, IReadOnlyList<string>? layers = null) => new()
    {
        Layers = layers ?? o.Layers, Target = o.Target, Convention = o.Convention, Fusion = o.Fusion,
        AugSmooth = o.AugSmooth, EigenSmooth = o.EigenSmooth, Seed = o.Seed,
    };
}
