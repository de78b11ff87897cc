using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Model;

/// <summary>The models shipped in models/ are exactly what `cam convert` makes of the fixture ONNX files.</summary>
[TestFixture]
public sealed class BundledModelTests
{
    [TestCase("tiny_gapcnn")]
    [TestCase("tiny_resnet")]
    public void Shipped_model_equals_a_fresh_conversion(string name)
    {
        var shipped = ModelFile.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", name + ".safetensors"));
        var fresh = OnnxConverter.ConvertFile(FixturePaths.Onnx(name));
        Assert.That(shipped.Graph.ToJson(), Is.EqualTo(fresh.Graph.ToJson()));
        Assert.That(shipped.Weights.Keys, Is.EquivalentTo(fresh.Weights.Keys));
        foreach (var (key, t) in fresh.Weights)
            Assert.That(shipped.Weights[key].Data, Is.EqualTo(t.Data), key);
    }
}
