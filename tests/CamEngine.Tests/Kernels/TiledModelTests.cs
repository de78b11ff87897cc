using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// A whole model on the tiled kernels, end to end on the device: the bundled tiny ResNet (convs with bias, ReLU,
/// residual additions, max-pool, global average pool, dense layer) forward and in reverse to a layer and the input
/// (the weight gradients are the kernel tests' business: a bias gradient costs a group reduction per channel here), on ILGPU's CPU accelerator shaped like a GPU, against the reference backend; and the pass
/// itself moves nothing between host and device until the caller downloads a result.
/// </summary>
[TestFixture]
internal sealed class TiledModelTests
{
    private static string ModelPath => Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");

    [Test]
    public void Forward_and_reverse_passes_match_reference_and_stay_on_the_device()
    {
        var file = ModelFile.Load(ModelPath);
        using var gpu = IlgpuBackend.CreateTiledCpu();
        using var reference = new ReferenceBackend();
        using var model = DeviceModel.Load(file, gpu);
        using var refModel = DeviceModel.Load(file, reference);
        var shape = file.Graph.InputShape;
        int batch = 1, size = shape.Aggregate(1, (a, b) => a * b);
        var rng = new Random(11);
        var data = TensorAssert.Random(rng, batch * size);
        int classes = file.Graph.OutputShape.Aggregate(1, (a, b) => a * b);
        var seedData = new float[batch * classes];
        seedData[1] = 1f;
        seedData[2] = -0.5f;
        string layer = file.Graph.Nodes.Last(n => n.Op == Ops.Conv).Output;

        using var x = gpu.Upload(data, [batch, .. shape]);
        using var seed = gpu.Upload(seedData, batch, classes);
        long reads = gpu.HostReads, writes = gpu.HostWrites, syncs = gpu.Synchronizations;
        using var pass = model.Forward(x);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Layers = [layer], Input = true });
        Assert.That(gpu.HostReads, Is.EqualTo(reads), "no device-to-host copy inside the passes");
        Assert.That(gpu.HostWrites, Is.EqualTo(writes), "no host-to-device copy inside the passes");
        Assert.That(gpu.Synchronizations, Is.EqualTo(syncs), "no synchronization inside the passes");

        using var xr = reference.Upload(data, [batch, .. shape]);
        using var seedr = reference.Upload(seedData, batch, classes);
        using var passr = refModel.Forward(xr);
        using var gradsr = refModel.Backward(passr, seedr, new BackwardRequest { Layers = [layer], Input = true });

        Check(pass.Output, passr.Output, "logits");
        Check(grads.Layers[layer], gradsr.Layers[layer], $"d/d {layer}");
        Check(grads.Input!, gradsr.Input!, "d/d input");
    }

    private static void Check(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), 1e-4, 1e-3, what);
}
