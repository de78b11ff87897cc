using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Autodiff;

/// <summary>
/// Forward-mode jets, Jacobian- and Hessian-vector products and exact diagonal higher derivatives, checked by
/// central finite differences in double precision (layer = the input, so a perturbation is a plain forward pass
/// on the reference backend), by agreement of the reverse-mode and jet paths on the ILGPU kernels, and by the
/// Grad-CAM++ closed form that pytorch-grad-cam uses.
/// </summary>
[TestFixture]
public sealed class HigherOrderTests
{
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

    private static double Score(DeviceModel model, ReferenceBackend b, double[] x, int[] shape, ScoreFunction s)
    {
        using var t = b.UploadDouble(x, shape);
        using var p = model.Forward(t);
        return s.Value(ReferenceBackend.DownloadDouble(p.Output));
    }

    [Test]
    public void Jet3_arithmetic_matches_known_series()
    {
        // exp(t) = 1 + t + t^2/2 + t^3/6; log(1 + t) = t - t^2/2 + t^3/3; 1 / (1 - t) = 1 + t + t^2 + t^3.
        var t = new Jet3(0, 1, 0, 0);
        Assert.That(Jet3.Exp(t), Is.EqualTo(new Jet3(1, 1, 0.5, 1.0 / 6)));
        var l = Jet3.Log(Jet3.Constant(1) + t);
        Assert.That(new[] { l.C0, l.C1, l.C2, l.C3 }, Is.EqualTo(new[] { 0, 1, -0.5, 1.0 / 3 }).Within(1e-15));
        var q = Jet3.Constant(1) / (Jet3.Constant(1) - t);
        Assert.That(new[] { q.C0, q.C1, q.C2, q.C3 }, Is.EqualTo(new[] { 1.0, 1, 1, 1 }).Within(1e-15));
        // (a t + b)^3 has third coefficient a^3.
        var u = new Jet3(2, 3, 0, 0);
        Assert.That((u * u * u).C3, Is.EqualTo(27));
    }

    [Test]
    public void Score_function_derivatives_match_finite_differences()
    {
        double[] z = [0.3, -1.2, 2.0, 0.7];
        double[] v = [0.5, 0.1, -0.4, 0.9];
        foreach (var s in new[] { ScoreFunction.SoftmaxProbability(2), ScoreFunction.LogSoftmax(1), ScoreFunction.Exp(ScoreFunction.Logit(3)) })
        {
            var g = s.Gradient(z);
            var hv = s.HessianVector(z, v);
            const double h = 1e-5;
            for (int j = 0; j < z.Length; j++)
            {
                var zp = (double[])z.Clone();
                var zm = (double[])z.Clone();
                zp[j] += h;
                zm[j] -= h;
                Assert.That(g[j], Is.EqualTo((s.Value(zp) - s.Value(zm)) / (2 * h)).Within(1e-8));
            }
            var gp = s.Gradient(z.Zip(v, (a, d) => a + h * d).ToArray());
            var gm = s.Gradient(z.Zip(v, (a, d) => a - h * d).ToArray());
            for (int j = 0; j < z.Length; j++)
                Assert.That(hv[j], Is.EqualTo((gp[j] - gm[j]) / (2 * h)).Within(1e-7));
        }
    }

