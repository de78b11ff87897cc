using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;
using ModelOps = CamEngine.Model.Ops;

namespace CamEngine.Tests.Onnx;

/// <summary>
/// The converter's fusion of decomposed LayerNorm and exact-GELU chains (<see cref="OnnxConvertOptions.FuseDecomposedOperators"/>):
/// which chains become one node, which stay as exported, and that the fused graph computes what the unfused one does
/// (the reference backend in double, and ConvNeXt's opset-13 export on the managed CPU, values and input gradient).
/// </summary>
[TestFixture]
public sealed class OnnxFusionTests
{
    private static readonly OnnxConvertOptions Unfused = new() { FuseDecomposedOperators = false };

    private static ProtoWriter Scalar(string name, float v) => OnnxBuild.Tensor(name, [], [v]);

    private static ProtoWriter N(string op, string name, string[] inputs, params ProtoWriter[] attrs) =>
        OnnxBuild.Node(op, name, inputs, [name + "_out"], attrs);

    /// <summary>LayerNorm's opset-13 chain over the trailing <paramref name="axes"/> of x, named from <paramref name="p"/>;
    /// returns the nodes and the result's name (the chain ends at the Div, or the Mul and Add with scale and bias).</summary>
    private static (List<ProtoWriter> Nodes, string Out) LayerNormChain(string p, string x, long[] axes, string eps,
        string? scale, string? bias)
    {
        var ax = OnnxBuild.AttrInts("axes", axes);
        var nodes = new List<ProtoWriter>
        {
            N("ReduceMean", p + "mean", [x], ax),
            N("Sub", p + "sub", [x, p + "mean_out"]),
            N("Pow", p + "pow", [p + "sub_out", "two"]),
            N("ReduceMean", p + "var", [p + "pow_out"], ax),
            N("Add", p + "addeps", [p + "var_out", eps]),
            N("Sqrt", p + "sqrt", [p + "addeps_out"]),
            N("Div", p + "div", [p + "sub_out", p + "sqrt_out"]),
        };
        string y = p + "div_out";
        if (scale != null)
        {
            nodes.Add(N("Mul", p + "scale", [y, scale]));
            y = p + "scale_out";
        }
        if (bias != null)
        {
            nodes.Add(N("Add", p + "bias", [y, bias]));
            y = p + "bias_out";
        }
        return (nodes, y);
    }

    /// <summary>Exact GELU as torch exports it, (x * (Erf(x / sqrt 2) + 1)) * 0.5, or (<paramref name="halfFirst"/>)
    /// as (x * 0.5) * (Erf(x * (1/sqrt 2)) + 1).</summary>
    private static (List<ProtoWriter> Nodes, string Out) GeluChain(string p, string x, bool halfFirst)
    {
        if (!halfFirst)
        {
            return ([
                N("Div", p + "div", [x, "sqrt2"]), N("Erf", p + "erf", [p + "div_out"]), N("Add", p + "one", [p + "erf_out", "one"]),
                N("Mul", p + "mul", [x, p + "one_out"]), N("Mul", p + "half", [p + "mul_out", "half"]),
            ], p + "half_out");
        }
        return ([
            N("Mul", p + "half", ["half", x]), N("Mul", p + "scale", [x, "invsqrt2"]), N("Erf", p + "erf", [p + "scale_out"]),
            N("Add", p + "one", ["one", p + "erf_out"]), N("Mul", p + "mul", [p + "half_out", p + "one_out"]),
        ], p + "mul_out");
    }

    private static ProtoWriter[] Constants(int[] rowShape)
    {
        int cols = rowShape.Aggregate(1, (a, b) => a * b);
        return
        [
            Scalar("two", 2f), Scalar("eps", 1e-5f), Scalar("zero", 0f), Scalar("sqrt2", 1.4142135f), Scalar("invsqrt2", 0.70710677f),
            Scalar("one", 1f), Scalar("half", 0.5f),
            OnnxBuild.Tensor("gamma", rowShape, OnnxBuild.Values(cols, 5).Select(v => 1f + v / 2).ToArray()),
            OnnxBuild.Tensor("beta", rowShape, OnnxBuild.Values(cols, 6)),
        ];
    }

