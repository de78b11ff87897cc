using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Training;
using NUnit.Framework;

namespace CamEngine.Tests.Training;

/// <summary>
/// The classifier shipped in models/fashion_gapcnn.safetensors, trained by the engine itself (`cam train`, see
/// models/README.md): its accuracy on the first 1,000 Fashion-MNIST test images (committed as IDX fixtures), and
/// CAM = Grad-CAM up to the constant 1/(h w) on its GAP-linear head.
/// </summary>
[TestFixture]
public sealed class ShippedFashionModelTests
{
    private static ModelFile Shipped() =>
        ModelFile.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "fashion_gapcnn.safetensors"));

    private static FashionMnist Subset() =>
        FashionMnist.Load(Path.Combine(FixturePaths.Root, "fashion"), train: false);

    [Test]
    public void Accuracy_on_the_fixed_test_subset()
    {
        var data = Subset();
        Assert.That(data.Count, Is.EqualTo(1000));
        using var model = DeviceModel.Load(Shipped(), TestDevice.Cpu);
        double accuracy = Trainer.Evaluate(model, data, 250);
        TestContext.Out.WriteLine($"accuracy on the first 1000 test images: {accuracy:P1}");
        Assert.That(accuracy, Is.GreaterThanOrEqualTo(0.90));
        Assert.That(model.Graph.Labels, Is.EqualTo(FashionMnist.Labels));
    }

    [Test]
    public void Cam_equals_grad_cam_up_to_the_pooling_constant()
    {
        var data = Subset();
        using var model = DeviceModel.Load(Shipped(), TestDevice.Cpu);
        var x = new float[8 * 28 * 28];
        var labels = new int[8];
        data.Fill(Enumerable.Range(0, 8).ToArray(), x, labels);
        var input = new Tensors.HostTensor([8, 1, 28, 28], x);
        var layer = model.Graph.DefaultTargetLayer().Output;
        var options = new ExplainOptions { Layers = [layer] };
        var results = new Explainer(model).Explain(input, [new ClassActivationMap(), new GradCam()], options);
        var shape = model.Graph.DefaultTargetLayer().Shape;
        float plane = shape[1] * shape[2];
        for (int i = 0; i < 8; i++)
        {
            var cam = results["cam"][i].Raw.Data;
            var grad = results["gradcam"][i].Raw.Data;
            double scale = cam.Max(v => Math.Abs(v));
            TensorAssert.Close(grad.Select(v => v * plane).ToArray(), cam, 1e-5 * scale, 1e-4, $"image {i}");
            Assert.That(results["gradcam"][i].Map.Data, Is.EqualTo(results["cam"][i].Map.Data).Within(1e-4), $"final map {i}");
        }
    }
}
