using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Onnx;
using NUnit.Framework;
using static CamEngine.Tests.Onnx.OnnxBuild;

namespace CamEngine.Tests.Onnx;

/// <summary>
/// Synthetic exports at batch 1 whose tensors move the batch (as MultiheadAttention's and Swin's exports do): the
/// converter tracks where it sits, so a batch of two different images gives each its own result; a reshape that
/// would split the elements before the batch is refused; Softmax over an inner axis runs through transposes.
/// </summary>
[TestFixture]
internal sealed class OnnxBatchLayoutTests
{
    private static ProtoWriter Shape(string name, params long[] v) => Int64Tensor(name, [v.Length], v);

    /// <summary>x (N, 2, 3, 4) -> (3, N, 2, 4) -> (3, N * 2, 4) -> (N * 2, 3, 4) -> (N, 2, 3, 4), then tail.</summary>
    private static byte[] RoundTrip(IEnumerable<ProtoWriter> tail, IEnumerable<ProtoWriter> inits, string output, long opset = 13) =>
        OnnxBuild.Model(
            new[]
            {
                Node("Transpose", "t1", ["x"], ["a"], AttrInts("perm", [2, 0, 1, 3])),
                Node("Reshape", "r1", ["a", "s1"], ["b"]),
                Node("Transpose", "t2", ["b"], ["c"], AttrInts("perm", [1, 0, 2])),
                Node("Reshape", "r2", ["c", "s2"], ["d"]),
            }.Concat(tail),
            new[] { Shape("s1", 3, 2, 4), Shape("s2", 1, 2, 3, 4) }.Concat(inits),
            ValueInfo("x", 1, 2, 3, 4), ValueInfo(output, 1, 2, 3, 4), opset);

    private static float[] Run(byte[] onnx, float[] x, int n)
    {
        var file = OnnxConverter.Convert(onnx);
        var b = TestDevice.Cpu;
        using var model = DeviceModel.Load(file, b);
        using var t = b.Upload(x, n, 2, 3, 4);
        using var pass = model.Forward(t);
        return b.Download(pass.Output);
    }

    [Test]
    public void Moving_the_batch_through_transposes_and_reshapes_and_back_is_the_identity_for_every_image()
    {
        var x = Values(2 * 24, 7);
        var y = Run(RoundTrip([], [], "d"), x, 2);
        Assert.That(y, Is.EqualTo(x));
    }

    [Test]
    public void Softmax_over_an_inner_axis_of_a_batch_moved_tensor_matches_its_definition()
    {
        // Softmax over axis 0 of c = (N * 2, 3, 4): over H, per image, channel and column.
        var onnx = OnnxBuild.Model(
            [
                Node("Transpose", "t1", ["x"], ["a"], AttrInts("perm", [2, 0, 1, 3])),
                Node("Reshape", "r1", ["a", "s1"], ["b"]),
                Node("Transpose", "t2", ["b"], ["c"], AttrInts("perm", [1, 0, 2])),
                Node("Softmax", "sm", ["c"], ["e"], AttrInt("axis", 1)),
                Node("Reshape", "r2", ["e", "s2"], ["d"]),
            ],
            [Shape("s1", 3, 2, 4), Shape("s2", 1, 2, 3, 4)],
            ValueInfo("x", 1, 2, 3, 4), ValueInfo("d", 1, 2, 3, 4), 13);
        var x = Values(2 * 24, 9);
        var y = Run(onnx, x, 2);
        for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
        for (int w = 0; w < 4; w++)
        {
            int At(int h) => ((n * 2 + c) * 3 + h) * 4 + w;
            double sum = Enumerable.Range(0, 3).Sum(h => Math.Exp(x[At(h)]));
            for (int h = 0; h < 3; h++)
                Assert.That(y[At(h)], Is.EqualTo(Math.Exp(x[At(h)]) / sum).Within(1e-6));
        }
    }

    [Test]
    public void A_reshape_that_splits_the_elements_before_the_batch_is_refused()
    {
        // (3, N, 2, 4) -> (6, 4): the 3 positions before the batch would be spread over the 6 rows.
        var onnx = OnnxBuild.Model(
            [
                Node("Transpose", "t1", ["x"], ["a"], AttrInts("perm", [2, 0, 1, 3])),
                Node("Reshape", "bad", ["a", "s"], ["b"]),
            ],
            [Shape("s", 6, 4)], ValueInfo("x", 1, 2, 3, 4), ValueInfo("b", 6, 4), 13);
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(onnx));
        Assert.That(e!.Message, Does.Contain("'bad'").And.Contain("splits the elements before the batch"));
    }

    [Test]
    public void An_output_whose_batch_is_not_first_is_refused()
    {
        var onnx = OnnxBuild.Model([Node("Transpose", "t1", ["x"], ["a"], AttrInts("perm", [2, 0, 1, 3]))], [],
            ValueInfo("x", 1, 2, 3, 4), ValueInfo("a", 3, 1, 2, 4), 13);
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(onnx));
        Assert.That(e!.Message, Does.Contain("the output must have the batch first"));
    }

    [Test]
    public void An_operator_the_converter_does_not_know_is_refused_with_its_node_even_after_folding()
    {
        var onnx = OnnxBuild.Model(
            [
                Node("Shape", "sh", ["x"], ["s"]),
                Node("Hardmax", "hm", ["x"], ["y"]),
            ],
            [], ValueInfo("x", 1, 2, 3, 4), ValueInfo("y", 1, 2, 3, 4), 13);
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(onnx));
        Assert.That(e!.Message, Does.Contain("'Hardmax'").And.Contain("'hm'"));
    }
}