    private static ModelFile Convert(IEnumerable<ProtoWriter> nodes, ProtoWriter[] inits, OnnxConvertOptions? options = null) =>
        OnnxConverter.Convert(OnnxBuild.Model(nodes, inits, OnnxBuild.ValueInfo("x", 1, 3, 4, 6), OnnxBuild.ValueInfo("y"), 13), options);

    /// <summary>The fused and unfused conversions of one graph, run on the reference backend (double).</summary>
    private static void AssertSameValues(ModelFile fused, ModelFile unfused)
    {
        var b = new ReferenceBackend();
        var x = OnnxBuild.Values(3 * 4 * 6, 7).Select(v => 3 * v).ToArray();
        float[] Run(ModelFile f)
        {
            using var model = DeviceModel.Load(f, b);
            using var input = b.Upload(x, 1, 3, 4, 6);
            using var pass = model.Forward(input);
            return b.Download(pass.Output);
        }
        var a = Run(fused);
        var e = Run(unfused);
        Assert.That(a, Has.Length.EqualTo(e.Length));
        TensorAssert.Close(a, e, 2e-6, 1e-6, "fused against unfused");
    }

    private static string[] OpsOf(ModelFile f) => f.Graph.Nodes.Select(n => n.Op).ToArray();

    [Test]
    public void LayerNorm_and_both_GELU_forms_become_one_node_each_and_compute_the_same()
    {
        var (ln, lnOut) = LayerNormChain("ln_", "x", [-1], "eps", "gamma", "beta");
        var (g1, g1Out) = GeluChain("g1_", lnOut, halfFirst: false);
        var (g2, g2Out) = GeluChain("g2_", g1Out, halfFirst: true);
        var nodes = ln.Concat(g1).Concat(g2).Append(OnnxBuild.Node("Identity", "out", [g2Out], ["y"])).ToList();
        var inits = Constants([6]);
        var fused = Convert(nodes, inits);
        Assert.That(OpsOf(fused), Is.EqualTo(new[] { ModelOps.LayerNorm, ModelOps.Gelu, ModelOps.Gelu }));
        var norm = fused.Graph.Nodes[0];
        Assert.That(norm.Int("axis", 0), Is.EqualTo(3));
        Assert.That(norm.Float("epsilon", 0), Is.EqualTo(1e-5f));
        Assert.That(norm.Name, Is.EqualTo("ln_bias"), "the fused node keeps the chain's last name");
        Assert.That(fused.Graph.Nodes[2].Output, Is.EqualTo(g2Out), "and its output");
        Assert.That(fused.Weights.Keys, Is.EquivalentTo(new[] { "gamma", "beta" }), "the chains' scalars are dropped");
        var unfused = Convert(nodes, inits, Unfused);
        Assert.That(OpsOf(unfused), Has.Length.EqualTo(19), "nine LayerNorm nodes and five per GELU");
        AssertSameValues(fused, unfused);
    }

    [Test]
    public void LayerNorm_over_two_trailing_axes_and_without_scale_and_bias_fuses()
    {
        var (ln, lnOut) = LayerNormChain("a_", "x", [2, 3], "eps", "gamma", "beta");
        var (plain, plainOut) = LayerNormChain("b_", lnOut, [-1], "eps", null, null);
        var nodes = ln.Concat(plain).Append(OnnxBuild.Node("Identity", "out", [plainOut], ["y"])).ToList();
        var inits = Constants([4, 6]);
        var fused = Convert(nodes, inits);
        Assert.That(OpsOf(fused), Is.EqualTo(new[] { ModelOps.LayerNorm, ModelOps.LayerNorm }));
        Assert.That(fused.Graph.Nodes[0].Int("axis", 0), Is.EqualTo(2));
        Assert.That(fused.Graph.Nodes[1].Int("axis", 0), Is.EqualTo(3));
        AssertSameValues(fused, Convert(nodes, inits, Unfused));
    }

