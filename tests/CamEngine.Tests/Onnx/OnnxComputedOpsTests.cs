using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;
using ModelOps = CamEngine.Model.Ops;

namespace CamEngine.Tests.Onnx;

/// <summary>
/// Split, Expand, Where (constant condition), Pad on any axis (constant, reflect, edge) and MatMul with broadcast batch dims, all on computed
/// tensors: tiny torch modules (tools/fixtures/make_op_fixtures.py, opsets 13 and 17) convert and reproduce
/// PyTorch's logits (1e-5 of the largest) and input gradient of the top-1 logit (1e-4 of the largest) on the
/// reference, managed CPU and ILGPU backends; and hand-built ONNX graphs for the forms the exporter does not emit
/// (opset-11 split attribute, equal splits, infinite constants under Where, negative pads, computed conditions).
/// </summary>
[TestFixture]
public sealed class OnnxComputedOpsTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "ops");

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (string name in new[] { "split", "expand", "where", "pad", "padmodes", "matmul" })
        foreach (int opset in new[] { 13, 17 })
        foreach (string device in new[] { "reference", "cpu", "ilgpu" })
            yield return new TestCaseData(name, opset, device).SetName($"Computed_{name}_opset{opset}_on_{device}_matches_PyTorch");
    }

    [TestCaseSource(nameof(Cases))]
    public void Matches_PyTorch(string name, int opset, string device)
    {
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset{opset}.onnx"));
        var refs = Npz.Read(Path.Combine(Dir, name + ".npz"));
        Backend b = device == "reference" ? new ReferenceBackend() : TestDevice.Named(device);
        using var model = DeviceModel.Load(file, b);
        using var x = b.Upload(refs["input"]);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        var expected = refs["logits"].Data;
        double scale = expected.Max(v => Math.Abs((double)v));
        TensorAssert.Close(logits, expected, 1e-5 * scale, 1e-5, $"{name} opset {opset} logits on {device}");

        int top1 = Array.IndexOf(expected, expected.Max());
        var seed = new float[logits.Length];
        seed[top1] = 1f;
        using var seedTensor = b.Upload(seed, pass.Output.Shape);
        using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true });
        var dx = b.Download(grads.Input!);
        var gx = refs["input_grad"].Data;
        double gmax = gx.Max(v => Math.Abs((double)v));
        Assert.That(gmax, Is.GreaterThan(0));
        TensorAssert.Close(dx, gx, 1e-4 * gmax, 1e-4, $"{name} opset {opset} input gradient on {device}");
    }

    [Test]
    public void The_fixtures_use_the_operators_they_test_on_computed_tensors()
    {
        static string[] OpsOf(string name) =>
            OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset17.onnx")).Graph.Nodes.Select(n => n.Op).ToArray();
        Assert.That(OpsOf("split").Count(o => o == ModelOps.Slice), Is.GreaterThanOrEqualTo(7), "one slice per Split output");
        Assert.That(OpsOf("where"), Does.Contain(ModelOps.Mul).And.Contain(ModelOps.Add).And.Contain(ModelOps.Softmax));
        var pad = OnnxConverter.ConvertFile(Path.Combine(Dir, "pad.opset17.onnx")).Graph.Nodes.Where(n => n.Op == ModelOps.Pad).ToList();
        Assert.That(pad.Count(p => p.Attrs.ContainsKey("axis")), Is.EqualTo(2), "the channel and token pads are axis pads");
        Assert.That(pad.Count(p => !p.Attrs.ContainsKey("axis")), Is.EqualTo(1), "the H/W pad keeps the image form");
        var mm = OnnxConverter.ConvertFile(Path.Combine(Dir, "matmul.opset17.onnx")).Graph;
        var shapes = mm.Nodes.ToDictionary(n => n.Output, n => n.Shape);
        var bmm = mm.Nodes.Where(n => n.Op == ModelOps.BatchMatMul).ToList();
        Assert.That(bmm, Has.Count.EqualTo(2));
        Assert.That(bmm.All(n => n.Inputs.Any(i => shapes[i][0] == 1) && n.Shape[0] == 4), "each product broadcasts one operand over 4");
    }

    // ---- hand-built graphs ----

    private static ProtoWriter Ints(string name, params long[] v) => OnnxBuild.Int64Tensor(name, [v.Length], v);

    private static ModelFile Convert(ProtoWriter[] nodes, ProtoWriter[] inits, long[] input, int opset = 13) =>
        OnnxConverter.Convert(OnnxBuild.Model(nodes, inits, OnnxBuild.ValueInfo("x", input.Select(d => (long?)d).ToArray()),
            OnnxBuild.ValueInfo("y"), opset));

    private static float[] Run(ModelFile file, float[] x, Backend? backend = null)
    {
        var b = backend ?? new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        using var t = b.Upload(x, [1, .. file.Graph.InputShape]);
        using var pass = model.Forward(t);
        return b.Download(pass.Output);
    }

    private static float[] Iota(int n) => Enumerable.Range(0, n).Select(i => (float)i).ToArray();

    [Test]
    public void Split_from_the_opset_11_attribute_and_in_equal_parts_picks_the_right_elements()
    {
        // x (1, 2, 3, 4): split W as [1, 3] (attribute, opset 11), then that 3-wide part equally along H in 3;
        // y = the middle H part = x[:, :, 1:2, 1:4]. The unread outputs get no engine node.
        var nodes = new[]
        {
            OnnxBuild.Node("Split", "sw", ["x"], ["a", "b"], OnnxBuild.AttrInt("axis", 3), OnnxBuild.AttrInts("split", [1, 3])),
            OnnxBuild.Node("Split", "sh", ["b"], ["c", "y", "e"], OnnxBuild.AttrInt("axis", -2)),
        };
        var file = Convert(nodes, [], [1, 2, 3, 4], opset: 11);
        var x = Iota(24);
        var y = Run(file, x);
        var expected = new List<float>();
        for (int c = 0; c < 2; c++)
        for (int w = 1; w < 4; w++)
            expected.Add(x[(c * 3 + 1) * 4 + w]);
        Assert.That(y, Is.EqualTo(expected));
        Assert.That(file.Graph.Nodes.Select(n => n.Op), Is.EqualTo(new[] { ModelOps.Slice, ModelOps.Slice }));
    }

    [Test]
    public void Split_equal_parts_and_the_opset_13_input_give_the_slices()
    {
        // x (1, 2, 3, 4): Split axis 3 by the input [1, 3]; then the 3-wide part equally along W into 3 parts;
        // y = concat(a, p2) along W: x[..., 0] then x[..., 3].
        var nodes = new[]
        {
            OnnxBuild.Node("Split", "s1", ["x", "sizes"], ["a", "b"], OnnxBuild.AttrInt("axis", 3)),
            OnnxBuild.Node("Split", "s2", ["b"], ["p0", "p1", "p2"], OnnxBuild.AttrInt("axis", -1)),
            OnnxBuild.Node("Concat", "cat", ["a", "p2"], ["y"], OnnxBuild.AttrInt("axis", 3)),
        };
        var file = Convert(nodes, [Ints("sizes", 1, 3)], [1, 2, 3, 4]);
        var x = Iota(24);
        var y = Run(file, x);
        var expected = new float[12];
        for (int r = 0; r < 6; r++)
        {
            expected[2 * r] = x[4 * r];
            expected[2 * r + 1] = x[4 * r + 3];
        }
        Assert.That(y, Is.EqualTo(expected));
        Assert.That(file.Graph.Nodes.Count(n => n.Op == ModelOps.Slice), Is.EqualTo(3), "only the outputs read are sliced");
    }

    [Test]
    public void Where_keeps_an_infinite_constant_where_selected_and_never_makes_NaN()
    {
        // x (1, 1, 2, 2); cond [[1, 0], [0, 1]]; Where(cond, x, K) with K = [[-inf, +inf], [-inf, 5]] gives
        // [[x0, +inf], [-inf, x3]]; Where(cond, +inf, x) gives [[+inf, x1], [x2, +inf]]. x holds a large value too.
        float inf = float.PositiveInfinity;
        var cond = new ProtoWriter().Ints(1, [2L, 2L], false).Int(2, 9).Ints(5, [1L, 0L, 0L, 1L], true).String(8, "cond");
        var k = OnnxBuild.Tensor("k", [2, 2], [-inf, inf, -inf, 5f]);
        var pinf = OnnxBuild.Tensor("pinf", [1], [inf]);
        foreach (bool constantIsX in new[] { false, true })
        {
            var node = constantIsX
                ? OnnxBuild.Node("Where", "w", ["cond", "pinf", "x"], ["y"])
                : OnnxBuild.Node("Where", "w", ["cond", "x", "k"], ["y"]);
            var converted = Convert([node], [cond, k, pinf], [1, 1, 2, 2]);
            // The masked constant (with its infinities) survives a save and load of the model file.
            using var ms = new MemoryStream();
            converted.Save(ms);
            ms.Position = 0;
            var file = ModelFile.Load(ms);
            float[] x = [3e38f, -2f, 7f, -3e38f];
            foreach (Backend b in new Backend[] { new ReferenceBackend(), TestDevice.Cpu, TestDevice.Ilgpu })
            {
                var y = Run(file, x, b);
                float[] expected = constantIsX ? [inf, -2f, 7f, inf] : [3e38f, inf, -inf, -3e38f];
                Assert.That(y, Is.EqualTo(expected), $"constant {(constantIsX ? "X" : "Y")} on {b.GetType().Name}");
            }
        }
    }

    [Test]
    public void Where_with_a_computed_condition_is_refused_naming_the_node()
    {
        var nodes = new[]
        {
            OnnxBuild.Node("Relu", "r", ["x"], ["c"]),
            OnnxBuild.Node("Where", "the_where", ["c", "x", "x"], ["y"]),
        };
        var e = Assert.Throws<UnsupportedModelException>(() => Convert(nodes, [], [1, 1, 2, 2]))!;
        Assert.That(e.Message, Does.Contain("node 'the_where' (Where)").And.Contain("condition 'c' is computed"));
    }

    [Test]
    public void Pad_of_the_channel_axis_with_a_value_and_a_negative_pad_crops()
    {
        // x (1, 2, 2, 3): pads [0, 1, 0, -1,  0, 2, 0, 0] with value 9: channel 0 new (9s), then channels 0..1, then
        // two new; W loses its first element.
        var nodes = new[] { OnnxBuild.Node("Pad", "p", ["x", "pads", "v"], ["y"]) };
        var file = Convert(nodes, [Ints("pads", 0, 1, 0, -1, 0, 2, 0, 0), OnnxBuild.Tensor("v", [], [9f])], [1, 2, 2, 3]);
        var x = Iota(12);
        var y = Run(file, x);
        Assert.That(y, Has.Length.EqualTo(5 * 2 * 2));
        for (int c = 0; c < 5; c++)
        for (int h = 0; h < 2; h++)
        for (int w = 0; w < 2; w++)
        {
            float expected = c is 1 or 2 ? x[((c - 1) * 2 + h) * 3 + w + 1] : 9f;
            Assert.That(y[(c * 2 + h) * 2 + w], Is.EqualTo(expected), $"y[{c},{h},{w}]");
        }
    }

    [Test]
    public void Expand_adds_leading_axes_and_broadcasts_inner_ones()
    {
        // x (1, 3, 1, 2) expanded to (1, 3, 4, 2): each row repeated along H.
        var nodes = new[] { OnnxBuild.Node("Expand", "e", ["x", "shape"], ["y"]) };
        var file = Convert(nodes, [Ints("shape", 1, 3, 4, 2)], [1, 3, 1, 2]);
        var x = Iota(6);
        var y = Run(file, x);
        for (int c = 0; c < 3; c++)
        for (int h = 0; h < 4; h++)
        for (int w = 0; w < 2; w++)
            Assert.That(y[(c * 4 + h) * 2 + w], Is.EqualTo(x[c * 2 + w]));
        var e = Assert.Throws<UnsupportedModelException>(() => Convert(nodes, [Ints("shape", 2, 3, 1, 2)], [1, 3, 1, 2]))!;
        Assert.That(e.Message, Does.Contain("node 'e' (Expand)").And.Contain("batch axis"));
    }
}
