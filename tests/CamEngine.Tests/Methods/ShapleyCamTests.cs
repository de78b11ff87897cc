using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// Shapley-CAM: w_k = mean_ij(G - H A / 2). For a raw logit through piecewise-linear layers H = 0 and it equals
/// Grad-CAM; for a softmax target its weights are checked against H A from finite differences of layer gradients
/// (re-running the layers after A on A +- hA, in double on the reference backend).
/// </summary>
[TestFixture]
public sealed class ShapleyCamTests
{
    private const string Layer = "/relu3/Relu_output_0";

    [Test]
    public void With_a_raw_logit_through_piecewise_linear_layers_it_is_grad_cam()
    {
        using var model = DeviceModel.Load(OnnxConverter.ConvertFile(FixturePaths.Onnx("tiny_gapcnn")), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        var r = new Explainer(model).Explain(input, [new ShapleyCam(), new GradCam()], new ExplainOptions { Layers = [Layer] });
        TensorAssert.Close(r["shapleycam"][0].Raw.Data, r["gradcam"][0].Raw.Data, 1e-7, 1e-5, "raw map");
    }

    [Test]
    public void With_a_dot_product_similarity_target_it_is_grad_cam_and_a_cosine_target_runs()
    {
        // The dot product is linear in the output, so through piecewise-linear layers H = 0 again.
        using var model = DeviceModel.Load(OnnxConverter.ConvertFile(FixturePaths.Onnx("tiny_gapcnn")), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        var explainer = new Explainer(model);
        var reference = explainer.Outputs(Npy.Read(FixturePaths.Input("rocket")));
        var options = new ExplainOptions { Layers = [Layer], Target = Target.Similarity(reference, cosine: false) };
        var r = explainer.Explain(input, [new ShapleyCam(), new GradCam()], options);
        TensorAssert.Close(r["shapleycam"][0].Raw.Data, r["gradcam"][0].Raw.Data, 1e-7, 1e-5, "raw map");
        var cosine = explainer.Explain(input, new ShapleyCam(),
            new ExplainOptions { Layers = [Layer], Target = Target.Similarity(reference, cosine: true) })[0];
        Assert.That(cosine.Raw.Data.All(float.IsFinite) && cosine.Raw.Data.Any(v => v != 0), Is.True);
    }

    [Test]
    public void With_a_softmax_target_the_hessian_term_matches_finite_differences()
    {
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(OnnxConverter.ConvertFile(FixturePaths.Onnx("tiny_gapcnn")), b);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        var options = new ExplainOptions { Layers = [Layer], Target = Target.Softmax() };
        var e = new Explainer(model).Explain(input, new ShapleyCam(), options)[0];

        using var x = b.Upload(input);
        using var pass = model.Forward(x);
        var a = ReferenceBackend.DownloadDouble(pass[Layer]);
        var score = CamEngine.Autodiff.ScoreFunction.SoftmaxProbability(e.TargetClass);
        double[] Gradient(double t)
        {
            using var replaced = b.UploadDouble(a.Select(v => v * (1 + t)).ToArray(), pass[Layer].Shape);
            using var p = model.ForwardFrom(pass, Layer, replaced);
            using var seed = b.UploadDouble(score.Gradient(ReferenceBackend.DownloadDouble(p.Output)), p.Output.Shape);
            using var g = model.Backward(p, seed, new BackwardRequest { Layers = [Layer] });
            return ReferenceBackend.DownloadDouble(g.Layers[Layer]);
        }
        const double h = 1e-5;
        var g0 = Gradient(0);
        var gp = Gradient(h);
        var gm = Gradient(-h);
        int channels = 64, plane = a.Length / channels;
        var expected = new double[plane];
        for (int k = 0; k < channels; k++)
        {
            double w = 0;
            for (int j = 0; j < plane; j++)
            {
                int i = k * plane + j;
                w += g0[i] - 0.5 * (gp[i] - gm[i]) / (2 * h);
            }
            w /= plane;
            for (int j = 0; j < plane; j++)
                expected[j] += w * a[k * plane + j];
        }
        double scale = expected.Max(Math.Abs);
        TensorAssert.Close(e.Raw.Data, expected.Select(v => (float)v).ToArray(), 1e-4 * scale, 1e-3, "Shapley-CAM raw map");
        var grad = new Explainer(model).Explain(input, new GradCam(), options)[0];
        Assert.That(e.Raw.Data.Zip(grad.Raw.Data, (p, q) => Math.Abs(p - q)).Max(), Is.GreaterThan(1e-3 * scale),
            "the Hessian term changes the map for a softmax target");
    }
}
