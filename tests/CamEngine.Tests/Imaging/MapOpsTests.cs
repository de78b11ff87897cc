using CamEngine.Imaging;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class MapOpsTests
{
    [Test]
    public void MinMax_OfConstantMap_IsAllZeros()
    {
        var m = MapOps.MinMaxNormalize(new HostTensor([2, 2], [3f, 3f, 3f, 3f]));
        Assert.That(m.Data, Is.EqualTo(new[] { 0f, 0f, 0f, 0f }));
    }

    [Test]
    public void MinMax_FollowsPytorchGradCam()
    {
        var m = MapOps.MinMaxNormalize(new HostTensor([4], [-1f, 0f, 1f, 3f]));
        // (x + 1) / (1e-7 + 4)
        Assert.That(m.Data, Is.EqualTo(new[] { 0f, 0.25f, 0.5f, 1f }).Within(1e-6f));
        // 4 + 1e-7 rounds to 4f, as in NumPy's float32 division; for tiny ranges the epsilon shows:
        var tiny = MapOps.MinMaxNormalize(new HostTensor([2], [0f, 1e-6f]));
        Assert.That(tiny.Data[1], Is.EqualTo(1e-6 / (1e-6 + 1e-7)).Within(1e-6));
    }

    [Test]
    public void Relu_ZeroesNegatives()
    {
        var src = new HostTensor([3], [-2f, 0f, 5f]);
        Assert.That(MapOps.Relu(src).Data, Is.EqualTo(new[] { 0f, 0f, 5f }));
        Assert.That(src.Data[0], Is.EqualTo(-2f), "the tensor overload copies");
    }

    [Test]
    public void EnsureFinite_NamesMapAndIndex()
    {
        Assert.That(() => MapOps.EnsureFinite(new[] { 0f, float.PositiveInfinity }, "L0.gradcam"),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("L0.gradcam").And.Message.Contains("index 1"));
        Assert.DoesNotThrow(() => MapOps.EnsureFinite(new[] { 0f, 1e30f }, "ok"));
    }
}
