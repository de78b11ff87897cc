using System.Text.Json;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// CAM, the Score-CAM family, Ablation-CAM, Eigen-CAM, EigenGrad-CAM and FullGrad against the maps that
/// pytorch-grad-cam and TorchCAM computed for both fixture models and all four images (fixtures/README.md),
/// each in the matching convention.
/// </summary>
[TestFixture]
public sealed class PerturbationFixtureTests
{
    private const double MapAtol = 1e-3;

    internal static ModelFile Model(string name) => FixtureData.ModelFor(name);

    public static IEnumerable<TestCaseData> Cases() =>
        from m in FixturePaths.Models
        from i in FixturePaths.Images
        select new TestCaseData(m, i).SetName($"{m}_{i}");

    // The Score-CAM family costs thousands of forward passes per image (IS-CAM: 10 per channel), so it runs on the
    // managed CPU backend; SS-CAM needs the noise TorchCAM stored, which exists for chelsea only.
    public static IEnumerable<TestCaseData> ScoreCases() =>
        from m in FixturePaths.Models
        select new TestCaseData(m, "chelsea").SetName($"{m}_chelsea");

    public static IEnumerable<TestCaseData> MoreScoreCases() =>
        from m in FixturePaths.Models
        from i in FixturePaths.Images
        where i != "chelsea"
        select new TestCaseData(m, i).SetName($"{m}_{i}");

    private static FixtureData.Reference Load(string model, string image) => FixtureData.Load(model, image);

    private static float[] MinMax(float[] v) => FixtureData.MinMax(v);

    private static float[] Relu(float[] v) => FixtureData.Relu(v);