    [TestCase("tiny_gapcnn")]
    [TestCase("tiny_resnet")]
    public void Jvp_diagonal_and_hvp_at_the_input_match_finite_differences_in_double(string name)
    {
        var file = Model(name);
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        var x = input.Data.Select(f => (double)f).ToArray();
        using var xt = b.UploadDouble(x, input.Shape);
        using var pass = model.Forward(xt);
        string layer = file.Graph.InputName;
        var z0 = ReferenceBackend.DownloadDouble(pass.Output);
        int top = Array.IndexOf(z0, z0.Max());
        var score = ScoreFunction.SoftmaxProbability(top);
        var rng = new Random(8);
        var v = Enumerable.Range(0, x.Length).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

        // J v against (z(x + h v) - z(x - h v)) / 2h.
        var jv = HigherOrder.Jvp(model, pass, 0, layer, v);
        const double h = 1e-7;
        double[] Outputs(double sign)
        {
            using var t = b.UploadDouble(x.Select((a, i) => a + sign * h * v[i]).ToArray(), input.Shape);
            using var p = model.Forward(t);
            return ReferenceBackend.DownloadDouble(p.Output);
        }
        var zp = Outputs(1);
        var zm = Outputs(-1);
        TensorAssert.Close(jv, zp.Zip(zm, (a, c) => (a - c) / (2 * h)).ToArray(), 1e-6, 1e-4, "J v");

        // Exact diagonal d^k s / dx_i^k against central differences of the softmax probability. The network is
        // piecewise linear, so a difference quotient is only valid when the steps stay in one linear region:
        // elements whose logits are not linear in the step over [-2h, 2h] are skipped (at least three must remain).
        int[] picks = [5, 700, 1500, 2300, 2900];
        var d = HigherOrder.Diagonal(model, pass, 0, layer, score, picks);
        Assert.That(d.Method, Is.EqualTo("reverse"));
        const double hd = 1e-3;
        int checkedCount = 0;
        for (int n = 0; n < picks.Length; n++)
        {
            double[] Z(double delta)
            {
                var xx = (double[])x.Clone();
                xx[picks[n]] += delta;
                using var t = b.UploadDouble(xx, input.Shape);
                using var p = model.Forward(t);
                return ReferenceBackend.DownloadDouble(p.Output);
            }
            double[][] zs = [Z(-2 * hd), Z(-hd), Z(0), Z(hd), Z(2 * hd)];
            bool linear = true;
            for (int j = 0; j < z0.Length; j++)
            {
                double slope = (zs[4][j] - zs[0][j]) / (4 * hd);
                for (int q = 0; q < 5; q++)
                    linear &= Math.Abs(zs[q][j] - (zs[2][j] + (q - 2) * hd * slope)) <= 1e-12 + 1e-9 * Math.Abs(zs[2][j]);
            }
            if (!linear)
                continue;
            checkedCount++;
            var sv = zs.Select(zz => score.Value(zz)).ToArray();
            double fd1 = (sv[3] - sv[1]) / (2 * hd);
            double fd2 = (sv[3] - 2 * sv[2] + sv[1]) / (hd * hd);
            double fd3 = (sv[4] - 2 * sv[3] + 2 * sv[1] - sv[0]) / (2 * hd * hd * hd);
            Assert.That(d.First[n], Is.EqualTo(fd1).Within(1e-5 * Math.Abs(fd1) + 1e-9), $"first, element {picks[n]}");
            Assert.That(d.Second[n], Is.EqualTo(fd2).Within(1e-3 * Math.Abs(fd2) + 1e-7), $"second, element {picks[n]}");
            Assert.That(d.Third[n], Is.EqualTo(fd3).Within(2e-2 * Math.Abs(fd3) + 1e-5), $"third, element {picks[n]}");
        }
        Assert.That(checkedCount, Is.GreaterThanOrEqualTo(3), "elements checked inside one linear region");

        // H v against (grad s(x + h v) - grad s(x - h v)) / 2h, gradients by the reverse pass in double.
        var hv = HigherOrder.Hvp(model, pass, 0, layer, score, v);
        double[] Grad(double sign)
        {
            using var t = b.UploadDouble(x.Select((a, i) => a + sign * h * v[i]).ToArray(), input.Shape);
            using var p = model.Forward(t);
            var seed = score.Gradient(ReferenceBackend.DownloadDouble(p.Output));
            using var st = b.UploadDouble(seed, p.Output.Shape);
            using var g = model.Backward(p, st, new BackwardRequest { Input = true });
            return ReferenceBackend.DownloadDouble(g.Input!);
        }
        var gp = Grad(1);
        var gm = Grad(-1);
        var fdHv = gp.Zip(gm, (a, c) => (a - c) / (2 * h)).ToArray();
        double hvScale = fdHv.Max(Math.Abs);
        TensorAssert.Close(hv, fdHv, 1e-4 * hvScale, 1e-3, "H v");
    }

