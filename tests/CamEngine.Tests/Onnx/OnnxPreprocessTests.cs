using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;
using static CamEngine.Tests.Onnx.OnnxBuild;

namespace CamEngine.Tests.Onnx;

/// <summary>Preprocessing ONNX graphs read by <c>cam convert --preprocess</c>, built with the test protobuf writer.</summary>
[TestFixture]
public class OnnxPreprocessTests
{
    private const int H = 4, W = 5;

    /// <summary>x (1,3,4,5) -> Conv 2x3x1x1 -> Relu -> GAP: a 3-channel model for the preprocessing to match.</summary>
    private static byte[] RgbModel() => OnnxBuild.Model(
        [
            Node("Conv", "conv", ["x", "w"], ["c"], AttrInts("kernel_shape", [1, 1])),
            Node("Relu", "relu", ["c"], ["r"]),
            Node("GlobalAveragePool", "gap", ["r"], ["y"]),
        ],
        [Tensor("w", [2, 3, 1, 1], Values(6, 7))],
        ValueInfo("x", 1, 3, H, W), ValueInfo("y", 1, 2, 1, 1));

    /// <summary>The mean image of the ML.NET-style graph: 100 + c + y / 10 + x / 100.</summary>
    private static float[] MeanImage() =>
        Enumerable.Range(0, 3 * H * W).Select(i => 100f + i / (H * W) + i / W % H / 10f + i % W / 100f).ToArray();

    /// <summary>ML.NET's ResNetPreprocess.onnx in miniature: Split RGB, Concat as BGR, Sub a (1,3,H,W) mean image.</summary>
    internal static byte[] MlNetStyle(long opset = 8, bool splitAsInput = false)
    {
        var split = splitAsInput
            ? Node("Split", "split", ["in", "sizes"], ["R", "G", "B"], AttrInt("axis", 1))
            : Node("Split", "split", ["in"], ["R", "G", "B"], AttrInt("axis", 1), AttrInts("split", [1, 1, 1]));
        var inits = new List<ProtoWriter> { Tensor("MeanImage", [1, 3, H, W], MeanImage(), TensorEncoding.FloatDataPacked) };
        if (splitAsInput)
            inits.Add(Int64Tensor("sizes", [3], [1, 1, 1]));
        return OnnxBuild.Model(
            [split, Node("Concat", "concat", ["B", "G", "R"], ["bgr"], AttrInt("axis", 1)), Node("Sub", "sub", ["bgr", "MeanImage"], ["out"])],
            inits, ValueInfo("in", 1, 3, H, W), ValueInfo("out", 1, 3, H, W), opset);
    }

    private static ModelFile Convert(byte[] preprocess, int? resize = null) =>
        OnnxConverter.Convert(RgbModel(), new OnnxConvertOptions { PreprocessOnnx = preprocess, ResizeShorter = resize });