    [Test]
    public void Chains_whose_inner_values_are_read_elsewhere_or_that_differ_stay_as_exported()
    {
        // GELU whose erf is also added to the result; GELU by 1.5 instead of sqrt 2; LayerNorm over the second axis
        // only; LayerNorm with a zero epsilon; LayerNorm over the first and last axes (not adjacent).
        var (g1, g1Out) = GeluChain("g1_", "x", halfFirst: false);
        var (g2, g2Out) = GeluChain("g2_", "g1_sum_out", halfFirst: false);
        var (ln1, ln1Out) = LayerNormChain("l1_", g2Out, [2], "eps", null, null);
        var (ln2, ln2Out) = LayerNormChain("l2_", ln1Out, [-1], "zero", null, null);
        var (ln3, ln3Out) = LayerNormChain("l3_", ln2Out, [1, 3], "eps", null, null);
        var nodes = g1.Append(N("Add", "g1_sum", [g1Out, "g1_erf_out"]))
            .Concat(g2.Select((n, i) => i == 0 ? N("Div", "g2_div", ["g1_sum_out", "onehalf"]) : n))
            .Concat(ln1).Concat(ln2).Concat(ln3).Append(OnnxBuild.Node("Identity", "out", [ln3Out], ["y"])).ToList();
        var inits = Constants([6]).Append(Scalar("onehalf", 1.5f)).ToArray();
        var fused = Convert(nodes, inits);
        Assert.That(OpsOf(fused), Does.Not.Contain(ModelOps.Gelu).And.Not.Contain(ModelOps.LayerNorm));
        Assert.That(OpsOf(fused), Is.EqualTo(OpsOf(Convert(nodes, inits, Unfused))));
    }

    [Test]
    public void A_bias_added_after_a_matmul_joins_it_unless_something_else_reads_the_product()
    {
        ProtoWriter[] inits =
        [
            OnnxBuild.Tensor("w", [6, 5], OnnxBuild.Values(30, 8)), OnnxBuild.Tensor("b", [5], OnnxBuild.Values(5, 9)),
            OnnxBuild.Tensor("w2", [5, 5], OnnxBuild.Values(25, 10)), OnnxBuild.Tensor("b2", [5], OnnxBuild.Values(5, 11)),
        ];
        // x W + b (the bias first, as torch exports it), then (y W2) + b2 where y W2 is also read by a second Add.
        var nodes = new List<ProtoWriter>
        {
            N("MatMul", "mm", ["x", "w"]), N("Add", "bias", ["b", "mm_out"]), N("MatMul", "mm2", ["bias_out", "w2"]),
            N("Add", "bias2", ["mm2_out", "b2"]), N("Add", "both", ["bias2_out", "mm2_out"]),
            OnnxBuild.Node("Identity", "out", ["both_out"], ["y"]),
        };
        var fused = Convert(nodes, inits);
        Assert.That(OpsOf(fused), Is.EqualTo(new[] { ModelOps.MatMul, ModelOps.MatMul, ModelOps.Add, ModelOps.Add }));
        Assert.That(fused.Graph.Nodes[0].Param("bias"), Is.EqualTo("b"));
        Assert.That(fused.Graph.Nodes[0].Output, Is.EqualTo("bias_out"));
        Assert.That(fused.Graph.Nodes[1].Param("bias"), Is.Null, "its product is read twice");
        AssertSameValues(fused, Convert(nodes, inits, Unfused));
    }

