using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// Small seeded variants of the CNN families users bring (tools/fixtures/make_family_fixtures.py), exported by
/// PyTorch at several opsets: each converts, and on the ILGPU CPU accelerator reproduces PyTorch's logits and the
/// input gradient of the top-1 logit; the families with depthwise convolutions also on the managed CPU backend
/// (its <c>DepthwiseConv</c> forward with fused epilogues, and both backward passes through it).
/// </summary>
[TestFixture]
public sealed class FamilyFixtureTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "families");

    public static IEnumerable<TestCaseData> Cases()
    {
        (string Name, int[] Opsets)[] families =
        [
            ("resnet18", [9, 11, 17]), ("resnet50", [11, 17]), ("vgg11", [11, 17]), ("vgg11_bn", [11, 17]),
            ("squeezenet1_1", [11, 17]), ("mobilenet_v2", [9, 11, 17]), ("densenet121", [11, 17]),
            ("efficientnet_b0", [11, 17]), ("opszoo", [11, 17]),
        ];
        foreach (var (name, opsets) in families)
        {
            foreach (int opset in opsets)
                yield return new TestCaseData(name, opset).SetName($"Family_{name}_opset{opset}_matches_PyTorch");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Family_matches_PyTorch(string name, int opset) => Check(name, opset, TestDevice.Ilgpu);

    [TestCase("mobilenet_v2", 17)]
    [TestCase("efficientnet_b0", 17)]
    public void Depthwise_family_matches_PyTorch_on_the_managed_cpu(string name, int opset) => Check(name, opset, TestDevice.Cpu);

    private static void Check(string name, int opset, Backend b)
    {
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset{opset}.onnx"));
        var refs = Npz.Read(Path.Combine(Dir, name + ".npz"));
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(refs["input"]);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        var expected = refs["logits"].Data;
        TensorAssert.Close(logits, expected, 1e-5, 1e-4, $"{name} opset {opset} logits");

        int top1 = 0;
        for (int i = 1; i < expected.Length; i++)
        {
            if (expected[i] > expected[top1])
                top1 = i;
        }
        var seed = new float[logits.Length];
        seed[top1] = 1f;
        using var seedTensor = b.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true });
        var dx = b.Download(grads.Input!);
        var gx = refs["input_grad"].Data;
        double max = gx.Max(v => Math.Abs((double)v));
        Assert.That(max, Is.GreaterThan(0), "the reference gradient is not all zero");
        TensorAssert.Close(dx, gx, 1e-4 * max, 1e-3, $"{name} opset {opset} input gradient");
    }

    [Test]
    public void DenseNet_keeps_BatchNormalization_after_Concat_as_an_op()
    {
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, "densenet121.opset17.onnx"));
        var nodes = file.Graph.Nodes;
        var bn = nodes.Where(n => n.Op == Ops.BatchNorm).ToList();
        Assert.That(bn, Is.Not.Empty);
        foreach (var n in bn)
        {
            var producer = file.Graph.FindByOutput(n.Inputs[0]);
            Assert.That(producer?.Op, Is.EqualTo(Ops.Concat).Or.EqualTo(Ops.MaxPool).Or.EqualTo(Ops.AvgPool), n.Name);
        }
        Assert.That(nodes.Count(n => n.Op == Ops.Concat), Is.GreaterThan(0));
    }
}
