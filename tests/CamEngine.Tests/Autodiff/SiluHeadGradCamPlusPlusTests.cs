using CamEngine.Autodiff;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Autodiff;

/// <summary>
/// Where the layers after A are not piecewise linear (a 1x1 conv, SiLU = x * sigmoid(x), GAP, linear; the
/// fixture comes from PyTorch, tools/fixtures/make_autodiff_fixtures.py), the second and third derivatives of
/// the score no longer vanish, and the exact Grad-CAM++ differs from the closed form every library uses.
/// </summary>
[TestFixture]
public sealed class SiluHeadGradCamPlusPlusTests
{
    [Test]
    public void Exact_grad_cam_pp_differs_from_the_closed_form_on_a_silu_head()
    {
        var reference = Npz.Read(FixturePaths.Autodiff("silu_head.npz"));
        var file = OnnxConverter.ConvertFile(FixturePaths.Autodiff("silu_head.onnx"));
        const string layer = "/inner/act2/Relu_output_0";
        Assert.That(TaylorPass.IsPiecewiseLinear(file.Graph, layer), Is.False);
        var b = TestDevice.Cpu;
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(reference["x"]);
        using var pass = model.Forward(x);
        int c = (int)reference["target_class"].Data[0];
        TensorAssert.Close(b.Download(pass.Output), reference["logits"].Data, 1e-5, 1e-4, "logits");
        var a = b.Download(pass[layer]);
        TensorAssert.Close(a, reference["A"].Data, 1e-5, 1e-4, "A");

        var s = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Logit(c));
        Assert.That(s.Method, Is.EqualTo("jets"));
        double gScale = s.First.Max(Math.Abs);
        TensorAssert.Close(s.First, reference["G"].Data.Select(v => (double)v).ToArray(), 1e-5 * gScale, 1e-3, "dS/dA vs PyTorch");
        Assert.That(s.Second.Max(Math.Abs), Is.GreaterThan(1e-4 * gScale), "the SiLU head bends: S'' is not zero");

        var y = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Exp(ScoreFunction.Logit(c)));
        int channels = 8, plane = a.Length / channels;
        var exact = new double[channels];
        var closed = new double[channels];
        for (int k = 0; k < channels; k++)
        {
            double sumA = a.Skip(k * plane).Take(plane).Sum(v => (double)v);
            for (int j = 0; j < plane; j++)
            {
                int i = k * plane + j;
                double g = s.First[i];
                if (g == 0)
                    continue;
                double exactAlpha = y.Second[i] / (2 * y.Second[i] + sumA * y.Third[i]);
                double closedAlpha = g * g / (2 * g * g + sumA * g * g * g);
                exact[k] += exactAlpha * Math.Max(g, 0);
                closed[k] += closedAlpha * Math.Max(g, 0);
            }
        }
        double num = 0, den = 0;
        for (int k = 0; k < channels; k++)
        {
            num += (exact[k] - closed[k]) * (exact[k] - closed[k]);
            den += closed[k] * closed[k];
        }
        double relative = Math.Sqrt(num / den);
        TestContext.Out.WriteLine($"exact weights  [{string.Join(", ", exact.Select(v => v.ToString("G4")))}]");
        TestContext.Out.WriteLine($"closed weights [{string.Join(", ", closed.Select(v => v.ToString("G4")))}]");
        TestContext.Out.WriteLine($"relative L2 difference {relative:P2}");
        Assert.That(relative, Is.GreaterThan(0.01), "exact and closed-form Grad-CAM++ weights differ measurably");
    }

    [Test]
    public void Hessian_vector_product_through_the_silu_head_matches_finite_differences_in_double()
    {
        var reference = Npz.Read(FixturePaths.Autodiff("silu_head.npz"));
        var file = OnnxConverter.ConvertFile(FixturePaths.Autodiff("silu_head.onnx"));
        var b = new CamEngine.Backends.ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var input = reference["x"];
        var x = input.Data.Select(v => (double)v).ToArray();
        using var xt = b.UploadDouble(x, input.Shape);
        using var pass = model.Forward(xt);
        var score = ScoreFunction.Logit((int)reference["target_class"].Data[0]);
        var rng = new Random(12);
        var v = Enumerable.Range(0, x.Length).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var hv = HigherOrder.Hvp(model, pass, 0, file.Graph.InputName, score, v, batch: 256);
        const double h = 1e-6;
        double[] Grad(double sign)
        {
            using var t = b.UploadDouble(x.Select((a, i) => a + sign * h * v[i]).ToArray(), input.Shape);
            using var p = model.Forward(t);
            using var seed = b.UploadDouble(score.Gradient(CamEngine.Backends.ReferenceBackend.DownloadDouble(p.Output)), p.Output.Shape);
            using var g = model.Backward(p, seed, new BackwardRequest { Input = true });
            return CamEngine.Backends.ReferenceBackend.DownloadDouble(g.Input!);
        }
        var gp = Grad(1);
        var gm = Grad(-1);
        var fd = gp.Zip(gm, (p, m) => (p - m) / (2 * h)).ToArray();
        double scale = fd.Max(Math.Abs);
        Assert.That(scale, Is.GreaterThan(0), "a SiLU head has a non-zero Hessian for the raw logit");
        TensorAssert.Close(hv, fd, 1e-4 * scale, 1e-3, "H v through x * sigmoid(x)");
    }
}