    /// <summary>ConvNeXt's layer scale: a linear layer on (N, H, W, C), a transpose to (N, C, H, W) and a Mul by a (C, 1, 1)
    /// constant fold into the layer's weight and bias; a scale straight after a layer by a (C) constant too; one
    /// broadcast along another axis than the layer's features stays.</summary>
    [Test]
    public void A_per_feature_scale_after_a_linear_layer_folds_into_its_weights()
    {
        ProtoWriter[] inits =
        [
            OnnxBuild.Tensor("w", [6, 6], OnnxBuild.Values(36, 16)), OnnxBuild.Tensor("b", [6], OnnxBuild.Values(6, 17)),
            OnnxBuild.Tensor("g", [6, 1, 1], OnnxBuild.Values(6, 18)), OnnxBuild.Tensor("w2", [4, 5], OnnxBuild.Values(20, 19)),
            OnnxBuild.Tensor("g2", [5], OnnxBuild.Values(5, 20)), OnnxBuild.Tensor("g3", [3, 1], OnnxBuild.Values(3, 21)),
        ];
        // x (N, 3, 4, 6) read as (N, H, W, C): the layer over C, to (N, C, H, W), times g; then a second layer over the
        // last axis (4 -> 5) times g2 (folds), and a Mul by g3, (3, 1) against (N, 6, 3, 5): not the features' axis.
        var nodes = new List<ProtoWriter>
        {
            N("MatMul", "mm", ["x", "w"]), N("Add", "bias", ["mm_out", "b"]),
            OnnxBuild.Node("Transpose", "tr", ["bias_out"], ["tr_out"], OnnxBuild.AttrInts("perm", [0, 3, 1, 2])),
            N("Mul", "scale", ["g", "tr_out"]), N("MatMul", "mm2", ["scale_out", "w2"]), N("Mul", "scale2", ["mm2_out", "g2"]),
            N("Mul", "scale3", ["scale2_out", "g3"]), OnnxBuild.Node("Identity", "out", ["scale3_out"], ["y"]),
        };
        var fused = Convert(nodes, inits);
        Assert.That(OpsOf(fused), Is.EqualTo(new[] { ModelOps.MatMul, ModelOps.Transpose, ModelOps.MatMul, ModelOps.Mul }));
        Assert.That(fused.Graph.Nodes[1].Output, Is.EqualTo("scale_out"), "the transpose writes the scale's value");
        Assert.That(fused.Graph.Nodes[2].Output, Is.EqualTo("scale2_out"));
        Assert.That(fused.Weights.Keys, Does.Not.Contain("g").And.Not.Contain("g2").And.Contain("g3"));
        AssertSameValues(fused, Convert(nodes, inits, Unfused));
    }

    /// <summary>A linear layer, its GELU, a second linear layer: the lean forward runs the first matmul with the GELU in
    /// its store (full tiles in registers, edge rows and columns through the vector form too) and gives the values
    /// of the forward that keeps every node; a requested layer at the product keeps the GELU apart.</summary>
    [TestCase("cpu")]
    [TestCase("reference")]
    [TestCase("ilgpu")]
    public void The_lean_forward_runs_a_matmul_and_its_GELU_as_one_and_gives_the_same_values(string device)
    {
        ProtoWriter[] inits =
        [
            OnnxBuild.Tensor("w", [6, 70], OnnxBuild.Values(420, 12).Select(v => 2 * v).ToArray()), OnnxBuild.Tensor("b", [70], OnnxBuild.Values(70, 13)),
            OnnxBuild.Tensor("w2", [70, 6], OnnxBuild.Values(420, 14)), Scalar("sqrt2", 1.4142135f), Scalar("one", 1f), Scalar("half", 0.5f),
        ];
        var (gelu, geluOut) = GeluChain("g_", "lin_out", halfFirst: false);
        var nodes = new List<ProtoWriter> { N("MatMul", "mm", ["x", "w"]), N("Add", "lin", ["mm_out", "b"]) }
            .Concat(gelu).Append(N("MatMul", "mm2", [geluOut, "w2"])).Append(OnnxBuild.Node("Identity", "out", ["mm2_out"], ["y"]));
        var file = Convert(nodes, inits);
        Assert.That(OpsOf(file), Is.EqualTo(new[] { ModelOps.MatMul, ModelOps.Gelu, ModelOps.MatMul }));
        Backend b = device == "reference" ? new ReferenceBackend() : TestDevice.Named(device);
        using var model = DeviceModel.Load(file, b);
        Assert.That(model.FusedGelus(null), Is.EqualTo(new[] { "lin" }));
        Assert.That(model.FusedGelus(["lin_out"]), Is.Empty, "the product is a requested layer");
        // Twelve rows (a full panel of eight and four), 70 columns (two full tiles of 32 and six).
        var x = OnnxBuild.Values(3 * 4 * 6, 15).Select(v => 3 * v).ToArray();
        using var input = b.Upload(x, 1, 3, 4, 6);
        using var full = model.Forward(input);
        using var lean = model.ForwardOutput(input);
        using var kept = model.ForwardFor(input, ["lin_out"]);
        var expected = b.Download(full.Output);
        TensorAssert.Close(b.Download(lean.Output), expected, 1e-6, 1e-6, "lean (fused) against the full forward");
        TensorAssert.Close(b.Download(kept.Output), expected, 1e-6, 1e-6, "with the product kept");
        TensorAssert.Close(b.Download(kept["lin_out"]), b.Download(full["lin_out"]), 1e-6, 1e-6, "the kept product");
    }

