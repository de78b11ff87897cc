using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>The LRP rule of the convolutions and linear layers.</summary>
public enum LrpRule
{
    /// <summary>LRP-epsilon: <c>R_i = x_i sum_j w_ij R_j / (z_j + eps sign(z_j))</c>, z including the bias.</summary>
    Epsilon,

    /// <summary>LRP-alpha-beta: positive and negative contributions apart, <c>alpha - beta = 1</c>, bias left out.</summary>
    AlphaBeta,
}

/// <summary>The LRP rule of the first layer (the one that reads the image).</summary>
public enum LrpInputRule
{
    /// <summary>z+: only positive contributions <c>(x_i w_ij)^+</c>, whatever the sign of the pixel (alpha 1, beta 0).</summary>
    ZPlus,

    /// <summary>LRP-epsilon.</summary>
    Epsilon,

    /// <summary>The rule of the other layers.</summary>
    Same,
}

/// <summary>
/// Layer-wise relevance propagation (Bach et al., PLoS ONE 2015; Montavon et al., 2019): the target score is
/// distributed back to the pixels layer by layer, each layer conserving the relevance it receives up to what its
/// biases and epsilon absorb. The output relevance is the score's gradient times the output (the class logit at its
/// class for a class target, Captum's choice). Rules, as in Captum's <c>LRP</c> and its rule classes:
/// <list type="bullet">
/// <item>conv and gemm: <see cref="Rule"/>; LRP-epsilon <c>R_i = x_i sum_j w_ij R_j / (z_j + eps sign z_j)</c> (sign 0
/// = +1), or LRP-alpha-beta <c>R_i = sum_j [alpha (x_i w_ij)^+ / z_j^+ - beta (x_i w_ij)^- / z_j^-] R_j</c> with
/// z^+ and z^- the sums of the positive and negative contributions (biases left out, so alpha - beta = 1 conserves
/// relevance; Captum's Alpha1_Beta0 keeps the bias in z, the same on a network without biases);</item>
/// <item>the input layer: <see cref="InputRule"/>, z+ by default (alpha 1, beta 0 on the signed pixels);</item>
/// <item>max-pool, average pools, batch norm and add: epsilon on their own input-output relation (max-pool sends
/// each window's relevance to its first maximum; add splits in proportion to the summands);</item>
/// <item>ReLU, flatten and reshape pass relevance unchanged; concat and pad split or crop it.</item>
/// </list>
/// On a ReLU network without biases, each layer's total relevance equals the score (to epsilon). Raw: the signed
/// (C, H, W) relevance of the pixels; map: max over channels of |R|.
/// </summary>
public sealed class Lrp : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "lrp";

    /// <inheritdoc/>
    public override string Summary => "LRP: the score redistributed layer by layer to the pixels (epsilon or alpha-beta, z+ at the input)";

    /// <inheritdoc/>
    public override string Paper => "Bach et al., On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation, PLoS ONE 2015";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <summary>Rule of the convolutions and linear layers after the first.</summary>
    public LrpRule Rule { get; init; } = LrpRule.Epsilon;

    /// <summary>Rule of the layer that reads the image.</summary>
    public LrpInputRule InputRule { get; init; } = LrpInputRule.ZPlus;

    /// <summary>The epsilon of LRP-epsilon (Captum's default 1e-9).</summary>
    public double Epsilon { get; init; } = 1e-9;

    /// <summary>alpha of LRP-alpha-beta; beta = alpha - 1.</summary>
    public double Alpha { get; init; } = 1;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("rule", "epsilon", "rule of the conv and linear layers: epsilon or alphabeta"),
        new("input", "zplus", "rule of the first layer: zplus, epsilon, or same (the rule of the others)"),
        new("epsilon", "1e-9", "the epsilon of LRP-epsilon, a number >= 0"),
        new("alpha", "1", "alpha of LRP-alpha-beta (beta = alpha - 1), a number >= 1"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new Lrp
    {
        Rule = values.Enum("rule", Rule), InputRule = values.Enum("input", InputRule),
        Epsilon = values.Double("epsilon", Epsilon, 0), Alpha = values.Double("alpha", Alpha, 1),
    };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var relevance = Relevances(context, context.Forward);
        var shape = context.Model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2];
        var r = relevance.TryGetValue(context.Model.Graph.InputName, out var v) ? v : new float[context.Batch * size];
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
            result.Add(PixelMaps.Make(this, context, i, r.AsSpan(i * size, size).ToArray()));
        return result;
    }

    /// <summary>The relevance of every tensor the propagation reaches (rows of <paramref name="pass"/>), the output's
    /// included; <paramref name="observer"/> sees each node's output relevance and what it sends to each input.</summary>
    internal Dictionary<string, float[]> Relevances(ExplainContext context, ForwardPass pass,
        Action<GraphNode, float[], float[]?[]>? observer = null)
    {
        var model = context.Model;
        var y = model.Backend.Download(pass.Output);
        int n = pass.Batch, k = y.Length / n;
        var seed = new float[y.Length];
        for (int i = 0; i < n; i++)
        {
            context.ScoreGradient(i, y.AsSpan(i * k, k), seed.AsSpan(i * k, k));
            for (int j = 0; j < k; j++)
                seed[i * k + j] *= y[i * k + j];
        }
        using var propagation = new Propagation(this, model, pass) { Observer = observer };
        return propagation.Run(seed);
    }

    private protected override string? ModelRefusal(ModelGraph graph, IReadOnlyList<GraphNode> layers) =>
        SignalPass.Refusal(graph, n => n.Op is Ops.Relu or Ops.MaxPool || SignalPass.LinearOps.Contains(n.Op));

    private sealed class Propagation(Lrp lrp, DeviceModel model, ForwardPass pass) : SignalPass(model, pass.Batch), IDisposable
    {
        private readonly Dictionary<string, (Tensor Plus, Tensor Minus)> _split = new(StringComparer.Ordinal);

        public void Dispose()
        {
            foreach (var (p, m) in _split.Values)
            {
                p.Dispose();
                m.Dispose();
            }
        }

        protected override float[]?[] Propagate(GraphNode node, float[] r)
        {
            switch (node.Op)
            {
                case Ops.Relu or Ops.Flatten or Ops.Reshape:
                    return [(float[])r.Clone()];
                case Ops.Concat or Ops.Pad:
                    return Vjp(node, r, lrp.Name);
                case Ops.Conv or Ops.Gemm:
                {
                    bool first = node.Inputs[0] == Model.Graph.InputName;
                    var rule = first && lrp.InputRule != LrpInputRule.Same
                        ? (lrp.InputRule == LrpInputRule.ZPlus ? LrpRule.AlphaBeta : LrpRule.Epsilon)
                        : lrp.Rule;
                    double alpha = first && lrp.InputRule == LrpInputRule.ZPlus ? 1 : lrp.Alpha;
                    return rule == LrpRule.Epsilon ? EpsilonRule(node, r) : [AlphaBeta(node, r, alpha)];
                }
                case Ops.MaxPool:
                {
                    var x = Values(pass, node.Inputs[0], 0);
                    var s = Divide(r, Values(pass, node.Output, 0));
                    var a = MaxPoolArgmax(x, NodeGeometry.Pool(node, ShapeOf(node.Inputs[0]), Rows));
                    var rx = new float[x.Length];
                    for (int o = 0; o < s.Length; o++)
                    {
                        if (a[o] >= 0)
                            rx[a[o]] += x[a[o]] * s[o];
                    }
                    return [rx];
                }
                case Ops.AvgPool or Ops.GlobalAvgPool or Ops.BatchNorm or Ops.Add or Ops.Sub:
                    return EpsilonRule(node, r);
                default:
                    throw new CamEngineException($"lrp has no rule for node '{node.Name}' ({node.Op})");
            }
        }

        // R_in = x * J^T (R / (z + eps sign z)) for a node linear in each input, z its output.
        private float[]?[] EpsilonRule(GraphNode node, float[] r)
        {
            var c = Vjp(node, Divide(r, Values(pass, node.Output, 0)), lrp.Name);
            for (int k = 0; k < c.Length; k++)
            {
                if (c[k] is not { } ck)
                    continue;
                var x = Values(pass, node.Inputs[k], 0);
                for (int j = 0; j < ck.Length; j++)
                    ck[j] *= x[j];
            }
            return c;
        }

        private float[] Divide(float[] r, float[] z)
        {
            var s = new float[r.Length];
            for (int j = 0; j < s.Length; j++)
                s[j] = (float)(r[j] / (z[j] + lrp.Epsilon * (z[j] >= 0 ? 1 : -1)));
            return s;
        }

        // R_in = alpha (x+ W+^T s+ + x- W-^T s+) - beta (x+ W-^T s- + x- W+^T s-), s± = R / z±,
        // z+ = W+ x+ + W- x-, z- = W- x+ + W+ x- (no bias; a zero z± passes nothing).
        private float[] AlphaBeta(GraphNode node, float[] r, double alpha)
        {
            double beta = alpha - 1;
            var x = Values(pass, node.Inputs[0], 0);
            var xp = x.Select(v => Math.Max(v, 0f)).ToArray();
            var xm = x.Select(v => Math.Min(v, 0f)).ToArray();
            var (wp, wm) = Split(node);
            var zp = Add(Forward(node, xp, wp), Forward(node, xm, wm));
            var sp = Ratio(r, zp);
            var result = new double[x.Length];
            Accumulate(result, alpha, xp, Vjp(node, sp, lrp.Name, wp)[0]!);
            Accumulate(result, alpha, xm, Vjp(node, sp, lrp.Name, wm)[0]!);
            if (beta != 0)
            {
                var zm = Add(Forward(node, xp, wm), Forward(node, xm, wp));
                var sm = Ratio(r, zm);
                Accumulate(result, -beta, xp, Vjp(node, sm, lrp.Name, wm)[0]!);
                Accumulate(result, -beta, xm, Vjp(node, sm, lrp.Name, wp)[0]!);
            }
            return result.Select(v => (float)v).ToArray();
        }

        private static void Accumulate(double[] sum, double factor, float[] x, float[] c)
        {
            for (int j = 0; j < sum.Length; j++)
                sum[j] += factor * x[j] * c[j];
        }

        private static float[] Add(float[] a, float[] b)
        {
            for (int j = 0; j < a.Length; j++)
                a[j] += b[j];
            return a;
        }

        private static float[] Ratio(float[] r, float[] z)
        {
            var s = new float[r.Length];
            for (int j = 0; j < s.Length; j++)
                s[j] = z[j] == 0 ? 0f : r[j] / z[j];
            return s;
        }

        // The node's linear map without bias applied to x with weight w.
        private float[] Forward(GraphNode node, float[] x, Tensor w)
        {
            var b = Model.Backend;
            var shape = ShapeOf(node.Inputs[0]);
            using var xt = b.Upload(x, [Rows, .. shape]);
            using var yt = b.Allocate([Rows, .. node.Shape]);
            if (node.Op == Ops.Conv)
                b.Conv2d(xt, w, null, yt, NodeGeometry.Conv(node, shape, Rows));
            else
                b.Gemm(xt, w, null, yt, NodeGeometry.Gemm(node, x.Length / Rows, w.Shape, Rows));
            return b.Download(yt);
        }

        // The positive and negative parts of the node's weight, uploaded once.
        private (Tensor Plus, Tensor Minus) Split(GraphNode node)
        {
            string name = node.Param("weight")!;
            if (_split.TryGetValue(name, out var t))
                return t;
            var b = Model.Backend;
            var w = Model.Parameter(name);
            var host = b.Download(w);
            t = (b.Upload(host.Select(v => Math.Max(v, 0f)).ToArray(), w.Shape), b.Upload(host.Select(v => Math.Min(v, 0f)).ToArray(), w.Shape));
            _split[name] = t;
            return t;
        }
    }
}
