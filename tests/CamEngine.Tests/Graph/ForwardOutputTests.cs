using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Graph;

/// <summary>
/// <see cref="DeviceModel.ForwardOutput"/> frees activations after their last reader: its output must equal
/// the keep-everything forward's bit for bit (residual branches read late, flatten views of freed storage),
/// pass after pass on the pooled CPU storage, and the pass must hold no intermediate activation.
/// </summary>
[TestFixture]
public sealed class ForwardOutputTests
{
    [TestCase("tiny_resnet", "/block1/relu2/Relu_output_0")]
    [TestCase("tiny_gapcnn", "/relu2/Relu_output_0")]
    public void Output_only_forward_matches_the_full_forward(string modelName, string layer)
    {
        var file = OnnxConverter.ConvertFile(FixturePaths.Onnx(modelName));
        var b = new CpuBackend(CpuSimd.Vector256);
        using var model = DeviceModel.Load(file, b);
        var rng = new Random(7);
        foreach (int n in new[] { 1, 3, 5 })
        {
            int[] shape = [n, .. file.Graph.InputShape];
            var data = Enumerable.Range(0, shape.Aggregate(1, (p, d) => p * d))
                .Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            using var x = b.Upload(data, shape);
            for (int rep = 0; rep < 2; rep++)
            {
                float[] expected;
                using (var full = model.Forward(x))
                    expected = b.Download(full.Output);
                using var lean = model.ForwardOutput(x);
                var actual = b.Download(lean.Output);
                Assert.That(actual, Is.EqualTo(expected), $"batch {n}, pass {rep}");
                Assert.Throws<CamEngineException>(() => _ = lean[layer]);
                Assert.That(lean.Argmax, Is.Empty);
                Assert.That(b.Download(x), Is.EqualTo(data), "the input stays the caller's");
            }
        }
    }
}
