using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Autodiff;

/// <summary>
/// Taylor-mode rules of every op kind (element-wise maps, broadcasting products and quotients, batch norm,
/// concat, pad, reshape, softmax), end to end through real exported networks: the exact diagonal second and third
/// derivatives of log-softmax(logits) with respect to input pixels, from third-order jets, against finite
/// differences of exact gradients (reverse passes) in double precision on the reference backend:
/// <c>d2 = (g(x + h) - g(x - h)) / 2h</c>, <c>d3 = (g(x + h) - 2 g(x) + g(x - h)) / h^2</c>.
/// </summary>
[TestFixture]
internal sealed class JetRuleTests
{
    [TestCase("efficientnet_b0")] // sigmoid, x * sigmoid(x), squeeze-excitation products with broadcasting
    [TestCase("opszoo")]          // leaky ReLU, hard-sigmoid/swish, pad, sub/div by constants, reshape, matmul, softmax
    [TestCase("densenet121")]     // concat, batch norm as an op, pad
    [TestCase("mobilenet_v2")]    // clip (ReLU6)
    [TestCase("convnext", 17)]    // layer norm, erf (GELU), transposes to channels-last, matmul, layer scale
    public void Third_order_jets_match_finite_differences_of_exact_gradients(string name, int opset = 11)
    {
        string dir = Path.Combine(FixturePaths.Root, "families");
        var file = OnnxConverter.ConvertFile(Path.Combine(dir, $"{name}.opset{opset}.onnx"));
        var input = Npz.Read(Path.Combine(dir, name + ".npz"))["input"];
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var x = input.Data.Select(v => (double)v).ToArray();
        using var xt = b.UploadDouble(x, input.Shape);
        using var pass = model.Forward(xt);
        var score = ScoreFunction.LogSoftmax(2);
        int n = x.Length;
        int[] picks = [n / 7, n / 3, (2 * n) / 3 + 5];
        var d = HigherOrder.Diagonal(model, pass, 0, file.Graph.InputName, score, picks, forceJets: true);

        double Gradient(int element, double delta)
        {
            var xx = (double[])x.Clone();
            xx[element] += delta;
            using var t = b.UploadDouble(xx, input.Shape);
            using var p = model.Forward(t);
            using var seed = b.UploadDouble(score.Gradient(ReferenceBackend.DownloadDouble(p.Output)), p.Output.Shape);
            using var g = model.Backward(p, seed, new BackwardRequest { Input = true });
            return ReferenceBackend.D(g.Input!)[element];
        }
        // A small step: these networks have ReLU/clip kinks, and a difference quotient must not straddle one.
        const double h = 1e-4;
        for (int i = 0; i < picks.Length; i++)
        {
            double g0 = Gradient(picks[i], 0), gp = Gradient(picks[i], h), gm = Gradient(picks[i], -h);
            double fd2 = (gp - gm) / (2 * h), fd3 = (gp - 2 * g0 + gm) / (h * h);
            TestContext.Out.WriteLine($"{name} element {picks[i]}: d1 {d.First[i]:G6} vs {g0:G6}; d2 {d.Second[i]:G6} vs {fd2:G6}; d3 {d.Third[i]:G6} vs {fd3:G6}");
            double s1 = Math.Abs(g0), s2 = Math.Abs(fd2) + 1e-3 * s1, s3 = Math.Abs(fd3) + 1e-2 * s2;
            Assert.That(d.First[i], Is.EqualTo(g0).Within(1e-4 * s1 + 1e-9), $"first, element {picks[i]}");
            Assert.That(d.Second[i], Is.EqualTo(fd2).Within(1e-3 * s2 + 1e-8), $"second, element {picks[i]}");
            Assert.That(d.Third[i], Is.EqualTo(fd3).Within(2e-2 * s3 + 1e-6), $"third, element {picks[i]}");
        }
    }

    public static IEnumerable<IUnaryOp> UnaryOpsToTest() => UnaryOps.Instantiations;

    [TestCaseSource(nameof(UnaryOpsToTest))]
    public void Unary_jet_kernel_matches_the_reference(IUnaryOp op)
    {
        var rng = new Random(9);
        // sqrt is defined (and smooth) for x > 0 only: its points stay in (0.1, 6).
        var x0 = Enumerable.Range(0, 200).Select(_ => (float)(op is Sqrt ? rng.NextDouble() * 5.9 + 0.1 : rng.NextDouble() * 12 - 6)).ToArray();
        var xs = Enumerable.Range(0, 600).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var r = new ReferenceBackend();
        var f = TestDevice.Ilgpu;
        using var a = f.Upload(x0, 200);
        using var ar = r.Upload(x0, 200);
        using var c = f.Upload(xs, 3, 200);
        using var cr = r.Upload(xs, 3, 200);
        using var y = f.Allocate(3, 200);
        using var yr = r.Allocate(3, 200);
        Dispatch(op, f, a, c, y);
        Dispatch(op, r, ar, cr, yr);
        TensorAssert.Close(f.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-5, 1e-4, $"{op.GetType().Name} jet");
    }

    private static void Dispatch(IUnaryOp op, Backend b, Tensor x0, Tensor xs, Tensor ys)
    {
        switch (op)
        {
            case Sigmoid s: b.UnaryJet(s, x0, xs, ys); break;
            case HardSigmoid s: b.UnaryJet(s, x0, xs, ys); break;
            case HardSwish s: b.UnaryJet(s, x0, xs, ys); break;
            case LeakyRelu s: b.UnaryJet(s, x0, xs, ys); break;
            case Clip s: b.UnaryJet(s, x0, xs, ys); break;
            case Erf s: b.UnaryJet(s, x0, xs, ys); break;
            case Gelu s: b.UnaryJet(s, x0, xs, ys); break;
            case Pow s: b.UnaryJet(s, x0, xs, ys); break;
            case Sqrt s: b.UnaryJet(s, x0, xs, ys); break;
            case Tanh s: b.UnaryJet(s, x0, xs, ys); break;
            default: Assert.Fail($"no dispatch for {op.GetType().Name}"); break;
        }
    }
}
