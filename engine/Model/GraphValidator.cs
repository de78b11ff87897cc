using CamEngine.Graph.Ops;
using CamEngine.Kernels;
using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// Checks a graph read from an untrusted file against its weights before anything runs: unique names,
/// inputs defined before use, known operators, sane attributes, every parameter present with the right
/// shape, and every stored output shape equal to the one inferred here. A model that passes cannot make a
/// kernel index out of bounds.
/// </summary>
internal static class GraphValidator
{
    /// <summary>Validates <paramref name="graph"/>; throws <see cref="InvalidModelFileException"/> or
    /// <see cref="UnsupportedModelException"/> naming the node and the problem.</summary>
    public static void Validate(ModelGraph graph, IReadOnlyDictionary<string, HostTensor> weights)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(weights);
        if (graph.InputShape.Length != 3 || graph.InputShape.Any(d => d < 1))
            throw new InvalidModelFileException($"input shape {TensorShape.Format(graph.InputShape)} must be (C, H, W) with positive sides");
        if (graph.InputShape[0] * (long)graph.InputShape[1] * graph.InputShape[2] > TensorShape.MaxElements)
            throw new InvalidModelFileException($"input shape {TensorShape.Format(graph.InputShape)} has more than {TensorShape.MaxElements} elements");
        if (graph.Nodes.Count == 0)
            throw new InvalidModelFileException("the graph has no nodes");
        var p = graph.Preprocessing;
        int c = graph.InputShape[0];
        if (p.Mean.Length != c || p.Std.Length != c || p.Std.Any(s => !(s > 0) || float.IsInfinity(s))
            || p.Mean.Any(m => !float.IsFinite(m)))
            throw new InvalidModelFileException($"preprocessing needs {c} finite means and {c} positive standard deviations");
        if (p.Height != graph.InputShape[1] || p.Width != graph.InputShape[2] || p.ResizeShorter < Math.Min(p.Height, p.Width)
            || p.ResizeShorter > 65536)
            throw new InvalidModelFileException("preprocessing size does not match the input shape");
        ValidatePixelTransform(graph, weights);

        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal) { [graph.InputName] = graph.InputShape };
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (!names.Add(node.Name))
                throw new InvalidModelFileException($"duplicate node name '{node.Name}'");
            OpRegistry.For(node); // an unknown op is refused here, naming the node
            var ins = new int[node.Inputs.Length][];
            for (int i = 0; i < ins.Length; i++)
            {
                if (!shapes.TryGetValue(node.Inputs[i], out var s))
                    throw new InvalidModelFileException($"node '{node.Name}': input '{node.Inputs[i]}' is not defined before it");
                ins[i] = s;
            }
            int[] inferred;
            try
            {
                inferred = InferShape(node, ins, weights);
                TensorShape.CheckedLength(inferred);
            }
            catch (ArgumentException e)
            {
                throw new InvalidModelFileException($"node '{node.Name}' ({node.Op}): {e.Message}", e);
            }
            if (!TensorShape.Equal(inferred, node.Shape))
                throw new InvalidModelFileException(
                    $"node '{node.Name}': stored shape {TensorShape.Format(node.Shape)} differs from inferred {TensorShape.Format(inferred)}");
            if (shapes.ContainsKey(node.Output))
                throw new InvalidModelFileException($"node '{node.Name}': tensor '{node.Output}' is produced twice");
            shapes[node.Output] = inferred;
        }
        // Weights are finite, except the constant of an addition: a Where with a constant condition converts to a
        // masked constant added on, whose -inf entries (attention masks) must stay -inf where they are selected.
        var infinite = graph.Nodes.Where(n => n.Op == Ops.Add).SelectMany(n => n.Params.Where(p => p.Key == "constant").Select(p => p.Value))
            .Except(graph.Nodes.SelectMany(n => n.Params.Where(p => n.Op != Ops.Add || p.Key != "constant").Select(p => p.Value)), StringComparer.Ordinal)
            .ToHashSet(StringComparer.Ordinal);
        foreach (var name in graph.Nodes.SelectMany(n => n.Params.Values).Distinct(StringComparer.Ordinal).Where(w => !infinite.Contains(w)))
        {
            var data = weights[name].Data;
            for (int i = 0; i < data.Length; i++)
            {
                if (!float.IsFinite(data[i]))
                    throw new InvalidModelFileException($"weight '{name}' holds a non-finite value ({data[i]}) at element {i}");
            }
        }
        if (!shapes.ContainsKey(graph.OutputName) || graph.OutputName == graph.InputName)
            throw new InvalidModelFileException($"graph output '{graph.OutputName}' is not produced by any node");
        if (graph.Labels != null && graph.Labels.Length != TensorShape.CheckedLength(graph.OutputShape))
            throw new InvalidModelFileException($"{graph.Labels.Length} labels for {TensorShape.CheckedLength(graph.OutputShape)} outputs");
    }

    /// <summary>Checks the optional preprocessing fields: a positive finite scale, a known channel order ("bgr"
    /// only for 3 channels), and a mean image present in the file with shape (C, H, W) = the input shape and finite
    /// values.</summary>
    private static void ValidatePixelTransform(ModelGraph graph, IReadOnlyDictionary<string, HostTensor> weights)
    {
        var p = graph.Preprocessing;
        if (!(p.Scale > 0) || !float.IsFinite(p.Scale))
            throw new InvalidModelFileException($"preprocessing scale {p.Scale} must be positive and finite");
        if (p.ChannelOrder is not (Preprocessing.Rgb or Preprocessing.Bgr))
            throw new InvalidModelFileException(
                $"preprocessing channel_order '{Clip(p.ChannelOrder)}' is not \"{Preprocessing.Rgb}\" or \"{Preprocessing.Bgr}\"");
        if (p.ChannelOrder == Preprocessing.Bgr && graph.InputShape[0] != 3)
            throw new InvalidModelFileException($"preprocessing channel_order \"bgr\" needs 3 input channels, the input has {graph.InputShape[0]}");
        if (p.MeanImage == null)
            return;
        if (!weights.TryGetValue(p.MeanImage, out var m))
            throw new InvalidModelFileException($"preprocessing mean_image '{Clip(p.MeanImage)}' is not a tensor of the file");
        if (!TensorShape.Equal(m.Shape, graph.InputShape))
            throw new InvalidModelFileException(
                $"preprocessing mean_image '{Clip(p.MeanImage)}' has shape {m.ShapeText}, expected the input shape {TensorShape.Format(graph.InputShape)}");
        for (int i = 0; i < m.Data.Length; i++)
        {
            if (!float.IsFinite(m.Data[i]))
                throw new InvalidModelFileException($"preprocessing mean_image '{Clip(p.MeanImage)}' holds a non-finite value ({m.Data[i]}) at element {i}");
        }
    }

    private static string Clip(string s) => s.Length <= 64 ? s : s[..64] + "...";

    /// <summary>Infers a node's output shape (no batch) from its input shapes, validating attributes and parameters
    /// through the op's rule (<see cref="OpRegistry"/>).</summary>
    public static int[] InferShape(GraphNode node, int[][] ins, IReadOnlyDictionary<string, HostTensor> weights) =>
        OpRegistry.For(node).InferShape(node, ins, weights);
}

/// <summary>Kernel geometries of graph nodes (batch given separately), for callers outside the graph executor (the
/// benchmarks' per-layer profile); each op's own file parses its attributes.</summary>
internal static class NodeGeometry
{
    /// <summary>Conv geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static ConvShape Conv(GraphNode node, int[] x, int n) => Graph.Ops.Conv.Geometry(node, x, n);

    /// <summary>Pool geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static PoolShape Pool(GraphNode node, int[] x, int n) => Graph.Ops.MaxPool.Geometry(node, x, n);

    /// <summary>Pad geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static PadShape Pad(GraphNode node, int[] x, int n) => Graph.Ops.Pad.Geometry(node, x, n);

    /// <summary>The binary operator of an add/sub/mul/div node.</summary>
    public static BinaryOp Binary(GraphNode node) =>
        OpRegistry.Find(node.Op) is BinaryOpRule r ? r.Op : throw new ArgumentException($"'{node.Op}' is not a binary operator");

    /// <summary>Gemm geometry for a flat input of <paramref name="k"/> features and a weight of shape <paramref name="w"/>.</summary>
    public static GemmShape Gemm(GraphNode node, int k, int[] w, int m) => Graph.Ops.Gemm.Geometry(node, k, w, m);
}
