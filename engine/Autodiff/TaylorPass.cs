using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Graph.Ops;
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
/// Each op's rule lives in its file under <c>engine/Graph/Ops</c> (<see cref="OpRule.Jets"/>); an op without a jet
/// rule is refused by name.
/// </summary>
internal static class TaylorPass
{
    /// <summary>True when <paramref name="node"/> is piecewise linear in its activation inputs (its op rule's
    /// <see cref="OpRule.IsPiecewiseLinear"/>): conv, pooling, ReLU, a product or quotient with a constant, ...; a
    /// product of two activations, as in SiLU = x * sigmoid(x), bends.</summary>
    public static bool IsPiecewiseLinear(GraphNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return OpRegistry.Find(node.Op)?.IsPiecewiseLinear(node) ?? false;
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

    // The op's Taylor rule (engine/Graph/Ops); an op declared without jets refuses by name.
    private static Tensor?[] Node(DeviceModel model, GraphNode node, Tensor?[][] ins, int m, int order, Func<Tensor, Tensor> own)
    {
        var rule = OpRegistry.For(node);
        if (!rule.HasJets)
            throw OpRule.NoJets(node);
        return rule.Jets(new JetArgs(model, node, ins, m, order, own));
    }
}
