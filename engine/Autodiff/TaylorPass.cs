using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;

namespace CamEngine.Autodiff;

/// <summary>
/// Forward-mode Taylor propagation (jets up to third order) through the part of a graph that follows a layer.
/// Row r of the batch carries the path <c>A(t) = A0 + V1[r] t + V2[r] t^2 + V3[r] t^3</c> through the layer's
/// activation A0 of one image; every node after the layer maps the coefficients of its inputs to those of its
/// output:
/// <list type="bullet">
/// <item>linear ops (conv, pooling averages, GAP, gemm, add, flatten) apply their linear map to every order
/// (biases only to order 0) — the same kernels as the forward pass;</item>
/// <item>ReLU multiplies every order by the order-0 mask [A0 &gt; 0] (ReLU'(0) = 0, and higher derivatives are zero
/// away from the kink; at the kink the convention is the mask of order 0);</item>
/// <item>max-pool routes every order through the order-0 argmax (first maximum at ties);</item>
/// <item>element-wise maps (sigmoid, hard-swish, ...) combine orders by Faa di Bruno's formula with the op's
/// first three derivatives (<see cref="Kernels.Unary.Jet{TOp}"/>); products and quotients of activations by the
/// Cauchy product and its inverse; softmax on the host in double.</item>
/// </list>
/// An op without a jet rule is refused by name.
/// </summary>
internal static class TaylorPass
{
    /// <summary>Ops that are piecewise linear in their activation inputs (their jets never mix orders).</summary>
    public static readonly IReadOnlySet<string> PiecewiseLinearOps = new HashSet<string>(StringComparer.Ordinal)
    {
        Ops.Conv, Ops.Relu, Ops.MaxPool, Ops.AvgPool, Ops.GlobalAvgPool, Ops.Flatten, Ops.Gemm, Ops.Add, Ops.Sub,
        Ops.BatchNorm, Ops.Concat, Ops.Pad, Ops.Reshape, Ops.HardSigmoid, Ops.LeakyRelu, Ops.Clip,
    };

    /// <summary>True when <paramref name="node"/> is piecewise linear in its activation inputs: the ops above, and
    /// a product or quotient with a constant (a product of two activations, as in SiLU = x * sigmoid(x), bends).</summary>
    public static bool IsPiecewiseLinear(GraphNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return PiecewiseLinearOps.Contains(node.Op)
               || (node.Op is Ops.Mul && node.Param("constant") != null)
               || (node.Op is Ops.Div && node.Param("constant") != null && node.Int("constant_first", 0) == 0);
    }