    private static double Pearson(float[] a, float[] b)
    {
        double ma = a.Average(v => (double)v), mb = b.Average(v => (double)v), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sab += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }
        return sab / Math.Sqrt(saa * sbb);
    }

    // Thousands of masked forwards: run on the managed CPU backend (the kernels themselves are checked against the
    // reference on both fast backends elsewhere).
    private static Explanation Explain(string modelName, string image, CamMethod method, string layer, Convention convention)
    {
        using var model = DeviceModel.Load(Model(modelName), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input(image));
        return new Explainer(model).Explain(input, method,
            new ExplainOptions { Layers = [layer], Convention = convention })[0];
    }

    [TestCaseSource(nameof(ScoreCases))]
    public void ScoreCam_matches_pytorch_grad_cam(string modelName, string image) => ScoreCamPgc(modelName, image);

    [TestCaseSource(nameof(MoreScoreCases))]
    public void ScoreCam_matches_pytorch_grad_cam_on_every_image(string modelName, string image) => ScoreCamPgc(modelName, image);

    [TestCaseSource(nameof(ScoreCases))]
    public void ScoreCam_sscam_and_iscam_match_torchcam(string modelName, string image) => ScoreFamilyTc(modelName, image);

    [TestCaseSource(nameof(MoreScoreCases))]
    public void ScoreCam_and_iscam_match_torchcam_on_every_image(string modelName, string image) => ScoreFamilyTc(modelName, image);

    private static void ScoreCamPgc(string modelName, string image)
    {
        var r = Load(modelName, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = Explain(modelName, image, new ScoreCam(), layer, Convention.PytorchGradCam);
            Assert.That(e.TargetClass, Is.EqualTo(r.TargetClass));
            TensorAssert.Close(e.Weights!, r[$"{key}.pgc.scorecam.weights"], 1e-5, 1e-3, $"{key}.pgc.scorecam.weights");
            TensorAssert.Close(MinMax(e.Raw.Data), MinMax(r[$"{key}.pgc.scorecam.raw"]), MapAtol, 0, $"{key}.pgc.scorecam.raw");
            TensorAssert.Close(e.Map.Data, MinMax(r[$"{key}.pgc.scorecam.cam"]), MapAtol, 0, $"{key}.pgc.scorecam.cam");
        }
    }

    private static void ScoreFamilyTc(string modelName, string image)
    {
        var r = Load(modelName, image);
        foreach (var (key, layer) in r.Layers)
        {
            var score = Explain(modelName, image, new ScoreCam(), layer, Convention.TorchCam);
            TensorAssert.Close(MinMax(Relu(score.Raw.Data)), MinMax(r[$"{key}.tc.scorecam.raw"]), MapAtol, 0, $"{key}.tc.scorecam.raw");
            var iscam = Explain(modelName, image, new IsCam(), layer, Convention.TorchCam);
            TensorAssert.Close(MinMax(Relu(iscam.Raw.Data)), MinMax(r[$"{key}.tc.iscam.raw"]), MapAtol, 0, $"{key}.tc.iscam.raw");
        }
        // TorchCAM's SS-CAM noise was stored for chelsea's first layer only; replay it there.
        if (!r.Npz.Arrays.ContainsKey("L0.tc.sscam.noise.npy") && !r.Npz.Arrays.ContainsKey("L0.tc.sscam.noise"))
            return;
        var noise = r["L0.tc.sscam.noise"];
        var ss = Explain(modelName, image, new SsCam { Noise = noise }, r.L0, Convention.TorchCam);
        TensorAssert.Close(MinMax(Relu(ss.Raw.Data)), MinMax(r["L0.tc.sscam.raw"]), MapAtol, 0, "L0.tc.sscam.raw");
    }

    [TestCaseSource(nameof(Cases))]
    public void AblationCam_matches_pytorch_grad_cam(string modelName, string image)
    {
        var r = Load(modelName, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = Explain(modelName, image, new AblationCam(), layer, Convention.PytorchGradCam);
            TensorAssert.Close(e.Weights!, r[$"{key}.pgc.ablationcam.weights"], 1e-5, 1e-3, $"{key}.pgc.ablationcam.weights");
            TensorAssert.Close(MinMax(e.Raw.Data), MinMax(r[$"{key}.pgc.ablationcam.raw"]), MapAtol, 0, $"{key}.pgc.ablationcam.raw");
            TensorAssert.Close(e.Map.Data, MinMax(r[$"{key}.pgc.ablationcam.cam"]), MapAtol, 0, $"{key}.pgc.ablationcam.cam");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void EigenCam_and_EigenGradCam_match_pytorch_grad_cam_up_to_sign(string modelName, string image)
    {
        var r = Load(modelName, image);
        foreach (var (key, layer) in r.Layers)
        {
            foreach (var method in new CamMethod[] { new EigenCam(), new EigenGradCam() })
            {
                var e = Explain(modelName, image, method, layer, Convention.PytorchGradCam);
                var expected = r[$"{key}.pgc.{method.Name}.raw"];
                double dot = e.Raw.Data.Zip(expected, (a, b) => (double)a * b).Sum();
                float sign = dot >= 0 ? 1f : -1f;
                var aligned = expected.Select(v => sign * v).ToArray();
                double scale = Math.Max(expected.Max(Math.Abs), 1e-30);
                TensorAssert.Close(e.Raw.Data, aligned, 1e-4 * scale, 1e-3, $"{key}.pgc.{method.Name}.raw (sign {sign})");
                if (sign > 0)
                    TensorAssert.Close(e.Map.Data, MinMax(r[$"{key}.pgc.{method.Name}.cam"]), MapAtol, 0, $"{key}.pgc.{method.Name}.cam");
                else
                    TensorAssert.Close(e.Map.Data, CamPostprocess.FuseLayers([new Tensors.HostTensor(r.Shape($"{key}.pgc.{method.Name}.raw"), aligned)], 32, 32, "ref").Data,
                        MapAtol, 0, $"{key}.pgc.{method.Name}.cam of the flipped reference");
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void FullGrad_matches_pytorch_grad_cam(string modelName, string image)
    {
        var r = Load(modelName, image);
        using var model = DeviceModel.Load(Model(modelName), TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input(image));
        var e = new Explainer(model).Explain(input, new FullGrad())[0];
        TensorAssert.Close(e.Map.Data, MinMax(r["pgc.fullgrad.cam"]), MapAtol, 0, "pgc.fullgrad.cam");
    }

    [TestCaseSource(nameof(Cases))]
    public void Cam_matches_torchcam(string modelName, string image)
    {
        var r = Load(modelName, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = Explain(modelName, image, new ClassActivationMap(), layer, Convention.TorchCam);
            // TorchCAM's CAM has no ReLU: the raw map itself, normalized.
            TensorAssert.Close(MinMax(e.Raw.Data), MinMax(r[$"{key}.tc.cam.raw"]), MapAtol, 0, $"{key}.tc.cam.raw");
        }
    }
}