    [Test]
    public void ConvNeXt_opset13_fuses_to_the_opset17_operators_and_keeps_its_values_and_gradient()
    {
        string dir = Path.Combine(FixturePaths.Root, "families");
        var fused = OnnxConverter.ConvertFile(Path.Combine(dir, "convnext.opset13.onnx"));
        var unfused = OnnxConverter.ConvertFile(Path.Combine(dir, "convnext.opset13.onnx"), Unfused);
        var g17 = OnnxConverter.ConvertFile(Path.Combine(dir, "convnext.opset17.onnx")).Graph;
        var ops = OpsOf(fused);
        Assert.That(ops.Count(o => o == ModelOps.LayerNorm), Is.EqualTo(g17.Nodes.Count(n => n.Op == ModelOps.LayerNorm)).And.GreaterThan(0));
        Assert.That(ops.Count(o => o == ModelOps.Gelu), Is.EqualTo(OpsOf(unfused).Count(o => o == ModelOps.Erf)).And.GreaterThan(0));
        Assert.That(ops, Does.Not.Contain(ModelOps.ReduceMean).And.Not.Contain(ModelOps.Erf).And.Not.Contain(ModelOps.Sqrt));
        Assert.That(fused.Graph.DefaultTargetLayer().Output, Is.EqualTo(unfused.Graph.DefaultTargetLayer().Output));

        var b = TestDevice.Cpu;
        var x = OnnxBuild.Values(fused.Graph.InputShape.Aggregate(1, (p, d) => p * d), 11);
        (float[] Y, float[] Dx) Run(ModelFile f)
        {
            using var model = DeviceModel.Load(f, b);
            using var input = b.Upload(x, [1, .. f.Graph.InputShape]);
            using var pass = model.Forward(input);
            var y = b.Download(pass.Output);
            var seed = new float[y.Length];
            seed[Array.IndexOf(y, y.Max())] = 1f;
            using var s = b.Upload(seed, pass.Output.Shape);
            using var grads = model.Backward(pass, s, new BackwardRequest { Input = true });
            return (y, b.Download(grads.Input!));
        }
        var (yf, dxf) = Run(fused);
        var (yu, dxu) = Run(unfused);
        double ys = yu.Max(v => Math.Abs((double)v)), gs = dxu.Max(v => Math.Abs((double)v));
        Assert.That(gs, Is.GreaterThan(0));
        TensorAssert.Close(yf, yu, 1e-5 * ys, 1e-5, "logits, fused against unfused");
        TensorAssert.Close(dxf, dxu, 1e-4 * gs, 1e-4, "input gradient, fused against unfused");
    }
}
