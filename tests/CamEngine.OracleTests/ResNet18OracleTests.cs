using System.Diagnostics;
using System.Reflection;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;

namespace CamEngine.OracleTests;

/// <summary>
/// The pretrained ResNet-18 of Microsoft.ML.DnnImageFeaturizer.ResNet18 (CNTK export, opset 8, asymmetric pads,
/// unfolded BatchNormalization, 7x7 AveragePool head, 512-d embedding), converted by the engine and run on the managed
/// CPU backend, against ONNX Runtime on the original file.
/// </summary>
[TestFixture]
public sealed class ResNet18OracleTests
{
    private static string ModelPath =>
        typeof(ResNet18OracleTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .First(a => a.Key == "ResNet18Onnx").Value!;

    [Test]
    public void Embedding_matches_OnnxRuntime()
    {
        Assert.That(File.Exists(ModelPath), Is.True, $"restored model at {ModelPath}");
        var rng = new Random(2024);
        var input = new float[3 * 224 * 224];
        for (int i = 0; i < input.Length; i++)
            input[i] = (float)(rng.NextDouble() * 255 - 120); // BGR bytes minus a mean image: about [-120, 135]

        float[] expected;
        using (var session = new InferenceSession(ModelPath))
        {
            string name = session.InputMetadata.Keys.Single();
            var t = new DenseTensor<float>(input, [1, 3, 224, 224]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(name, t)]);
            expected = results[0].AsEnumerable<float>().ToArray();
        }
        Assert.That(expected, Has.Length.EqualTo(512));

        var file = OnnxConverter.ConvertFile(ModelPath);
        Assert.That(file.Graph.Nodes.Count(n => n.Op == Model.Ops.Conv), Is.EqualTo(22), "every BatchNormalization folds into its conv");
        Assert.That(file.Graph.SuggestedLayers().First(), Is.EqualTo("ReLU393_Output_0"),
            "the suggested CAM layer is the last spatial layer before the pooling head");
        // The managed CPU backend: the ILGPU kernels are proven against the reference on small shapes in the main
        // test project, and ILGPU's CPU accelerator needs about 90 s for this network.
        using var backend = Devices.Open("cpu");
        using var model = DeviceModel.Load(file, backend);
        using var x = backend.Upload(input, 1, 3, 224, 224);
        var clock = Stopwatch.StartNew();
        using var pass = model.Forward(x);
        backend.Synchronize();
        clock.Stop();
        var actual = backend.Download(pass.Output);
        double max = expected.Max(v => Math.Abs((double)v)), worst = 0;
        int bad = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            worst = Math.Max(worst, err / Math.Max(Math.Abs(expected[i]), 1e-3 * max));
            if (err > 1e-5 * max + 1e-4 * Math.Abs(expected[i]))
                bad++;
        }
        TestContext.Out.WriteLine($"ResNet-18 224x224 forward on {backend.DeviceDescription}: {clock.ElapsedMilliseconds} ms; "
            + $"max relative error vs ONNX Runtime {worst:G3} (max |y| {max:G4})");
        Assert.That(bad, Is.Zero, $"{bad}/512 embedding values differ from ONNX Runtime (worst relative {worst:G3})");
    }
}
