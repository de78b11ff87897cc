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
/// <see cref="DeviceModel.ForwardFor"/> keeps what a reverse pass to its layers reads: the layers' activations and
/// gradients must equal the full forward's bit for bit.
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

    [TestCase("tiny_resnet", "/stem/stem.0/Conv_output_0", new[] { "/block1/relu1/Relu_output_0" })]
    [TestCase("tiny_resnet", "/block1/conv2/Conv_output_0", new[] { "/block2/relu2/Relu_output_0" })]
    [TestCase("tiny_resnet", "/stem/stem.0/Conv_output_0", new[] { "/block1/relu2/Relu_output_0", "/block2/relu2/Relu_output_0" })]
    [TestCase("tiny_gapcnn", "/conv1/Conv_output_0", new[] { "/relu2/Relu_output_0" })]
    public void Layer_forward_gives_the_full_forwards_activations_and_gradients(string modelName, string freed, string[] layers)
    {
        // A mid-block layer keeps the skip branch the later addition reads; max pools after the layer keep their
        // routing; the trunk before the layer is freed.
        var file = OnnxConverter.ConvertFile(FixturePaths.Onnx(modelName));
        var b = new CpuBackend(CpuSimd.Vector256);
        using var model = DeviceModel.Load(file, b);
        var rng = new Random(11);
        foreach (int n in new[] { 1, 3 })
        {
            int[] shape = [n, .. file.Graph.InputShape];
            var data = Enumerable.Range(0, shape.Aggregate(1, (p, d) => p * d))
                .Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            using var x = b.Upload(data, shape);
            int classes = file.Graph.OutputShape[0];
            using var seed = b.Upload(Enumerable.Range(0, n * classes).Select(i => i % classes == 3 ? 1f : 0f).ToArray(), n, classes);
            var request = new BackwardRequest { Layers = layers };
            using var full = model.Forward(x);
            using var fullGrads = model.Backward(full, seed, request);
            for (int rep = 0; rep < 2; rep++)
            {
                using var lean = model.ForwardFor(x, layers);
                using var leanGrads = model.Backward(lean, seed, request);
                Assert.That(b.Download(lean.Output), Is.EqualTo(b.Download(full.Output)), $"output, batch {n}");
                foreach (var layer in layers)
                {
                    Assert.That(b.Download(lean[layer]), Is.EqualTo(b.Download(full[layer])), $"{layer}, batch {n}");
                    Assert.That(b.Download(leanGrads.Layers[layer]), Is.EqualTo(b.Download(fullGrads.Layers[layer])),
                        $"gradient at {layer}, batch {n}");
                }
                Assert.Throws<CamEngineException>(() => _ = lean[freed], "the trunk before the layers is freed");
                Assert.That(b.Download(x), Is.EqualTo(data), "the input stays the caller's");
            }
        }
    }
}
