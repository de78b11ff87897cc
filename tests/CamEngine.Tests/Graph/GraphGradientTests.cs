using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Graph;

/// <summary>
/// The whole reverse pass checked by central finite differences in double precision: tiny_resnet (residual
/// additions, so gradients must sum at fan-out; a strided 1x1 projection) and tiny_gapcnn (max-pool routing)
/// run on the reference backend, L = sum_c r_c * logits_c. Input and parameter gradients are compared with
/// (L(t + h) - L(t - h)) / 2h on a sample of elements (layer gradients are checked against PyTorch in
/// FixtureTests).
/// </summary>
[TestFixture]
public sealed class GraphGradientTests
{
    private const double H = 1e-6;

    [TestCase("tiny_resnet", "/block1/relu2/Relu_output_0")]
    [TestCase("tiny_gapcnn", "/relu2/Relu_output_0")]
    public void Reverse_pass_matches_finite_differences(string modelName, string layer)
    {
        var file = OnnxConverter.ConvertFile(FixturePaths.Onnx(modelName));
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var rng = new Random(2024);
        int n = 1;
        var inputShape = new[] { n }.Concat(file.Graph.InputShape).ToArray();
        var xs = Enumerable.Range(0, inputShape.Aggregate(1, (p, d) => p * d)).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        using var x = b.UploadDouble(xs, inputShape);
        using var pass = model.Forward(x);
        var r = Enumerable.Range(0, pass.Output.Length).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        using var seed = b.UploadDouble(r, pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Layers = [layer], Input = true, Parameters = true });

        double Loss()
        {
            using var p = model.Forward(x);
            var y = ReferenceBackend.D(p.Output);
            return y.Select((v, i) => v * r[i]).Sum();
        }

        double Numeric(double[] data, int i)
        {
            double keep = data[i];
            data[i] = keep + H;
            double lp = Loss();
            data[i] = keep - H;
            double lm = Loss();
            data[i] = keep;
            return (lp - lm) / (2 * H);
        }

        void CheckSample(Tensor analyticTensor, double[] data, string what, int samples)
        {
            var analytic = ReferenceBackend.D(analyticTensor);
            var picks = Enumerable.Range(0, samples).Select(_ => rng.Next(data.Length)).Distinct().ToArray();
            var a = picks.Select(i => analytic[i]).ToArray();
            var num = picks.Select(i => Numeric(data, i)).ToArray();
            TensorAssert.Close(a, num, 1e-7, 1e-5, what);
        }

        CheckSample(grads.Input!, ReferenceBackend.D(x), "dL/dx", 8);
        foreach (var (name, g) in grads.Parameters)
            CheckSample(g, ReferenceBackend.D(model.Parameter(name)), $"dL/d{name}", 2);
        Assert.That(grads.Parameters, Has.Count.EqualTo(file.Weights.Count), "every parameter has a gradient");
    }
}
