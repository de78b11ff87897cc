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
            if (!Ops.All.Contains(node.Op))
                throw new UnsupportedModelException($"node '{node.Name}': unknown operator '{node.Op}'");
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
        foreach (var name in graph.Nodes.SelectMany(n => n.Params.Values).Distinct(StringComparer.Ordinal))
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

    private static void Arity(GraphNode n, int[][] ins, int count)
    {
        if (ins.Length != count)
            throw new ArgumentException($"needs {count} input(s), has {ins.Length}");
    }

    private static int[] Spatial(int[] s) =>
        s.Length == 3 ? s : throw new ArgumentException($"needs a (C, H, W) input, got {TensorShape.Format(s)}");

    private static HostTensor Weight(GraphNode n, string role, IReadOnlyDictionary<string, HostTensor> weights, int[] shape)
    {
        string name = n.Param(role) ?? throw new ArgumentException($"missing '{role}' parameter");
        if (!weights.TryGetValue(name, out var t))
            throw new ArgumentException($"parameter tensor '{name}' is not in the file");
        if (!TensorShape.Equal(t.Shape, shape))
            throw new ArgumentException($"parameter '{name}' has shape {t.ShapeText}, expected {TensorShape.Format(shape)}");
        return t;
    }

    /// <summary>Largest kernel, stride, pad or dilation accepted; keeps the int arithmetic of
    /// <see cref="ConvShape"/> and <see cref="PoolShape"/> free of overflow.</summary>
    private const int MaxWindowAttr = 1 << 16;

    /// <summary>Rejects window attributes whose output-size arithmetic would overflow an int (a hostile
    /// dilation * (kernel - 1) can wrap around to a plausible output size).</summary>
    private static void CheckWindow(int size, int k, int stride, int padBefore, int padAfter, int dilation)
    {
        if (k > MaxWindowAttr || stride > MaxWindowAttr || dilation > MaxWindowAttr || padBefore > MaxWindowAttr
            || padAfter > MaxWindowAttr)
            throw new ArgumentException($"kernel, stride, pad and dilation values above {MaxWindowAttr} are not supported");
        // Checked here because ConvShape/PoolShape.Validate format their message with ToString, which
        // evaluates OH/OW and would divide by a zero stride.
        if (k < 1 || stride < 1 || dilation < 1)
            throw new ArgumentException($"kernel ({k}), stride ({stride}) and dilation ({dilation}) must be positive");
        if (padBefore < 0 || padAfter < 0)
            throw new ArgumentException($"pads ({padBefore}, {padAfter}) must be non-negative");
        long padded = (long)size + padBefore + padAfter;
        if (padded > int.MaxValue / 2)
            throw new ArgumentException($"padded input side {padded} is too large");
        if ((long)dilation * (k - 1) + 1 > padded)
            throw new ArgumentException($"the window (kernel {k}, dilation {dilation}) does not fit the padded input side {padded}");
    }

    /// <summary>Infers a node's output shape (no batch) from its input shapes, validating attributes and parameters.</summary>
    public static int[] InferShape(GraphNode node, int[][] ins, IReadOnlyDictionary<string, HostTensor> weights)
    {
        switch (node.Op)
        {
            case Ops.Conv:
            {
                Arity(node, ins, 1);
                var g = NodeGeometry.Conv(node, Spatial(ins[0]), 1);
                CheckWindow(g.H, g.KH, g.StrideH, g.PadTop, g.PadBottom, g.DilationH);
                CheckWindow(g.W, g.KW, g.StrideW, g.PadLeft, g.PadRight, g.DilationW);
                g.Validate();
                Weight(node, "weight", weights, [g.K, g.CPerGroup, g.KH, g.KW]);
                if (node.Param("bias") != null)
                    Weight(node, "bias", weights, [g.K]);
                return [g.K, g.OH, g.OW];
            }
            case Ops.Relu:
                Arity(node, ins, 1);
                return ins[0];
            case Ops.MaxPool:
            case Ops.AvgPool:
            {
                Arity(node, ins, 1);
                var g = NodeGeometry.Pool(node, Spatial(ins[0]), 1);
                CheckWindow(g.H, g.KH, g.StrideH, g.PadTop, g.PadBottom, g.DilationH);
                CheckWindow(g.W, g.KW, g.StrideW, g.PadLeft, g.PadRight, g.DilationW);
                g.Validate();
                return [g.C, g.OH, g.OW];
            }
            case Ops.GlobalAvgPool:
                Arity(node, ins, 1);
                return [Spatial(ins[0])[0], 1, 1];
            case Ops.Flatten:
                Arity(node, ins, 1);
                if (node.Int("axis", 1) != 1)
                    throw new ArgumentException("only axis=1 is supported");
                return [checked((int)TensorShape.CheckedLength(ins[0]))];
            case Ops.Gemm:
            {
                Arity(node, ins, 1);
                if (ins[0].Length != 1)
                    throw new ArgumentException($"needs a flat (K) input, got {TensorShape.Format(ins[0])}");
                string wn = node.Param("weight") ?? throw new ArgumentException("missing 'weight' parameter");
                if (!weights.TryGetValue(wn, out var w) || w.Shape.Length != 2)
                    throw new ArgumentException($"weight '{wn}' is missing or not 2-D");
                var g = NodeGeometry.Gemm(node, ins[0][0], w.Shape, 1);
                g.Validate();
                if (node.Param("bias") != null)
                    Weight(node, "bias", weights, [g.N]);
                return [g.N];
            }
            case Ops.Add or Ops.Sub or Ops.Mul or Ops.Div:
            {
                int first = node.Int("constant_first", 0);
                if (first is not (0 or 1))
                    throw new ArgumentException($"constant_first must be 0 or 1, is {first}");
                int[] other;
                if (node.Param("constant") is { } cn)
                {
                    Arity(node, ins, 1);
                    if (!weights.TryGetValue(cn, out var c))
                        throw new ArgumentException($"parameter tensor '{cn}' is not in the file");
                    // The constant is right-aligned against (N, ...) and must not reach the batch axis.
                    if (c.Shape.Length > ins[0].Length)
                        throw new ArgumentException($"constant {c.ShapeText} has a higher rank than the input {TensorShape.Format(ins[0])}");
                    other = c.Shape;
                }
                else
                {
                    Arity(node, ins, 2);
                    if (first != 0)
                        throw new ArgumentException("constant_first is set but the node has no constant");
                    if (ins[0].Length != ins[1].Length)
                        throw new ArgumentException($"operand ranks differ: {TensorShape.Format(ins[0])} and {TensorShape.Format(ins[1])}");
                    other = ins[1];
                }
                if (ins[0].Length is < 1 or > 3)
                    throw new ArgumentException($"operands must have 1 to 3 dimensions besides the batch, got {TensorShape.Format(ins[0])}");
                return BroadcastShape.Broadcast(ins[0], other);
            }
            case Ops.Sigmoid or Ops.HardSwish:
                Arity(node, ins, 1);
                return ins[0];
            case Ops.HardSigmoid or Ops.LeakyRelu or Ops.Clip:
                Arity(node, ins, 1);
                NodeGeometry.CheckUnary(node);
                return ins[0];
            case Ops.BatchNorm:
            {
                Arity(node, ins, 1);
                Weight(node, "scale", weights, [ins[0][0]]);
                Weight(node, "shift", weights, [ins[0][0]]);
                return ins[0];
            }
            case Ops.Concat:
            {
                if (ins.Length < 1)
                    throw new ArgumentException("needs at least one input");
                long channels = 0;
                foreach (var s in ins)
                {
                    if (s.Length != ins[0].Length || !s.AsSpan(1).SequenceEqual(ins[0].AsSpan(1)))
                        throw new ArgumentException($"inputs {TensorShape.Format(ins[0])} and {TensorShape.Format(s)} differ outside the channel axis");
                    channels += s[0];
                }
                if (channels > TensorShape.MaxElements)
                    throw new ArgumentException($"{channels} channels in all");
                int[] r = (int[])ins[0].Clone();
                r[0] = (int)channels;
                return r;
            }
            case Ops.Pad:
            {
                Arity(node, ins, 1);
                var x = Spatial(ins[0]);
                var g = NodeGeometry.Pad(node, x, 1);
                g.Validate();
                if (!float.IsFinite(node.Float("value", 0f)))
                    throw new ArgumentException("the pad value must be finite");
                return [g.C, g.OH, g.OW];
            }
            case Ops.Reshape:
            {
                Arity(node, ins, 1);
                var shape = node.Ints("shape", []);
                if (shape.Length is < 1 or > 3 || shape.Any(d => d < 1))
                    throw new ArgumentException($"shape [{string.Join(",", shape)}] must have 1 to 3 positive dimensions");
                if (TensorShape.CheckedLength(shape) != TensorShape.CheckedLength(ins[0]))
                    throw new ArgumentException($"cannot reshape {TensorShape.Format(ins[0])} to {TensorShape.Format(shape)}");
                return shape;
            }
            case Ops.Softmax:
                Arity(node, ins, 1);
                return ins[0];
            default:
                throw new UnsupportedModelException($"node '{node.Name}': unknown operator '{node.Op}'");
        }
    }
}