    [TestCase(8, false)]
    [TestCase(13, true)]
    public void MlNetStyleGraph_RecordsBgrScaleOneAndTheMeanImage(long opset, bool splitAsInput)
    {
        var m = Convert(MlNetStyle(opset, splitAsInput), resize: 5);
        var p = m.Graph.Preprocessing;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Scale, Is.EqualTo(1f));
            Assert.That(p.ChannelOrder, Is.EqualTo("bgr"));
            Assert.That(p.Mean, Is.EqualTo(new[] { 0f, 0f, 0f }));
            Assert.That(p.Std, Is.EqualTo(new[] { 1f, 1f, 1f }));
            Assert.That(p.ResizeShorter, Is.EqualTo(5));
            Assert.That(p.MeanImage, Is.EqualTo(OnnxConvertOptions.MeanImageTensorName));
            Assert.That(m.Weights[p.MeanImage!].Shape, Is.EqualTo(new[] { 3, H, W }));
            Assert.That(m.Weights[p.MeanImage!].Data, Is.EqualTo(MeanImage()));
            Assert.That(p.MeanImageTensor, Is.SameAs(m.Weights[p.MeanImage!]));
            Assert.That(m.ParameterCount, Is.EqualTo(6), "the mean image is not a parameter");
        }

        // Through the file and back, then onto a picture: pixel (x=3, y=2) = (r, g, b) = (10, 20, 30) gives
        // channel 0 (blue) 30 - (100 + 0 + 0.2 + 0.03) = -70.23 and channel 2 (red) 10 - 102.23 = -92.23.
        using var ms = new MemoryStream();
        m.Save(ms);
        var back = ModelFile.FromBytes(ms.ToArray());
        var img = new RgbImage(W, H);
        int at = img.Offset(3, 2);
        (img.Data[at], img.Data[at + 1], img.Data[at + 2]) = ((byte)10, (byte)20, (byte)30);
        var x = ImagePreprocessor.Normalize(img, back.Graph.Preprocessing).Data;
        int hw = H * W, i = 2 * W + 3;
        Assert.That(x[i], Is.EqualTo(30 - 100.23f).Within(1e-4f));
        Assert.That(x[hw + i], Is.EqualTo(20 - 101.23f).Within(1e-4f));
        Assert.That(x[2 * hw + i], Is.EqualTo(10 - 102.23f).Within(1e-4f));
    }

    [Test]
    public void TorchvisionStyleGraph_RecordsScaleMeanAndStd()
    {
        // x * (1/255) - mean(C,1,1), then / std(1,C,1,1), with an Identity in between.
        byte[] onnx = OnnxBuild.Model(
            [
                Node("Mul", "scale", ["in", "k"], ["s"]),
                Node("Identity", "id", ["s"], ["s2"]),
                Node("Sub", "mean", ["s2", "mean"], ["m"]),
                Node("Div", "std", ["m", "std"], ["out"]),
            ],
            [
                Tensor("k", [], [1f / 255f]),
                Tensor("mean", [3, 1, 1], [0.485f, 0.456f, 0.406f]),
                Tensor("std", [1, 3, 1, 1], [0.229f, 0.224f, 0.225f]),
            ],
            ValueInfo("in", null, 3, H, W), ValueInfo("out", null, 3, H, W));
        var p = Convert(onnx).Graph.Preprocessing;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Scale, Is.EqualTo(1f / 255f));
            Assert.That(p.ChannelOrder, Is.EqualTo("rgb"));
            Assert.That(p.Mean, Is.EqualTo(Preprocessing.ImageNetMean));
            Assert.That(p.Std, Is.EqualTo(Preprocessing.ImageNetStd));
            Assert.That(p.MeanImage, Is.Null);
        }
    }

    [Test]
    public void UnrecognisedGraphs_AreRefusedWithTheReason()
    {
        var mean = Tensor("MeanImage", [1, 3, H, W], MeanImage());
        var io = (ValueInfo("in", 1, 3, H, W), ValueInfo("out", 1, 3, H, W));
        byte[] Build(ProtoWriter[] nodes, ProtoWriter[]? inits = null) => OnnxBuild.Model(nodes, inits ?? [mean], io.Item1, io.Item2);
        var split = Node("Split", "split", ["in"], ["R", "G", "B"], AttrInt("axis", 1), AttrInts("split", [1, 1, 1]));
        var cases = new (byte[] Onnx, string Reason)[]
        {
            // G, B, R is neither RGB nor BGR.
            (Build([split, Node("Concat", "c", ["G", "B", "R"], ["out"], AttrInt("axis", 1))]), "neither RGB nor BGR"),
            (Build([Node("Relu", "relu", ["in"], ["out"])]), "node 'relu' (Relu) is not a recognised preprocessing step"),
            (Build([Node("Sub", "s1", ["in", "MeanImage"], ["a"]), Node("Sub", "s2", ["a", "MeanImage"], ["out"])]), "only one mean subtraction"),
            (Build([Node("Sub", "s", ["MeanImage", "in"], ["out"])]), "input 0 is not the image"),
            (Build([Node("Sub", "s", ["in", "m"], ["out"])], [Tensor("m", [1, 3, 2, 2], new float[12])]), "is not a scalar, (C,1,1) or (C,H,W)"),
            (Build([Node("Identity", "id", ["in"], ["x"])]), "output 'out' is not computed"),
            (Build([Node("Split", "split", ["in"], ["R", "G", "B"], AttrInt("axis", 2)), Node("Concat", "c", ["B", "G", "R"], ["out"], AttrInt("axis", 1))]),
                "only splits along the channel axis"),
        };
        foreach (var (onnx, reason) in cases)
        {
            var e = Assert.Throws<UnsupportedModelException>(() => Convert(onnx))!;
            Assert.That(e.Message, Does.StartWith("preprocessing ONNX is not recognised").And.Contain(reason));
        }
    }

    [Test]
    public void PreprocessingForAnotherInputSize_IsRefused()
    {
        byte[] onnx = OnnxBuild.Model([Node("Identity", "id", ["in"], ["out"])], [],
            ValueInfo("in", 1, 3, 224, 224), ValueInfo("out", 1, 3, 224, 224));
        Assert.That(() => Convert(onnx), Throws.TypeOf<UnsupportedModelException>().With.Message.Contain("(1,3,224,224); expected float (1,3,4,5)"));
    }

    [Test]
    public void NonFiniteMeanImage_IsRefused()
    {
        var bad = MeanImage();
        bad[7] = float.NaN;
        byte[] onnx = OnnxBuild.Model([Node("Sub", "s", ["in", "m"], ["out"])], [Tensor("m", [1, 3, H, W], bad)],
            ValueInfo("in", 1, 3, H, W), ValueInfo("out", 1, 3, H, W));
        Assert.That(() => Convert(onnx), Throws.TypeOf<InvalidModelFileException>().With.Message.Contain("non-finite"));
    }

    [Test]
    public void TruncatedPreprocessingFile_IsInvalid()
    {
        byte[] onnx = MlNetStyle();
        Assert.That(() => Convert(onnx[..(onnx.Length / 2)]),
            Throws.TypeOf<InvalidModelFileException>().With.Message.StartWith("preprocessing ONNX:"));
    }

    [Test]
    public void PreprocessTogetherWithExplicitMean_IsAnArgumentError() =>
        Assert.Throws<ArgumentException>(() => OnnxConverter.Convert(RgbModel(),
            new OnnxConvertOptions { PreprocessOnnx = MlNetStyle(), Mean = [0, 0, 0] }));

    [Test]
    public void ScaleAndChannelOrderOptions_AreRecorded()
    {
        var p = OnnxConverter.Convert(RgbModel(), new OnnxConvertOptions { Scale = 1f, ChannelOrder = "bgr", Mean = [1, 2, 3] }).Graph.Preprocessing;
        Assert.That((p.Scale, p.ChannelOrder, p.MeanImage), Is.EqualTo((1f, "bgr", (string?)null)));
    }
}
