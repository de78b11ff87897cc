using CamEngine.Graph;
using CamEngine.Graph.Ops;
using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>
/// DeepLIFT with the rescale rule (Shrikumar, Greenside and Kundaje, ICML 2017, arXiv:1704.02685), exactly as
/// Captum's <c>DeepLift</c> computes it: the input and a reference x0 run as one batch; the reverse pass replaces the
/// derivative of every non-linearity by a multiplier of differences from the reference, and the attribution is
/// <code>a = (x - x0) * m(x),   m = d score / d x with f'(x) replaced by (f(x) - f(x0)) / (x - x0)</code>
/// (the plain derivative where |x - x0| &lt; 1e-10). ReLU and the element-wise activations use that rescale;
/// max-pool follows Captum's rule (each output's difference split between the input's and the reference's
/// maxima, divided by each position's input difference); linear operators (conv, gemm, pools by averaging, batch
/// norm, add, concat, pad, flatten) propagate as in backprop. Completeness: <c>sum a = y(x) - y(x0)</c> for a
/// network of ReLUs and linear operators. Raw: the signed (C, H, W) attribution; map: max over channels of |a|.
/// </summary>
public sealed class DeepLift : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "deeplift";

    /// <inheritdoc/>
    public override string Summary => "DeepLIFT (rescale): differences from a reference propagated with difference-quotient multipliers";

    /// <inheritdoc/>
    public override string Paper => "Shrikumar et al., Learning Important Features Through Propagating Activation Differences, ICML 2017 (arXiv:1704.02685)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <summary>The reference input.</summary>
    public InputBaselineKind Baseline { get; init; } = InputBaselineKind.Zero;

    /// <summary>Standard deviation, in pixels, of the blur reference.</summary>
    public double Sigma { get; init; } = 5;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("baseline", "zero", "the reference input: zero (normalized input space), mean (each channel's image mean) or blur"),
        new("sigma", "5", "standard deviation in pixels of the blur reference's Gaussian, > 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new DeepLift
    {
        Baseline = values.Enum("baseline", Baseline), Sigma = values.Double("sigma", Sigma, 0, inclusive: false),
    };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var shape = model.Graph.InputShape;
        int n = context.Batch, size = shape[0] * shape[1] * shape[2];
        var x = Perturbation.Inputs(context);
        var both = new float[2 * n * size];
        x.CopyTo(both, 0);
        for (int i = 0; i < n; i++)
            InputBaselines.Make(Baseline, x.AsSpan(i * size, size), shape[0], shape[1], shape[2], Sigma).CopyTo(both, (n + i) * size);
        using var input = model.Backend.Upload(both, [2 * n, .. shape]);
        using var pass = model.Forward(input);
        var y = model.Backend.Download(pass.Output);
        int k = y.Length / (2 * n);
        var seed = new float[n * k];
        for (int i = 0; i < n; i++)
            context.ScoreGradient(i, y.AsSpan(i * k, k), seed.AsSpan(i * k, k));
        var m = new Multipliers(model, pass, n, Name).Run(seed);
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            var raw = new float[size];
            if (m.TryGetValue(model.Graph.InputName, out var g))
            {
                for (int j = 0; j < size; j++)
                    raw[j] = (both[i * size + j] - both[(n + i) * size + j]) * g[i * size + j];
            }
            result.Add(PixelMaps.Make(this, context, i, raw));
        }
        return result;
    }

    private protected override string? ModelRefusal(ModelGraph graph, IReadOnlyList<GraphNode> layers) =>
        SignalPass.Refusal(graph, n => n.Op is Ops.Relu or Ops.MaxPool || SignalPass.LinearOps.Contains(n.Op) || Multipliers.IsElementwise(OpRegistry.For(n)));

    /// <summary>The rescale multipliers of rows [0, n) of a pass over n inputs followed by their n references.</summary>
    private sealed class Multipliers(DeviceModel model, ForwardPass pass, int n, string method) : SignalPass(model, n)
    {
        private const float Eps = 1e-10f;

        protected override float[]?[] Propagate(GraphNode node, float[] signal)
        {
            if (node.Op == Ops.Relu || IsElementwise(OpRegistry.For(node)))
                return [Rescale(node, signal)];
            if (node.Op == Ops.MaxPool)
                return [MaxPool(node, signal)];
            return Vjp(node, signal, method);
        }

        // dx = dy * (f(x) - f(x0)) / (x - x0), or dy * f'(x) where |x - x0| < eps.
        private float[] Rescale(GraphNode node, float[] dy)
        {
            string input = node.Inputs[0];
            float[] x = Values(pass, input, 0), x0 = Values(pass, input, Rows), fx = Values(pass, node.Output, 0), fx0 = Values(pass, node.Output, Rows);
            var plain = node.Op == Ops.Relu ? null : Derivative(node, x, dy);
            var dx = new float[dy.Length];
            for (int j = 0; j < dx.Length; j++)
            {
                float din = x[j] - x0[j];
                dx[j] = Math.Abs(din) < Eps
                    ? plain?[j] ?? (x[j] > 0 ? dy[j] : 0f)
                    : dy[j] * (fx[j] - fx0[j]) / din;
            }
            return dx;
        }

        // An element-wise activation: its operator rule is a unary map.
        internal static bool IsElementwise(OpRule rule)
        {
            for (var t = rule.GetType(); t != null; t = t.BaseType)
            {
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(UnaryMapRule<>))
                    return true;
            }
            return false;
        }

        // dy * f'(x) of an element-wise activation: the operator's own reverse rule on a pass holding x.
        private float[] Derivative(GraphNode node, float[] x, float[] dy)
        {
            var b = Model.Backend;
            using var xt = b.Upload(x, [Rows, .. ShapeOf(node.Inputs[0])]);
            using var dyt = b.Upload(dy, xt.Shape);
            using var values = new ForwardPass(Model, xt, Rows);
            values.Set(node.Inputs[0], xt);
            using var grads = new Gradients(Model);
            OpRegistry.For(node).Backward(new BackwardArgs(Model, values, grads, node, dyt, new BackwardRequest()));
            return b.Download(grads[node.Inputs[0]]);
        }

        // Captum's maxpool rule: with M = max(y, y0), the input's maximum of each window receives dy (M - y0), the
        // reference's maximum dy (y - M); each position divides what it received by its input difference (the
        // plain routed gradient where that difference is below eps).
        private float[] MaxPool(GraphNode node, float[] dy)
        {
            string input = node.Inputs[0];
            float[] x = Values(pass, input, 0), x0 = Values(pass, input, Rows), y = Values(pass, node.Output, 0), y0 = Values(pass, node.Output, Rows);
            var s = NodeGeometry.Pool(node, ShapeOf(input), Rows);
            int[] ax = MaxPoolArgmax(x, s), a0 = MaxPoolArgmax(x0, s);
            var received = new double[x.Length];
            var plain = new double[x.Length];
            for (int o = 0; o < dy.Length; o++)
            {
                float top = Math.Max(y[o], y0[o]);
                if (ax[o] >= 0)
                {
                    received[ax[o]] += dy[o] * (top - y0[o]);
                    plain[ax[o]] += dy[o];
                }
                if (a0[o] >= 0)
                    received[a0[o]] += dy[o] * (y[o] - top);
            }
            var dx = new float[x.Length];
            for (int j = 0; j < dx.Length; j++)
            {
                float din = x[j] - x0[j];
                dx[j] = (float)(Math.Abs(din) < Eps ? plain[j] : received[j] / din);
            }
            return dx;
        }
    }
}