/// <summary>Builds kernel geometries from graph nodes and input shapes (batch given separately).</summary>
internal static class NodeGeometry
{
    /// <summary>Conv geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static ConvShape Conv(GraphNode node, int[] x, int n)
    {
        var k = node.Ints("kernel", 2, [0, 0]);
        var s = node.Ints("strides", 2, [1, 1]);
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        var d = node.Ints("dilations", 2, [1, 1]);
        int kOut = node.Int("out_channels", 0);
        return new ConvShape(n, x[0], x[1], x[2], kOut, k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1],
            node.Int("group", 1));
    }

    /// <summary>Pool geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static PoolShape Pool(GraphNode node, int[] x, int n)
    {
        var k = node.Ints("kernel", 2, [0, 0]);
        var s = node.Ints("strides", 2, [1, 1]);
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        var d = node.Ints("dilations", 2, [1, 1]);
        return new PoolShape(n, x[0], x[1], x[2], k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1],
            node.Int("ceil_mode", 0) != 0, node.Int("count_include_pad", 0) != 0);
    }

    /// <summary>Pad geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static PadShape Pad(GraphNode node, int[] x, int n)
    {
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        return new PadShape(n, x[0], x[1], x[2], p[0], p[1], p[2], p[3]);
    }

    /// <summary>The binary operator of an add/sub/mul/div node.</summary>
    public static BinaryOp Binary(GraphNode node) => node.Op switch
    {
        Ops.Add => BinaryOp.Add,
        Ops.Sub => BinaryOp.Sub,
        Ops.Mul => BinaryOp.Mul,
        Ops.Div => BinaryOp.Div,
        _ => throw new ArgumentException($"'{node.Op}' is not a binary operator"),
    };

    /// <summary>HardSigmoid parameters (ONNX defaults alpha 0.2, beta 0.5).</summary>
    public static HardSigmoid HardSigmoid(GraphNode node) => new(node.Float("alpha", 0.2f), node.Float("beta", 0.5f));

    /// <summary>LeakyRelu parameter (ONNX default alpha 0.01).</summary>
    public static LeakyRelu LeakyRelu(GraphNode node) => new(node.Float("alpha", 0.01f));

    /// <summary>Clip bounds (absent bounds are infinite).</summary>
    public static Clip Clip(GraphNode node) => new(node.Float("min", float.NegativeInfinity), node.Float("max", float.PositiveInfinity));

    /// <summary>Throws when a parameterized unary op has non-finite or inconsistent attributes.</summary>
    public static void CheckUnary(GraphNode node)
    {
        switch (node.Op)
        {
            case Ops.HardSigmoid:
                var h = HardSigmoid(node);
                if (!float.IsFinite(h.Alpha) || !float.IsFinite(h.Beta))
                    throw new ArgumentException("alpha and beta must be finite");
                break;
            case Ops.LeakyRelu:
                if (!float.IsFinite(LeakyRelu(node).Alpha))
                    throw new ArgumentException("alpha must be finite");
                break;
            case Ops.Clip:
                var c = Clip(node);
                if (float.IsNaN(c.Min) || float.IsNaN(c.Max) || c.Min > c.Max)
                    throw new ArgumentException($"clip bounds [{c.Min}, {c.Max}] are not an interval");
                break;
        }
    }

    /// <summary>Gemm geometry for a flat input of <paramref name="k"/> features and a weight of shape <paramref name="w"/>.</summary>
    public static GemmShape Gemm(GraphNode node, int k, int[] w, int m)
    {
        bool transB = node.Int("transB", 1) != 0;
        int wk = transB ? w[1] : w[0];
        int wn = transB ? w[0] : w[1];
        if (wk != k)
            throw new ArgumentException($"weight shape {TensorShape.Format(w)} does not take {k} input features (transB={transB})");
        return new GemmShape(m, k, wn, transB, node.Float("alpha", 1f), node.Float("beta", 1f));
    }
}
