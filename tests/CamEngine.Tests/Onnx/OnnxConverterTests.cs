using NUnit.Framework;
using CamEngine.Model;
using CamEngine.Onnx;
using static CamEngine.Tests.Onnx.OnnxBuild;

namespace CamEngine.Tests.Onnx;

[TestFixture]
public class OnnxConverterTests
{
    internal static byte[] Fixture(string name) =>
        File.ReadAllBytes(Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", "models", name));

    private static Dictionary<string, int> OpCounts(ModelFile m) =>
        m.Graph.Nodes.GroupBy(n => n.Op).ToDictionary(g => g.Key, g => g.Count());

    private static int[] ShapeOf(ModelFile m, string tensor) =>
        (m.Graph.FindByOutput(tensor) ?? throw new AssertionException($"no node produces '{tensor}'")).Shape;

    [Test]
    public void TinyGapCnn_ConvertsWithTheExportedStructure()
    {
        var m = OnnxConverter.Convert(Fixture("tiny_gapcnn.onnx"));
        Assert.That(OpCounts(m), Is.EquivalentTo(new Dictionary<string, int>
        {
            [Ops.Conv] = 3, [Ops.Relu] = 3, [Ops.MaxPool] = 3, [Ops.GlobalAvgPool] = 1, [Ops.Flatten] = 1, [Ops.Gemm] = 1,
        }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Graph.InputName, Is.EqualTo("input"));
            Assert.That(m.Graph.InputShape, Is.EqualTo(new[] { 3, 32, 32 }));
            Assert.That(m.Graph.OutputName, Is.EqualTo("logits"));
            Assert.That(m.Graph.OutputShape, Is.EqualTo(new[] { 10 }));
            Assert.That(ShapeOf(m, "/relu3/Relu_output_0"), Is.EqualTo(new[] { 64, 8, 8 }));
            Assert.That(ShapeOf(m, "/pool3/MaxPool_output_0"), Is.EqualTo(new[] { 64, 4, 4 }));
            Assert.That(m.Graph.FindByOutput("/relu3/Relu_output_0")!.Name, Is.EqualTo("/relu3/Relu"));
            Assert.That(m.ParameterCount, Is.EqualTo(24234));
            Assert.That(m.Weights["fc.weight"].Shape, Is.EqualTo(new[] { 10, 64 }));
            Assert.That(m.Weights["conv1.weight"].Shape, Is.EqualTo(new[] { 16, 3, 3, 3 }));
            Assert.That(m.Graph.Preprocessing.ResizeShorter, Is.EqualTo(36));
            Assert.That(m.Graph.Preprocessing.Mean, Is.EqualTo(Preprocessing.ImageNetMean));
        }
        var fc = m.Graph.Nodes.Single(n => n.Op == Ops.Gemm);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fc.Name, Is.EqualTo("/fc/Gemm"));
            Assert.That(fc.Param("weight"), Is.EqualTo("fc.weight"));
            Assert.That(fc.Param("bias"), Is.EqualTo("fc.bias"));
            Assert.That(fc.Int("transB", -1), Is.EqualTo(1));
        }
        var conv1 = m.Graph.Nodes[0];
        Assert.That(conv1.Attrs["pads"], Is.EqualTo(new double[] { 1, 1, 1, 1 }));
    }

    [Test]
    public void TinyResNet_ConvertsWithTheExportedStructure()
    {
        var m = OnnxConverter.Convert(Fixture("tiny_resnet.onnx"));
        Assert.That(OpCounts(m), Is.EquivalentTo(new Dictionary<string, int>
        {
            [Ops.Conv] = 6, [Ops.Relu] = 5, [Ops.Add] = 2, [Ops.GlobalAvgPool] = 1, [Ops.Flatten] = 1, [Ops.Gemm] = 1,
        }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ShapeOf(m, "/block2/relu2/Relu_output_0"), Is.EqualTo(new[] { 16, 16, 16 }));
            Assert.That(ShapeOf(m, "/block1/relu2/Relu_output_0"), Is.EqualTo(new[] { 16, 32, 32 }));
            Assert.That(m.Graph.OutputShape, Is.EqualTo(new[] { 10 }));
            // models.json "params" (10266) counts the PyTorch module: 9904 conv weights, 6 BatchNorms x 16 x (gamma,
            // beta) = 192 and the fc's 170. The exporter folded the BatchNorms, leaving one 16-value bias per conv
            // (96) instead: 9904 + 96 + 170 = 10170, every initializer of the ONNX file.
            Assert.That(m.ParameterCount, Is.EqualTo(10266 - 192 + 96));
            var onnx = OnnxParser.ParseModel(Fixture("tiny_resnet.onnx"));
            Assert.That(m.ParameterCount, Is.EqualTo(onnx.Graph.Initializers.Sum(t => t.Count)));
        }
    }

    [Test]
    public void Options_OverridePreprocessingAndAddLabels()
    {
        var labels = Enumerable.Range(0, 10).Select(i => $"class{i}").ToArray();
        var m = OnnxConverter.Convert(Fixture("tiny_gapcnn.onnx"), new OnnxConvertOptions
        {
            Mean = [0.5f, 0.5f, 0.5f], Std = [0.25f, 0.25f, 0.25f], ResizeShorter = 40, Labels = labels,
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Graph.Preprocessing.Mean, Is.EqualTo(new[] { 0.5f, 0.5f, 0.5f }));
            Assert.That(m.Graph.Preprocessing.Std, Is.EqualTo(new[] { 0.25f, 0.25f, 0.25f }));
            Assert.That(m.Graph.Preprocessing.ResizeShorter, Is.EqualTo(40));
            Assert.That(m.Graph.Labels, Is.EqualTo(labels));
        }
        Assert.Throws<InvalidModelFileException>(() =>
            OnnxConverter.Convert(Fixture("tiny_gapcnn.onnx"), new OnnxConvertOptions { Labels = ["a", "b"] }));
    }

    // ---- synthetic models ----

    /// <summary>x (1,2,6,6) -> Conv 4x2x3x3 stride 2 pads [1,0,1,2] -> Relu -> GAP -> Flatten -> Gemm (3x4, transB).</summary>
    internal static byte[] ConvModel(bool packed, TensorEncoding enc)
    {
        var nodes = new[]
        {
            Node("Conv", "conv", ["x", "w", "b"], ["c"], AttrInts("kernel_shape", [3, 3], packed),
                AttrInts("strides", [2, 2], packed), AttrInts("pads", [1, 0, 1, 2], packed), AttrInt("group", 1)),
            Node("Relu", "relu", ["c"], ["r"]),
            Node("GlobalAveragePool", "gap", ["r"], ["g"]),
            Node("Flatten", "flat", ["g"], ["f"], AttrInt("axis", 1)),
            Node("Gemm", "fc", ["f", "fw", "fb"], ["y"], AttrInt("transB", 1), AttrFloat("alpha", 1f)),
        };
        var inits = new[]
        {
            Tensor("w", [4, 2, 3, 3], Values(72, 1), enc, packed),
            Tensor("b", [4], Values(4, 2), enc, packed),
            Tensor("fw", [3, 4], Values(12, 3), enc, packed),
            Tensor("fb", [3], Values(3, 4), enc, packed),
        };
        return OnnxBuild.Model(nodes, inits, ValueInfo("x", null, 2, 6, 6), ValueInfo("y", null, 3));
    }

    [Test]
    public void ConvModel_HasExpectedShapesAndAttributes()
    {
        var m = OnnxConverter.Convert(ConvModel(false, TensorEncoding.Raw));
        var conv = m.Graph.Nodes[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Graph.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "conv", "relu", "gap", "flatten", "gemm" }));
            Assert.That(conv.Shape, Is.EqualTo(new[] { 4, 3, 3 }));
            Assert.That(conv.Attrs["pads"], Is.EqualTo(new double[] { 1, 0, 1, 2 }));
            Assert.That(conv.Attrs["strides"], Is.EqualTo(new double[] { 2, 2 }));
            Assert.That(conv.Attrs["kernel"], Is.EqualTo(new double[] { 3, 3 }));
            Assert.That(conv.Attrs["out_channels"], Is.EqualTo(new double[] { 4 }));
            Assert.That(m.Graph.OutputShape, Is.EqualTo(new[] { 3 }));
            Assert.That(m.ParameterCount, Is.EqualTo(72 + 4 + 12 + 3));
            Assert.That(m.Weights["w"].Data, Is.EqualTo(Values(72, 1)));
        }
    }

    [Test]
    public void PackedAndUnpackedEncodings_GiveIdenticalModels()
    {
        var reference = OnnxConverter.Convert(ConvModel(false, TensorEncoding.Raw));
        foreach (bool packed in new[] { false, true })
        {
            foreach (var enc in Enum.GetValues<TensorEncoding>())
            {
                var m = OnnxConverter.Convert(ConvModel(packed, enc));
                Assert.That(m.Graph.ToJson(), Is.EqualTo(reference.Graph.ToJson()), $"packed={packed} {enc}");
                foreach (var (name, t) in reference.Weights)
                {
                    Assert.That(m.Weights[name].Shape, Is.EqualTo(t.Shape), $"{name} packed={packed} {enc}");
                    Assert.That(m.Weights[name].Data, Is.EqualTo(t.Data), $"{name} packed={packed} {enc}");
                }
            }
        }
    }

    [Test]
    public void ConvBatchNormRelu_FoldsBatchNormIntoTheConv()
    {
        const float eps = 1e-3f;
        var w = Values(3 * 2 * 3 * 3, 10);
        var b = Values(3, 11);
        float[] gamma = [1.5f, -0.5f, 0.75f], beta = [0.1f, 0.2f, -0.3f], mean = [0.05f, -0.2f, 0.4f], var = [0.9f, 0.01f, 2.5f];
        var bytes = OnnxBuild.Model(
            [
                Node("Conv", "/conv/Conv", ["x", "conv.weight", "conv.bias"], ["/conv/Conv_output_0"],
                    AttrInts("kernel_shape", [3, 3]), AttrInts("pads", [1, 1, 1, 1])),
                Node("BatchNormalization", "/bn/BatchNormalization", ["/conv/Conv_output_0", "g", "be", "m", "v"],
                    ["/bn/BatchNormalization_output_0"], AttrFloat("epsilon", eps), AttrFloat("momentum", 0.9f)),
                Node("Relu", "/relu/Relu", ["/bn/BatchNormalization_output_0"], ["y"]),
            ],
            [
                Tensor("conv.weight", [3, 2, 3, 3], w), Tensor("conv.bias", [3], b), Tensor("g", [3], gamma),
                Tensor("be", [3], beta), Tensor("m", [3], mean), Tensor("v", [3], var),
            ],
            ValueInfo("x", 1, 2, 5, 5), ValueInfo("y", 1, 3, 5, 5));
        var model = OnnxConverter.Convert(bytes);

        Assert.That(model.Graph.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "conv", "relu" }));
        var conv = model.Graph.Nodes[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(conv.Name, Is.EqualTo("/conv/Conv"));
            Assert.That(conv.Output, Is.EqualTo("/bn/BatchNormalization_output_0"));
            Assert.That(conv.Shape, Is.EqualTo(new[] { 3, 5, 5 }));
            Assert.That(conv.Param("weight"), Is.EqualTo("/conv/Conv.weight_folded"));
            Assert.That(conv.Param("bias"), Is.EqualTo("/conv/Conv.bias_folded"));
            Assert.That(model.Graph.Nodes[1].Inputs, Is.EqualTo(new[] { "/bn/BatchNormalization_output_0" }));
            // Only the folded tensors remain: 54 weights + 3 biases.
            Assert.That(model.Weights.Keys, Is.EquivalentTo(new[] { "/conv/Conv.weight_folded", "/conv/Conv.bias_folded" }));
            Assert.That(model.ParameterCount, Is.EqualTo(57));
        }
        var fw = model.Weights["/conv/Conv.weight_folded"].Data;
        var fb = model.Weights["/conv/Conv.bias_folded"].Data;
        for (int c = 0; c < 3; c++)
        {
            double s = gamma[c] / Math.Sqrt((double)var[c] + eps);
            for (int j = 0; j < 18; j++)
            {
                double expect = w[c * 18 + j] * s;
                Assert.That(fw[c * 18 + j], Is.EqualTo(expect).Within(1e-6 * Math.Abs(expect) + 1e-9), $"w[{c},{j}]");
            }
            double eb = (b[c] - mean[c]) * s + beta[c];
            Assert.That(fb[c], Is.EqualTo(eb).Within(1e-6 * Math.Abs(eb) + 1e-9), $"b[{c}]");
        }
        // Channel 1 by hand: gamma -0.5, var 0.01, eps 1e-3: scale = -0.5 / sqrt(0.011) = -4.767312946...
        Assert.That(fb[1], Is.EqualTo((b[1] + 0.2) * -4.7673129462279613 + 0.2).Within(1e-5));
    }

    [Test]
    public void BatchNormWithoutConv_IsKeptAsAPerChannelAffineOp()
    {
        var bytes = OnnxBuild.Model(
            [
                Node("Relu", "r", ["x"], ["a"]),
                Node("BatchNormalization", "bn", ["a", "g", "be", "m", "v"], ["y"]),
            ],
            [Tensor("g", [2], [2, -0.5f]), Tensor("be", [2], [0.1f, 0.2f]), Tensor("m", [2], [0.3f, -1]), Tensor("v", [2], [4, 0.01f])],
            ValueInfo("x", 1, 2, 4, 4), ValueInfo("y", 1, 2, 4, 4));
        var m = OnnxConverter.Convert(bytes);
        var bn = m.Graph.Nodes[1];
        Assert.That(bn.Op, Is.EqualTo(Ops.BatchNorm));
        var scale = m.Weights[bn.Param("scale")!].Data;
        var shift = m.Weights[bn.Param("shift")!].Data;
        // scale = gamma / sqrt(var + 1e-5), shift = beta - mean * scale, by hand in double.
        double s0 = 2 / Math.Sqrt(4.00001), s1 = -0.5 / Math.Sqrt(0.01001);
        Assert.That(scale[0], Is.EqualTo(s0).Within(1e-6));
        Assert.That(scale[1], Is.EqualTo(s1).Within(1e-5));
        Assert.That(shift[0], Is.EqualTo(0.1 - 0.3 * s0).Within(1e-6));
        Assert.That(shift[1], Is.EqualTo(0.2 + s1).Within(1e-5));
    }

    private static byte[] SamePadModel(string autoPad, int h, int w, long[] kernel, long[] strides, int k = 2)
    {
        var weights = Values(k * 1 * (int)kernel[0] * (int)kernel[1], 5);
        return OnnxBuild.Model(
            [Node("Conv", "conv", ["x", "w"], ["y"], AttrString("auto_pad", autoPad), AttrInts("strides", strides))],
            [Tensor("w", [k, 1, (int)kernel[0], (int)kernel[1]], weights)],
            ValueInfo("x", 1, 1, h, w), ValueInfo("y"));
    }

    [TestCase("SAME_UPPER", new double[] { 1, 0, 2, 0 })]
    [TestCase("SAME_LOWER", new double[] { 2, 0, 1, 0 })]
    [TestCase("VALID", new double[] { 0, 0, 0, 0 })]
    public void AutoPad_BecomesExplicitPads(string autoPad, double[] pads)
    {
        // H: 5 with kernel 4, stride 1 -> out 5, total pad 3. W: 6 with kernel 2, stride 2 -> out 3, total pad 0.
        var m = OnnxConverter.Convert(SamePadModel(autoPad, 5, 6, [4, 2], [1, 2]));
        var conv = m.Graph.Nodes[0];
        Assert.That(conv.Attrs["pads"], Is.EqualTo(pads));
        Assert.That(conv.Shape, Is.EqualTo(autoPad == "VALID" ? new[] { 2, 2, 3 } : new[] { 2, 5, 3 }));
    }

    [Test]
    public void AutoPad_SameUpperWithStride_MatchesOnnxRule()
    {
        // 7 with kernel 3, stride 2: out ceil(7/2) = 4, total (4-1)*2 + 3 - 7 = 2 -> 1 each side.
        var m = OnnxConverter.Convert(SamePadModel("SAME_UPPER", 7, 7, [3, 3], [2, 2]));
        Assert.That(m.Graph.Nodes[0].Attrs["pads"], Is.EqualTo(new double[] { 1, 1, 1, 1 }));
        Assert.That(m.Graph.Nodes[0].Shape, Is.EqualTo(new[] { 2, 4, 4 }));
    }

    [Test]
    public void FullWindowAveragePool_BecomesGap_OtherwiseAvgPool()
    {
        byte[] Pool(long k) => OnnxBuild.Model(
            [Node("AveragePool", "pool", ["x"], ["y"], AttrInts("kernel_shape", [k, k]), AttrInts("strides", [k, k]))],
            [], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var gap = OnnxConverter.Convert(Pool(4));
        var avg = OnnxConverter.Convert(Pool(2));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(gap.Graph.Nodes[0].Op, Is.EqualTo(Ops.GlobalAvgPool));
            Assert.That(gap.Graph.Nodes[0].Shape, Is.EqualTo(new[] { 3, 1, 1 }));
            Assert.That(avg.Graph.Nodes[0].Op, Is.EqualTo(Ops.AvgPool));
            Assert.That(avg.Graph.Nodes[0].Shape, Is.EqualTo(new[] { 3, 2, 2 }));
        }
    }

    [Test]
    public void IdentityAndDropout_AreRemoved()
    {
        var bytes = OnnxBuild.Model(
            [
                Node("Relu", "r1", ["x"], ["a"]),
                Node("Identity", "id", ["a"], ["b"]),
                Node("Dropout", "drop", ["b"], ["c"], AttrFloat("ratio", 0.5f)),
                Node("Relu", "r2", ["c"], ["y"]),
            ],
            [], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var m = OnnxConverter.Convert(bytes);
        Assert.That(m.Graph.Nodes.Select(n => n.Name), Is.EqualTo(new[] { "r1", "r2" }));
        Assert.That(m.Graph.Nodes[1].Inputs, Is.EqualTo(new[] { "a" }));
    }

    [TestCase(0, true)]
    [TestCase(1, false)]
    public void Dropout12_TrainingModeInput_MustBeFalse(int trainingMode, bool converts)
    {
        // BOOL (9) tensor, value in raw_data (one byte).
        var flag = new ProtoWriter().Int(2, 9).Bytes(9, [(byte)trainingMode]).String(8, "training_mode");
        var bytes = OnnxBuild.Model(
            [Node("Relu", "r1", ["x"], ["a"]), Node("Dropout", "drop", ["a", "", "training_mode"], ["y"], AttrInt("seed", 0))],
            [flag], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"), opset: 13);
        if (converts)
            Assert.That(OnnxConverter.Convert(bytes).Graph.OutputName, Is.EqualTo("a"));
        else
            Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(bytes));
    }

    [Test]
    public void ConstantNode_CanSupplyAConvWeight()
    {
        var value = new ProtoWriter().String(1, "value").Message(5, Tensor("", [1, 3, 1, 1], [1f, 2f, 3f])).Int(20, 4);
        var bytes = OnnxBuild.Model(
            [Node("Constant", "const", [], ["k"], value), Node("Conv", "conv", ["x", "k"], ["y"])],
            [], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var m = OnnxConverter.Convert(bytes);
        Assert.That(m.Weights[m.Graph.Nodes[0].Param("weight")!].Data, Is.EqualTo(new[] { 1f, 2f, 3f }));
        Assert.That(m.Graph.Nodes[0].Shape, Is.EqualTo(new[] { 1, 4, 4 }));
    }

    [Test]
    public void GemmScalarBias_IsBroadcast_OtherBiasShapesRefused()
    {
        byte[] Gemm(int[] cDims, float[] c) => OnnxBuild.Model(
            [Node("Flatten", "f", ["x"], ["a"]), Node("Gemm", "fc", ["a", "w", "c"], ["y"], AttrInt("transB", 1))],
            [Tensor("w", [2, 12], Values(24, 7)), Tensor("c", cDims, c)],
            ValueInfo("x", 1, 3, 2, 2), ValueInfo("y"));
        var m = OnnxConverter.Convert(Gemm([], [0.5f]));
        var bias = m.Weights[m.Graph.Nodes[1].Param("bias")!];
        Assert.That(bias.Data, Is.EqualTo(new[] { 0.5f, 0.5f }));
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(Gemm([2, 2], [1, 2, 3, 4])));
        Assert.That(e.Message, Does.Contain("fc").And.Contain("bias C"));
    }

    [Test]
    public void UnknownOperator_NamesTheOpAndTheNode()
    {
        var bytes = OnnxBuild.Model(
            [Node("Relu", "/relu/Relu", ["x"], ["a"]), Node("LRN", "/lrn/LRN", ["a"], ["y"])],
            [], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(bytes));
        Assert.That(e.Message, Does.Contain("'LRN'").And.Contain("'/lrn/LRN'").And.Contain("supported: Conv"));
    }

    [Test]
    public void ExternalData_IsRefused()
    {
        var t = new ProtoWriter().Ints(1, [2], false).Int(2, 1).String(8, "w")
            .Message(13, new ProtoWriter().String(1, "location").String(2, "weights.bin")).Int(14, 1);
        var bytes = OnnxBuild.Model([Node("Relu", "r", ["x"], ["y"])], [t], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(bytes));
        Assert.That(e.Message, Does.Contain("external").And.Contain("'w'"));
    }

    [Test]
    public void InputShapes_MustBeFixedImages()
    {
        byte[] WithInput(ProtoWriter input) => OnnxBuild.Model([Node("Relu", "r", ["x"], ["y"])], [], input, ValueInfo("y"));
        Assert.That(OnnxConverter.Convert(WithInput(ValueInfo("x", null, 3, 4, 4))).Graph.InputShape,
            Is.EqualTo(new[] { 3, 4, 4 }));
        var dyn = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(WithInput(ValueInfo("x", 1, 3, null, 4))));
        Assert.That(dyn.Message, Does.Contain("dynamic"));
        var flat = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(WithInput(ValueInfo("x", 1, 12))));
        Assert.That(flat.Message, Does.Contain("2 dimensions"));
    }

    [Test]
    public void TensorDataDisagreeingWithDims_IsInvalid()
    {
        var bytes = OnnxBuild.Model(
            [Node("Conv", "conv", ["x", "w"], ["y"])],
            [Tensor("w", [2, 1, 3, 3], Values(17, 1))],
            ValueInfo("x", 1, 1, 4, 4), ValueInfo("y"));
        var e = Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(bytes));
        Assert.That(e.Message, Does.Contain("'w'").And.Contain("68 bytes"));
    }

    [Test]
    public void SubgraphAttribute_IsRefused()
    {
        var attr = new ProtoWriter().String(1, "then_branch").Message(6, new ProtoWriter().String(2, "g")).Int(20, 5);
        var bytes = OnnxBuild.Model([Node("If", "if", ["x"], ["y"], attr)], [], ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(bytes));
    }

    [Test]
    public void Int64Initializers_AreDecoded()
    {
        var bytes = OnnxBuild.Model([Node("Relu", "r", ["x"], ["y"])], [Int64Tensor("shape", [2], [-1, 64])],
            ValueInfo("x", 1, 3, 4, 4), ValueInfo("y"));
        var model = OnnxParser.ParseModel(bytes);
        Assert.That(model.Graph.Initializers[0].Ints, Is.EqualTo(new long[] { -1, 64 }));
    }
}
