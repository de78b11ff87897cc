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
/// <item>max-pool routes every order through the order-0 argmax (first maximum at ties).</item>
/// </list>
/// These ops are piecewise linear, so coefficients of different orders never mix; smooth element-wise ops would
/// mix them by Faa di Bruno's formula, and a graph containing an op without a jet rule is refused by name.
/// </summary>
public static class TaylorPass
{
    /// <summary>Ops whose Taylor propagation is linear in each coefficient (no mixing between orders).</summary>
    public static readonly IReadOnlySet<string> PiecewiseLinearOps = new HashSet<string>(StringComparer.Ordinal)
    {
        Ops.Conv, Ops.Relu, Ops.MaxPool, Ops.AvgPool, Ops.GlobalAvgPool, Ops.Flatten, Ops.Gemm, Ops.Add,
    };

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
    public static bool IsPiecewiseLinear(ModelGraph graph, string layer) =>
        Suffix(graph, layer).All(n => PiecewiseLinearOps.Contains(n.Op));

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
            default:
                throw new UnsupportedModelException(
                    $"node '{node.Name}': operator '{node.Op}' has no Taylor-mode rule yet, so higher-order queries through it are not available");
        }
        return y;
    }
}
