using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Autodiff;

/// <summary>
/// Weight and bias gradients of the reverse pass against PyTorch (tools/fixtures/make_autodiff_fixtures.py:
/// a conv/ReLU/max-pool/residual/GAP/linear network without BatchNorm, d logit_c / d parameter for every parameter).
/// </summary>
[TestFixture]
public sealed class WeightGradientTests
{
    [Test]
    public void Parameter_gradients_match_pytorch()
    {
        var reference = Npz.Read(FixturePaths.Autodiff("small_cnn.npz"));
        var file = OnnxConverter.ConvertFile(FixturePaths.Autodiff("small_cnn.onnx"));
        var b = TestDevice.Ilgpu;
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(reference["x"]);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        TensorAssert.Close(logits, reference["logits"].Data, 1e-5, 1e-4, "logits");
        int c = (int)reference["target_class"].Data[0];
        var seed = new float[logits.Length];
        seed[c] = 1;
        using var s = b.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, s, new CamEngine.Graph.BackwardRequest { Parameters = true });
        var names = reference.Keys.Where(k => k.StartsWith("grad.", StringComparison.Ordinal)).Select(k => k[5..]).ToList();
        Assert.That(names, Has.Count.EqualTo(7));
        Assert.That(grads.Parameters.Keys, Is.EquivalentTo(names));
        foreach (var name in names)
        {
            var expected = reference["grad." + name].Data;
            double scale = expected.Max(v => Math.Abs(v));
            TensorAssert.Close(b.Download(grads.Parameters[name]), expected, 1e-5 * scale, 1e-3, $"d logit / d {name}");
        }
    }
}