    /// <summary>The nodes after <paramref name="layer"/> that depend on it, in topological order.</summary>
    public static IReadOnlyList<GraphNode> Suffix(ModelGraph graph, string layer)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var reached = new HashSet<string>(StringComparer.Ordinal) { layer };
        var result = new List<GraphNode>();
        foreach (var n in graph.Nodes)
        {
            if (n.Inputs.Any(reached.Contains))
            {
                reached.Add(n.Output);
                result.Add(n);
            }
        }
        if (!reached.Contains(graph.OutputName))
            throw new CamEngineException($"the model output does not depend on layer '{layer}'");
        return result;
    }

    /// <summary>True when every op between <paramref name="layer"/> and the output is piecewise linear.</summary>
    public static bool IsPiecewiseLinear(ModelGraph graph, string layer) => Suffix(graph, layer).All(IsPiecewiseLinear);

    /// <summary>
    /// Propagates coefficients of orders 1..<paramref name="coefficients"/>.Count (each (M, layer shape), or null
    /// for zero) from <paramref name="layer"/> of image <paramref name="image"/> of <paramref name="pass"/> to the
    /// output. Returns the output's coefficients, each (M, outputs) row-major on the host.
    /// </summary>
    public static float[][] Run(
        DeviceModel model, ForwardPass pass, int image, string layer, IReadOnlyList<Tensor?> coefficients)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(coefficients);
        if (image < 0 || image >= pass.Batch)
            throw new ArgumentOutOfRangeException(nameof(image));
        int order = coefficients.Count;
        int m = coefficients.FirstOrDefault(c => c != null)?.Shape[0]
                ?? throw new ArgumentException("at least one coefficient tensor is needed", nameof(coefficients));
        var b = model.Backend;
        var owned = new List<Tensor>();
        Tensor Own(Tensor t)
        {
            owned.Add(t);
            return t;
        }
        // Order-0 values of the image, replicated over the M rows.
        Tensor Replicate(string name)
        {
            var src = pass[name];
            int size = src.Length / pass.Batch;
            var r = Own(b.Allocate([m, .. src.Shape[1..]]));
            for (int row = 0; row < m; row++)
                b.CopyRange(src, image * size, r, row * size, size);
            return r;
        }
        try
        {
            var values = new Dictionary<string, Tensor?[]>(StringComparer.Ordinal);
            var start = new Tensor?[order + 1];
            start[0] = Replicate(layer);
            for (int k = 1; k <= order; k++)
            {
                var c = coefficients[k - 1];
                if (c != null && (c.Shape[0] != m || c.Length != start[0]!.Length))
                    throw new ArgumentException($"coefficient {k} has shape {c.ShapeText}, expected ({m}, layer shape)");
                start[k] = c;
            }
            values[layer] = start;
            foreach (var node in Suffix(model.Graph, layer))
            {
                var ins = node.Inputs.Select(name => values.TryGetValue(name, out var v) ? v : Constant(Replicate(name), order)).ToArray();
                values[node.Output] = Node(model, node, ins, m, order, Own);
            }
            var output = values[model.Graph.OutputName];
            var result = new float[order][];
            int outSize = output[0]!.Length;
            for (int k = 1; k <= order; k++)
                result[k - 1] = output[k] is { } t ? b.Download(t) : new float[outSize];
            return result;
        }
        finally
        {
            foreach (var t in owned)
                t.Dispose();
        }
    }

    private static Tensor?[] Constant(Tensor value, int order)
    {
        var r = new Tensor?[order + 1];
        r[0] = value;
        return r;
    }

    private static Tensor?[] Node(DeviceModel model, GraphNode node, Tensor?[][] ins, int m, int order, Func<Tensor, Tensor> own)
    {
        var b = model.Backend;
        var x = ins[0];
        var y = new Tensor?[order + 1];
        int[] outShape = [m, .. node.Shape];
        switch (node.Op)
        {
            case Ops.Conv:
            {
                var s = NodeGeometry.Conv(node, x[0]!.Shape[1..], m);
                var w = model.Parameter(node.Param("weight")!);
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.Conv2d(x[k]!, w, k == 0 && node.Param("bias") is { } bias ? model.Parameter(bias) : null, y[k]!, s);
                }
                break;
            }
            case Ops.Relu:
                y[0] = own(b.Allocate(outShape));
                b.Relu(x[0]!, y[0]!);
                for (int k = 1; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    // y_k = [x_0 > 0] * x_k: the standard ReLU backward rule applied to the coefficient.
                    y[k] = own(b.Allocate(outShape));
                    b.ReluBackward(x[0]!, x[k]!, y[k]!, Kernels.ReluRule.Standard);
                }
                break;
            case Ops.MaxPool:
            {
                var s = NodeGeometry.Pool(node, x[0]!.Shape[1..], m);
                y[0] = own(b.Allocate(outShape));
                var argmax = own(b.AllocateIndices(outShape));
                b.MaxPool(x[0]!, y[0]!, argmax, s);
                for (int k = 1; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.MaxPoolRoute(x[k]!, argmax, y[k]!, s);
                }
                break;
            }
            case Ops.AvgPool:
            {
                var s = NodeGeometry.Pool(node, x[0]!.Shape[1..], m);
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.AvgPool(x[k]!, y[k]!, s);
                }
                break;
            }
            case Ops.GlobalAvgPool:
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.GlobalAvgPool(x[k]!, y[k]!);
                }
                break;
            case Ops.Flatten:
                for (int k = 0; k <= order; k++)
                    y[k] = x[k] == null ? null : own(x[k]!.Reshape(outShape));
                break;
            case Ops.Gemm:
            {
                var w = model.Parameter(node.Param("weight")!);
                var s = NodeGeometry.Gemm(node, x[0]!.Length / m, w.Shape, m);
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.Gemm(x[k]!, w, k == 0 && node.Param("bias") is { } bias ? model.Parameter(bias) : null, y[k]!, s);
                }
                break;
            }
            case Ops.Add:
                for (int k = 0; k <= order; k++)
                {
                    var a = ins[0][k];
                    var c = ins[1][k];
                    if (a == null || c == null)
                    {
                        y[k] = a ?? c;
                        continue;
                    }
                    y[k] = own(b.Allocate(outShape));
                    b.Add(a, c, y[k]!);
                }
                break;
            case Ops.Add or Ops.Sub or Ops.Mul or Ops.Div:
                return Binary(model, node, ins, m, order, own);
            case var op when UnaryDispatch.IsUnary(op):
            {
                var action = new UnaryJetRun(b, x, y, order, own);
                UnaryDispatch.Apply(node, ref action);
                break;
            }
            case Ops.BatchNorm:
            {
                // y = scale * x + shift: the shift belongs to order 0 only.
                var scale = model.Parameter(node.Param("scale")!);
                var shift = model.Parameter(node.Param("shift")!);
                var noShift = own(b.Allocate(shift.Shape));
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(x[k]!.Shape));
                    b.ChannelAffine(x[k]!, scale, k == 0 ? shift : noShift, y[k]!);
                }
                break;
            }
            case Ops.Concat:
                for (int k = 0; k <= order; k++)
                {
                    if (ins.All(v => v[k] == null))
                        continue;
                    var parts = ins.Select(v => v[k] ?? own(b.Allocate(v[0]!.Shape))).ToArray();
                    y[k] = own(b.Allocate(outShape));
                    b.Concat(parts, y[k]!);
                }
                break;
            case Ops.Pad:
            {
                var s = NodeGeometry.Pad(node, x[0]!.Shape[1..], m);
                for (int k = 0; k <= order; k++)
                {
                    if (x[k] == null)
                        continue;
                    y[k] = own(b.Allocate(outShape));
                    b.Pad(x[k]!, y[k]!, s, k == 0 ? node.Float("value", 0f) : 0f);
                }
                break;
            }
            case Ops.Reshape:
                for (int k = 0; k <= order; k++)
                    y[k] = x[k] == null ? null : own(x[k]!.Reshape(outShape));
                break;
            case Ops.Softmax:
                return Softmax(b, x, order, own);
            default:
                throw new UnsupportedModelException(
                    $"node '{node.Name}': operator '{node.Op}' has no Taylor-mode rule, so higher-order queries through it are not available");
        }
        return y;
    }

    /// <summary>
    /// Unary element-wise map: order 0 through f, orders 1..3 by Faa di Bruno with f', f'', f''' at x0
    /// (<see cref="Kernels.Unary.Jet{TOp}"/>); the three orders travel stacked in one tensor.
    /// </summary>
    private readonly struct UnaryJetRun(Backend b, Tensor?[] x, Tensor?[] y, int order, Func<Tensor, Tensor> own) : IUnaryAction
    {
        public void Run<TOp>(TOp op) where TOp : struct, Kernels.IUnaryOp
        {
            var x0 = x[0]!;
            y[0] = own(b.Allocate(x0.Shape));
            b.Unary(op, x0, y[0]!);
            if (x.Skip(1).All(t => t == null))
                return;
            int n = x0.Length;
            var xs = own(b.Allocate(3, n));
            for (int k = 1; k <= order; k++)
            {
                if (x[k] != null)
                    b.CopyRange(x[k]!, 0, xs, (k - 1) * n, n);
            }
            var ys = own(b.Allocate(3, n));
            b.UnaryJet(op, x0, xs, ys);
            for (int k = 1; k <= order; k++)
            {
                y[k] = own(b.Allocate(x0.Shape));
                b.CopyRange(ys, (k - 1) * n, y[k]!, 0, n);
            }
        }
    }

    /// <summary>
    /// Broadcasting add, sub, mul, div on jets: sums and differences order by order; products by the Cauchy
    /// product <c>y_k = sum_{i+j=k} a_i b_j</c>; quotients from <c>q b = a</c>:
    /// <c>q_k = (a_k - sum_{j=1..k} b_j q_{k-j}) / b_0</c>. A constant operand (a parameter) has order 0 only.
    /// </summary>
    private static Tensor?[] Binary(DeviceModel model, GraphNode node, Tensor?[][] ins, int m, int order, Func<Tensor, Tensor> own)
    {
        var b = model.Backend;
        Tensor?[] a, c;
        if (node.Param("constant") is { } name)
        {
            var constant = Constant(model.Parameter(name), order);
            (a, c) = node.Int("constant_first", 0) != 0 ? (constant, ins[0]) : (ins[0], constant);
        }
        else
        {
            (a, c) = (ins[0], ins[1]);
        }
        var op = NodeGeometry.Binary(node);
        int[] outShape = Kernels.BroadcastShape.Broadcast(a[0]!.Shape, c[0]!.Shape);
        Tensor Apply(Kernels.BinaryOp o, Tensor p, Tensor q)
        {
            var r = own(b.Allocate(Kernels.BroadcastShape.Broadcast(p.Shape, q.Shape)));
            b.Binary(o, p, q, r);
            return r;
        }
        Tensor OrZero(Tensor? t, Tensor like) => t ?? own(b.Allocate(like.Shape));
        var y = new Tensor?[order + 1];
        y[0] = Apply(op, a[0]!, c[0]!);
        for (int k = 1; k <= order; k++)
        {
            switch (op)
            {
                case Kernels.BinaryOp.Add or Kernels.BinaryOp.Sub:
                    if (a[k] == null && c[k] == null)
                        break;
                    y[k] = Apply(op, OrZero(a[k], a[0]!), OrZero(c[k], c[0]!));
                    break;
                case Kernels.BinaryOp.Mul:
                    for (int i = 0; i <= k; i++)
                    {
                        if (a[i] == null || c[k - i] == null)
                            continue;
                        var term = Apply(Kernels.BinaryOp.Mul, a[i]!, c[k - i]!);
                        y[k] = y[k] == null ? term : Apply(Kernels.BinaryOp.Add, y[k]!, term);
                    }
                    break;
                default:
                {
                    Tensor? numerator = a[k];
                    for (int j = 1; j <= k; j++)
                    {
                        if (c[j] == null || y[k - j] == null)
                            continue;
                        var term = Apply(Kernels.BinaryOp.Mul, c[j]!, y[k - j]!);
                        numerator = Apply(Kernels.BinaryOp.Sub, numerator ?? own(b.Allocate(outShape)), term);
                    }
                    if (numerator != null)
                        y[k] = Apply(Kernels.BinaryOp.Div, numerator, c[0]!);
                    break;
                }
            }
            if (y[k] != null && !y[k]!.Shape.AsSpan().SequenceEqual(outShape))
                y[k] = Apply(Kernels.BinaryOp.Add, y[k]!, own(b.Allocate(outShape)));
        }
        return y;
    }

    /// <summary>Softmax over the last axis on jets, row by row on the host in double (<see cref="Jet3"/>):
    /// <c>y_j = exp(x_j - max) / sum_l exp(x_l - max)</c>. Softmax rows are short (class scores).</summary>
    private static Tensor?[] Softmax(Backend b, Tensor?[] x, int order, Func<Tensor, Tensor> own)
    {
        var shape = x[0]!.Shape;
        int cols = shape[^1], n = x[0]!.Length;
        var values = new float[order + 1][];
        for (int k = 0; k <= order; k++)
            values[k] = x[k] == null ? new float[n] : b.Download(x[k]!);
        var outputs = Enumerable.Range(0, order + 1).Select(_ => new float[n]).ToArray();
        var row = new Jet3[cols];
        for (int r = 0; r < n / cols; r++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++)
            {
                int i = r * cols + j;
                row[j] = new Jet3(values[0][i], order >= 1 ? values[1][i] : 0, order >= 2 ? values[2][i] : 0, order >= 3 ? values[3][i] : 0);
                max = Math.Max(max, row[j].C0);
            }
            var sum = Jet3.Constant(0);
            for (int j = 0; j < cols; j++)
            {
                row[j] = Jet3.Exp(row[j] - Jet3.Constant(max));
                sum += row[j];
            }
            for (int j = 0; j < cols; j++)
            {
                var p = row[j] / sum;
                double[] c = [p.C0, p.C1, p.C2, p.C3];
                for (int k = 0; k <= order; k++)
                    outputs[k][r * cols + j] = (float)c[k];
            }
        }
        var y = new Tensor?[order + 1];
        for (int k = 0; k <= order; k++)
            y[k] = k > 0 && x.Skip(1).All(t => t == null) ? null : own(b.Upload(outputs[k], shape));
        return y;
    }
}
