using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Graph.Ops;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;
using static CamEngine.Tests.Graph.Ops.OpGraph;
using ModelOps = CamEngine.Model.Ops;

namespace CamEngine.Tests.Graph.Ops;

/// <summary>
/// The operators added with the registry (reductions, transpose of computed tensors up to rank 6, layer norm,
/// slice, matmul with a constant weight, erf, sqrt, pow, tanh), each in a small graph on the reference backend in
/// double: the forward against the definition computed here, the reverse pass against finite differences (input
/// and parameters), and the jets against finite differences of the forward (or, for an op without jets, the
/// refusal naming it).
/// </summary>
[TestFixture]
internal sealed class NewOpsGraphTests
{
    private static double[] Forward(OpGraph g, double[] x)
    {
        using var model = DeviceModel.Load(g.File(), new ReferenceBackend());
        return Run(model, x);
    }

    [Test]
    public void ReduceMean_over_H_and_W_is_the_spatial_mean_and_differentiates()
    {
        // MNASNet's head: x.mean([2, 3]) exported as ReduceMean(axes=[2,3], keepdims=0).
        var g = new OpGraph([3, 4, 5]);
        g.Add(ModelOps.ReduceMean, A(("axes", [2, 3]), ("keepdims", [0])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        Assert.That(y, Has.Length.EqualTo(2 * 3));
        for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            Assert.That(y[n * 3 + c], Is.EqualTo(x.Skip((n * 3 + c) * 20).Take(20).Average()).Within(1e-12));
        g.CheckReverse();
        g.CheckJets();
    }

    [TestCase(new double[] { 1, 3 }, 1, TestName = "ReduceMean_over_non_adjacent_axes_C_and_W_keepdims")]
    [TestCase(new double[] { 3 }, 1, TestName = "ReduceMean_over_the_last_axis_keepdims")]
    public void ReduceMean_runs_match_finite_differences(double[] axes, int keep)
    {
        var g = new OpGraph([3, 4, 5]);
        g.Add(ModelOps.ReduceMean, A(("axes", axes), ("keepdims", [keep])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        if (axes.Length == 2)
        {
            // y[n, 0, h, 0] = mean over c, w of x[n, c, h, w]
            for (int n = 0; n < 2; n++)
            for (int h = 0; h < 4; h++)
            {
                double s = 0;
                for (int c = 0; c < 3; c++)
                for (int w = 0; w < 5; w++)
                    s += x[((n * 3 + c) * 4 + h) * 5 + w];
                Assert.That(y[n * 4 + h], Is.EqualTo(s / 15).Within(1e-12));
            }
        }
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void ReduceSum_and_ReduceMax_match_their_definitions_and_finite_differences()
    {
        var g = new OpGraph([3, 4, 5]);
        g.Add(ModelOps.ReduceSum, A(("axes", [1]), ("keepdims", [0])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        Assert.That(y[7], Is.EqualTo(x[7] + x[27] + x[47]).Within(1e-12)); // (n 0, h 1, w 2): c = 0, 1, 2
        g.CheckReverse();
        g.CheckJets();

        var m = new OpGraph([3, 4, 5]);
        m.Add(ModelOps.ReduceMax, A(("axes", [2, 3]), ("keepdims", [1])));
        var ym = Forward(m, x);
        Assert.That(ym[4], Is.EqualTo(x.Skip(4 * 20).Take(20).Max()).Within(0)); // (n 1, c 1)
        m.CheckReverse();
        m.CheckJets();
    }

    [Test]
    public void ReduceMax_takes_the_first_maximum_at_ties()
    {
        var g = new OpGraph([1, 1, 4]);
        g.Add(ModelOps.ReduceMax, A(("axes", [3]), ("keepdims", [0])));
        using var model = DeviceModel.Load(g.File(), new ReferenceBackend());
        var b = (ReferenceBackend)model.Backend;
        using var x = b.UploadDouble([1, 3, 3, 2, 5, 0, 5, 5], 2, 1, 1, 4);
        using var pass = model.Forward(x);
        using var seed = b.UploadDouble([1, 1], pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Input = true });
        Assert.That(ReferenceBackend.DownloadDouble(grads.Input!), Is.EqualTo(new double[] { 0, 1, 0, 0, 1, 0, 0, 0 }));
    }

    [Test]
    public void Transpose_of_a_rank_5_channel_shuffle_moves_every_element_and_differentiates()
    {
        // ShuffleNet's channel shuffle: (N, 4, H, W) -> (N, 2, 2, H, W) -> transpose(0, 2, 1, 3, 4) -> (N, 4, H, W).
        var g = new OpGraph([4, 2, 3]);
        g.Add(ModelOps.Reshape, A(("shape", [2, 2, 2, 3])));
        g.Add(ModelOps.Transpose, A(("perm", [0, 2, 1, 3, 4])));
        g.Add(ModelOps.Reshape, A(("shape", [4, 2, 3])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        // Output channel c' = 2 j + i reads input channel c = 2 i + j.
        int plane = 6;
        for (int n = 0; n < 2; n++)
        for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
        for (int p = 0; p < plane; p++)
            Assert.That(y[(n * 4 + 2 * j + i) * plane + p], Is.EqualTo(x[(n * 4 + 2 * i + j) * plane + p]));
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Transpose_to_channels_last_at_rank_6_differentiates()
    {
        var g = new OpGraph([3, 4, 4]);
        g.Add(ModelOps.Reshape, A(("shape", [3, 2, 2, 2, 2])));
        g.Add(ModelOps.Transpose, A(("perm", [0, 2, 4, 3, 5, 1])));
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Transpose_refuses_moving_the_batch_axis_and_rank_7()
    {
        var g = new OpGraph([3, 4, 4]);
        var e = Assert.Throws<ArgumentException>(() => g.Add(ModelOps.Transpose, A(("perm", [1, 0, 2, 3]))));
        Assert.That(e!.Message, Does.Contain("batch axis"));
        g.Add(ModelOps.Reshape, A(("shape", [3, 2, 2, 2, 2])));
        var e2 = Assert.Throws<ArgumentException>(() => g.Add(ModelOps.Reshape, A(("shape", [3, 2, 2, 2, 2, 1]))));
        Assert.That(e2!.Message, Does.Contain("1 to 5"));
    }

    [TestCase(3, TestName = "LayerNorm_over_the_last_axis_matches_its_definition_and_finite_differences")]
    [TestCase(2, TestName = "LayerNorm_over_the_last_two_axes_matches_its_definition_and_finite_differences")]
    public void LayerNorm_matches(int axis)
    {
        var g = new OpGraph([2, 3, 4]);
        int cols = axis == 3 ? 4 : 12;
        int[] pshape = axis == 3 ? [4] : [3, 4];
        g.Weight("ln.scale", pshape, 1);
        g.Weight("ln.bias", pshape);
        g.Add(ModelOps.LayerNorm, A(("axis", [axis]), ("epsilon", [1e-5])), P(("scale", "ln.scale"), ("bias", "ln.bias")));
        var x = g.RandomInput();
        var y = Forward(g, x);
        var gamma = g.Weights["ln.scale"].Data;
        var beta = g.Weights["ln.bias"].Data;
        for (int r = 0; r < x.Length / cols; r++)
        {
            var row = x.Skip(r * cols).Take(cols).ToArray();
            double mean = row.Average(), var = row.Select(v => (v - mean) * (v - mean)).Average();
            for (int j = 0; j < cols; j++)
                Assert.That(y[r * cols + j], Is.EqualTo(gamma[j] * (row[j] - mean) / Math.Sqrt(var + 1e-5f) + beta[j]).Within(1e-9));
        }
        g.CheckReverse();
    }

    [Test]
    public void LayerNorm_jets_match_finite_differences()
    {
        var g = new OpGraph([2, 3, 4]);
        g.Weight("s", [4], 1);
        g.Weight("b", [4]);
        g.Add(ModelOps.LayerNorm, A(("axis", [3])), P(("scale", "s"), ("bias", "b")));
        g.CheckJets();
        var h = new OpGraph([2, 3, 4]);
        h.Weight("s", [3, 4], 1);
        h.Weight("b", [3, 4]);
        h.Add(ModelOps.LayerNorm, A(("axis", [2])), P(("scale", "s"), ("bias", "b")));
        h.CheckJets();
    }

    /// <summary>A rule that declares no Taylor rule (as an op without jets would).</summary>
    private sealed class NoJetRule : OpRule
    {
        public override string Name => "nojets";

        public override bool HasJets => false;

        public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights) => inputs[0];

        public override Tensor Forward(ForwardArgs a) => throw new NotSupportedException();

        public override void Backward(BackwardArgs a) => throw new NotSupportedException();
    }

    [Test]
    public void An_op_without_jets_refuses_a_higher_order_query_naming_the_node()
    {
        var node = new GraphNode { Name = "/blocks/mystery", Op = "nojets", Inputs = ["x"], Output = "y", Shape = [2] };
        var rule = new NoJetRule();
        var e = Assert.Throws<UnsupportedModelException>(() => rule.Jets(new JetArgs(null!, node, [], 1, 3, t => t)));
        Assert.That(e!.Message, Does.Contain("/blocks/mystery").And.Contain("'nojets'").And.Contain("Taylor"));
        Assert.That(OpRegistry.All.Where(r => !r.HasJets).Select(r => r.Name), Is.Empty, "every registered op has jets today");
    }

    [Test]
    public void Slice_along_the_channel_axis_is_ShuffleNets_split_and_differentiates()
    {
        var g = new OpGraph([4, 2, 3]);
        g.Add(ModelOps.Slice, A(("axis", [1]), ("start", [1]), ("count", [2])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
        for (int p = 0; p < 6; p++)
            Assert.That(y[(n * 2 + c) * 6 + p], Is.EqualTo(x[(n * 4 + c + 1) * 6 + p]));
        g.CheckReverse();
        g.CheckJets();
        var bad = new OpGraph([4, 2, 3]);
        var e = Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Slice, A(("axis", [2]), ("start", [1]), ("count", [2]))));
        Assert.That(e!.Message, Does.Contain("not a non-empty range"));
    }

    [Test]
    public void Concat_along_the_last_axis_places_every_part_and_differentiates()
    {
        var g = new OpGraph([3, 2, 4]);
        string a = g.Add(ModelOps.Slice, A(("axis", [3]), ("start", [0]), ("count", [1])), inputs: ["input"]);
        string b = g.Add(ModelOps.Tanh, inputs: ["input"]);
        g.Add(ModelOps.Concat, A(("axis", [3])), inputs: [b, a, "input"]);
        var x = g.RandomInput();
        var y = Forward(g, x);
        // y[n, c, h, :] = (tanh x[n, c, h, 0..3], x[n, c, h, 0], x[n, c, h, 0..3]): 9 per row
        for (int r = 0; r < x.Length / 4; r++)
        {
            for (int j = 0; j < 4; j++)
            {
                Assert.That(y[r * 9 + j], Is.EqualTo(Math.Tanh(x[r * 4 + j])).Within(1e-12));
                Assert.That(y[r * 9 + 5 + j], Is.EqualTo(x[r * 4 + j]));
            }
            Assert.That(y[r * 9 + 4], Is.EqualTo(x[r * 4]));
        }
        g.CheckReverse();
        g.CheckJets();
        var bad = new OpGraph([3, 2, 4]);
        string p = bad.Add(ModelOps.Slice, A(("axis", [2]), ("start", [0]), ("count", [1])), inputs: ["input"]);
        var e = Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Concat, A(("axis", [3])), inputs: [p, "input"]));
        Assert.That(e!.Message, Does.Contain("differ outside axis 3"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MatMul_with_a_constant_weight_over_the_last_axis_matches_and_differentiates(bool bias)
    {
        // ConvNeXt's pointwise linear layer on (N, H, W, C), with the bias the converter folds in or without.
        var g = new OpGraph([3, 2, 4]);
        g.Weight("w", [4, 5]);
        if (bias)
            g.Weight("b", [5]);
        g.Add(ModelOps.MatMul, pars: bias ? P(("weight", "w"), ("bias", "b")) : P(("weight", "w")));
        var x = g.RandomInput();
        var y = Forward(g, x);
        float[] w = g.Weights["w"].Data, b = bias ? g.Weights["b"].Data : new float[5];
        for (int r = 0; r < x.Length / 4; r++)
        for (int m = 0; m < 5; m++)
        {
            double s = b[m];
            for (int k = 0; k < 4; k++)
                s += x[r * 4 + k] * w[k * 5 + m];
            Assert.That(y[r * 5 + m], Is.EqualTo(s).Within(1e-12));
        }
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Gelu_matches_its_definition_finite_differences_and_jets()
    {
        var g = new OpGraph([2, 3, 4]);
        g.Add(ModelOps.Gelu);
        var x = g.RandomInput().Select(v => 3 * v).ToArray();
        var y = Forward(g, x);
        for (int i = 0; i < x.Length; i++)
            Assert.That(y[i], Is.EqualTo(x[i] * 0.5 * (1 + ReferenceBackend.ErfDouble(x[i] / Math.Sqrt(2)))).Within(1e-12));
        g.CheckReverse(x);
        g.CheckJets();
    }

    [Test]
    public void Exact_GELU_from_erf_matches_its_definition_finite_differences_and_jets()
    {
        // x * 0.5 * (1 + erf(x / sqrt 2)), as torch 1.13 exports nn.GELU().
        var g = new OpGraph([2, 3, 4]);
        g.Weight("inv_sqrt2", [1]);
        g.Weights["inv_sqrt2"].Data[0] = (float)(1 / Math.Sqrt(2));
        g.Weight("one", [1]);
        g.Weights["one"].Data[0] = 1f;
        g.Weight("half", [1]);
        g.Weights["half"].Data[0] = 0.5f;
        string x = g.Last;
        g.Add(ModelOps.Mul, pars: P(("constant", "inv_sqrt2")));
        g.Add(ModelOps.Erf);
        g.Add(ModelOps.Add, pars: P(("constant", "one")));
        string t = g.Add(ModelOps.Mul, inputs: [x, g.Last]);
        g.Add(ModelOps.Mul, pars: P(("constant", "half")), inputs: [t]);
        var xs = g.RandomInput().Select(v => 3 * v).ToArray();
        var y = Forward(g, xs);
        for (int i = 0; i < xs.Length; i++)
        {
            double s2 = (float)(1 / Math.Sqrt(2));
            Assert.That(y[i], Is.EqualTo(xs[i] * 0.5 * (1 + ReferenceBackend.ErfDouble(xs[i] * s2))).Within(1e-12));
        }
        g.CheckReverse(xs);
        g.CheckJets();
    }

    [Test]
    public void Decomposed_layer_norm_from_pow_sqrt_and_reductions_matches_finite_differences_and_jets()
    {
        // The opset-13 export of nn.LayerNorm: (x - mean) / sqrt(mean((x - mean)^2) + eps).
        var g = new OpGraph([2, 3, 4]);
        g.Weight("eps", [1]);
        g.Weights["eps"].Data[0] = 1e-5f;
        string x = g.Last;
        string mean = g.Add(ModelOps.ReduceMean, A(("axes", [3]), ("keepdims", [1])));
        string d = g.Add(ModelOps.Sub, inputs: [x, mean]);
        g.Add(ModelOps.Pow, A(("exponent", [2])));
        g.Add(ModelOps.ReduceMean, A(("axes", [3]), ("keepdims", [1])));
        g.Add(ModelOps.Add, pars: P(("constant", "eps")));
        string s = g.Add(ModelOps.Sqrt);
        g.Add(ModelOps.Div, inputs: [d, s]);
        g.CheckReverse();
        g.CheckJets(h: 1e-3, rtol: 1e-3);
    }

    [Test]
    public void Tanh_matches_finite_differences_and_jets()
    {
        var g = new OpGraph([2, 3, 4]);
        g.Add(ModelOps.Tanh);
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Every_op_the_registry_holds_is_named_once_and_known_to_the_validator()
    {
        Assert.That(OpRegistry.All.Select(r => r.Name), Is.Unique);
        Assert.That(ModelOps.All, Is.EquivalentTo(OpRegistry.All.Select(r => r.Name)));
        foreach (var name in new[] { ModelOps.ReduceMean, ModelOps.Transpose, ModelOps.LayerNorm, ModelOps.Slice, ModelOps.MatMul, ModelOps.Erf })
            Assert.That(OpRegistry.Find(name), Is.Not.Null, name);
    }

    [Test]
    public void An_unknown_op_is_refused_naming_the_node()
    {
        var g = new OpGraph([2, 3, 4]);
        var e = Assert.Throws<UnsupportedModelException>(() => g.Add("gridsample"));
        Assert.That(e!.Message, Does.Contain("n0_gridsample").And.Contain("'gridsample'"));
    }
}