    [TestCase("tiny_gapcnn", "/relu3/Relu_output_0")]
    [TestCase("tiny_resnet", "/block2/relu2/Relu_output_0")]
    public void Jets_and_reverse_paths_agree_on_the_ilgpu_kernels(string name, string layer)
    {
        using var model = DeviceModel.Load(Model(name), TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input("rocket"));
        using var x = TestDevice.Ilgpu.Upload(input);
        using var pass = model.Forward(x);
        var score = ScoreFunction.LogSoftmax(3);
        int[] picks = Enumerable.Range(0, 40).Select(i => i * 97 % (pass[layer].Length)).Distinct().ToArray();
        var reverse = HigherOrder.Diagonal(model, pass, 0, layer, score, picks);
        var jets = HigherOrder.Diagonal(model, pass, 0, layer, score, picks, forceJets: true, batch: 16);
        Assert.That(jets.Method, Is.EqualTo("jets"));
        double s1 = reverse.First.Max(Math.Abs), s2 = reverse.Second.Max(Math.Abs), s3 = reverse.Third.Max(Math.Abs);
        TensorAssert.Close(jets.First, reverse.First, 1e-4 * s1, 1e-3, "first");
        TensorAssert.Close(jets.Second, reverse.Second, 1e-4 * s2, 1e-3, "second");
        TensorAssert.Close(jets.Third, reverse.Third, 1e-4 * s3, 1e-3, "third");
        Assert.That(s2, Is.GreaterThan(0), "a softmax target has non-zero second derivatives");
        // A raw logit through piecewise-linear layers has zero second and third derivatives.
        var logit = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Logit(3), picks);
        Assert.That(logit.Second.Concat(logit.Third).All(v => v == 0), Is.True);
    }

    [TestCaseSource(typeof(Methods.FixtureTests), nameof(Methods.FixtureTests.Cases))]
    public void Exact_grad_cam_pp_weights_equal_the_pytorch_grad_cam_closed_form(string name, string image)
    {
        // Grad-CAM++ (Chattopadhyay et al. 2018): with Y = exp(S), alpha = Y'' / (2 Y'' + sum(A) Y'''), and
        // w_k = sum_ij alpha relu(dS/dA). The derivatives here are exact (reverse path, exp composed on jets);
        // pgc's closed form assumes the layers after A are piecewise linear: alpha = g^2 / (2 g^2 + sum(A) g^3 + eps)
        // with eps = 1e-6; Y2 = e^S g^2 and Y3 = e^S g^3, so the same guard is e^S * 1e-6 in exact terms. (It is not
        // negligible here: these random networks have gradients near 1e-3, so g^2 is of the order of eps.)
        var reference = Npz.ReadAll(FixturePaths.Refs(name, image));
        string layer = name == "tiny_gapcnn" ? "/relu3/Relu_output_0" : "/block2/relu2/Relu_output_0";
        using var model = DeviceModel.Load(Model(name), TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input(image));
        using var x = TestDevice.Ilgpu.Upload(input);
        using var pass = model.Forward(x);
        int c = (int)reference.Arrays["target_class"].Data[0];
        var a = TestDevice.Ilgpu.Download(pass[layer]);
        var d = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Exp(ScoreFunction.Logit(c)));
        var g = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Logit(c)).First;
        double y = Math.Exp(TestDevice.Ilgpu.Download(pass.Output)[c]);
        var shape = pass[layer].Shape;
        int channels = shape[1], plane = shape[2] * shape[3];
        var weights = new double[channels];
        for (int k = 0; k < channels; k++)
        {
            double sumA = 0;
            for (int j = 0; j < plane; j++)
                sumA += a[k * plane + j];
            for (int j = 0; j < plane; j++)
            {
                int i = k * plane + j;
                double denominator = 2 * d.Second[i] + sumA * d.Third[i] + y * 1e-6;
                double alpha = g[i] != 0 ? d.Second[i] / denominator : 0;
                weights[k] += alpha * Math.Max(g[i], 0);
            }
        }
        var expected = reference.Arrays["L0.pgc.gradcampp.weights"].Data.Select(f => (double)f).ToArray();
        double scale = expected.Max(Math.Abs);
        TensorAssert.Close(weights, expected, 1e-4 * scale, 1e-3, "Grad-CAM++ weights");
    }
}
