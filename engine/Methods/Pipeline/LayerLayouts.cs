using System.Globalization;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// What the graph says about how each tensor is laid out, and the <c>--layout auto</c> decision built on it.
/// One pass over the nodes in order, from the input (N, C, H, W):
/// <list type="bullet">
/// <item>conv and pooling outputs are (C, h, w);</item>
/// <item>a transpose by (0, 2, 3, 1) of a (C, h, w) tensor makes (h, w, C), by (0, 3, 1, 2) back; a transpose by
/// (0, 2, 1) of a flattened (C, h*w) tensor makes tokens (T, C) (a patch embedding), and back;</item>
/// <item>a reshape of (C, h, w) to (C, h*w) flattens the grid; of (h, w, C) to (h*w, C) makes tokens; of tokens to
/// (h, w, C) makes channels last; of (C, h*w) back to (C, h, w), or of anything to (C, h, w) with its input's last
/// two sides (ShuffleNet's channel shuffle), makes (C, h, w);</item>
/// <item>a concat of tokens along the token axis keeps tokens, with the tokens put before the grid counted as
/// leading (a class token);</item>
/// <item>a LayerNorm over the last axis of a tensor of unknown layout says channels last (rank 3) or tokens
/// (rank 2);</item>
/// <item>any other op keeps the layout of an activation input whose grid axes it keeps (element-wise ops, a
/// point-wise MatMul over the channels, BatchNorm...); otherwise the layout is unknown (attention heads, slices).</item>
/// </list>
/// For a tensor of unknown layout, <c>auto</c> looks at its consumers: a transpose by (0, 3, 1, 2), a LayerNorm or
/// MatMul over the last axis say channels last; anything else leaves (C, h, w), the reading of earlier versions.
/// A rank-2 tensor of unknown layout is tokens, with K the smallest count (at most 2) that leaves a square grid.
/// </summary>
internal sealed class LayerLayouts
{
    /// <summary>auto's largest guessed count of leading tokens (class and distillation tokens).</summary>
    public const int MaxGuessedLeadingTokens = 2;

    private enum Kind
    {
        Unknown,
        Nchw,
        Nhwc,
        Tokens,
        FlatGrid, // (C, h*w): a flattened (C, h, w), before the transpose to tokens
        SplitGrid, // (g, C/g, h, w): a (C, h, w) with its channel axis split (ShuffleNet's channel shuffle)
    }

    // Leading = -1: tokens whose leading count the graph does not say.
    private readonly record struct State(Kind Kind, int Leading, string Origin);

    private readonly ModelGraph _graph;
    private readonly Dictionary<string, State> _states = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _shapes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<GraphNode>> _consumers = new(StringComparer.Ordinal);

    private LayerLayouts(ModelGraph graph)
    {
        _graph = graph;
        _states[graph.InputName] = new State(Kind.Nchw, 0, "the input");
        _shapes[graph.InputName] = graph.InputShape;
        foreach (var n in graph.Nodes)
        {
            _shapes[n.Output] = n.Shape;
            foreach (var i in n.Inputs)
            {
                if (!_consumers.TryGetValue(i, out var list))
                    _consumers[i] = list = [];
                list.Add(n);
            }
            _states[n.Output] = Infer(n);
        }
    }

    /// <summary>The layouts of every tensor of <paramref name="graph"/>.</summary>
    public static LayerLayouts Of(ModelGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        return new LayerLayouts(graph);
    }

    private State In(GraphNode n, int k) =>
        k < n.Inputs.Length && _states.TryGetValue(n.Inputs[k], out var s) ? s : default;

    private int[] ShapeOf(string tensor) => _shapes.TryGetValue(tensor, out var s) ? s : [];

    private State Infer(GraphNode n)
    {
        var s = n.Shape;
        string origin = $"{n.Op} node '{n.Name}'";
        var x = In(n, 0);
        var xs = n.Inputs.Length > 0 ? ShapeOf(n.Inputs[0]) : [];
        switch (n.Op)
        {
            case Ops.Conv or Ops.MaxPool or Ops.AvgPool or Ops.GlobalAvgPool:
                return s.Length == 3 ? new State(Kind.Nchw, 0, origin) : default;
            case Ops.Transpose:
            {
                var perm = n.Ints("perm", []);
                if (x.Kind == Kind.Nchw && perm.SequenceEqual([0, 2, 3, 1]))
                    return new State(Kind.Nhwc, 0, $"the transpose to channels last '{n.Name}'");
                if (x.Kind == Kind.Nhwc && perm.SequenceEqual([0, 3, 1, 2]))
                    return new State(Kind.Nchw, 0, $"the transpose to channels first '{n.Name}'");
                if (x.Kind == Kind.FlatGrid && perm.SequenceEqual([0, 2, 1]))
                    return new State(Kind.Tokens, 0, $"the transpose of a flattened grid to tokens '{n.Name}'");
                if (x.Kind == Kind.Tokens && x.Leading == 0 && perm.SequenceEqual([0, 2, 1]))
                    return new State(Kind.FlatGrid, 0, origin);
                // Channel groups reordered, the (h, w) axes left last: still a split grid.
                if (x.Kind == Kind.SplitGrid && perm.Length == xs.Length + 1 && perm[0] == 0
                    && perm[^2] == perm.Length - 2 && perm[^1] == perm.Length - 1)
                    return new State(Kind.SplitGrid, 0, origin);
                return default;
            }
            case Ops.Reshape or Ops.Flatten:
            {
                if (x.Kind == Kind.Nchw && xs.Length == 3 && s.Length == 2 && s[0] == xs[0] && s[1] == xs[1] * xs[2])
                    return new State(Kind.FlatGrid, 0, origin);
                if (x.Kind == Kind.Nhwc && xs.Length == 3 && s.Length == 2 && s[1] == xs[2] && s[0] == xs[0] * xs[1])
                    return new State(Kind.Tokens, 0, $"the reshape of a channels-last grid to tokens '{n.Name}'");
                if (x.Kind == Kind.Tokens && x.Leading == 0 && xs.Length == 2 && s.Length == 3 && s[2] == xs[1] && s[0] * s[1] == xs[0])
                    return new State(Kind.Nhwc, 0, $"the reshape of tokens to a channels-last grid '{n.Name}'");
                if (x.Kind == Kind.FlatGrid && xs.Length == 2 && s.Length == 3 && s[0] == xs[0] && s[1] * s[2] == xs[1])
                    return new State(Kind.Nchw, 0, origin);
                // The channel axis split into groups (or merged back), the (h, w) axes kept last. A reshape of a
                // tensor of unknown origin that happens to keep two trailing axes says nothing (Swin's un-windowing
                // reshape when one window covers the map keeps (w, C)).
                if (x.Kind == Kind.Nchw && xs.Length == 3 && s.Length >= 4 && s[^2] == xs[1] && s[^1] == xs[2])
                    return new State(Kind.SplitGrid, 0, origin);
                if (x.Kind is Kind.Nchw or Kind.SplitGrid && s.Length == 3 && xs.Length >= 3 && xs[^2] == s[1] && xs[^1] == s[2])
                    return new State(Kind.Nchw, 0, origin);
                return default;
            }
            case Ops.LayerNorm:
            {
                bool lastAxis = n.Int("axis", xs.Length) == xs.Length;
                if (x.Kind != Kind.Unknown)
                    return x;
                if (lastAxis && s.Length == 3)
                    return new State(Kind.Nhwc, 0, $"the LayerNorm over the last axis '{n.Name}'");
                if (lastAxis && s.Length == 2)
                    return new State(Kind.Tokens, -1, $"the LayerNorm over the last axis '{n.Name}'");
                return default;
            }
            case Ops.Concat:
                return ConcatState(n);
        }
        // Element-wise and point-wise ops: the layout of an activation input whose grid axes the output keeps.
        for (int k = 0; k < n.Inputs.Length; k++)
        {
            var st = In(n, k);
            if (st.Kind != Kind.Unknown && KeepsGrid(st, ShapeOf(n.Inputs[k]), s))
                return st;
        }
        return default;
    }

    private static bool KeepsGrid(State st, int[] x, int[] y) => st.Kind switch
    {
        Kind.Nchw => x.Length == 3 && y.Length == 3 && x[1] == y[1] && x[2] == y[2],
        Kind.Nhwc => x.Length == 3 && y.Length == 3 && x[0] == y[0] && x[1] == y[1],
        Kind.Tokens => x.Length == 2 && y.Length == 2 && x[0] == y[0],
        Kind.FlatGrid => x.Length == 2 && y.Length == 2 && x[1] == y[1],
        _ => false,
    };

    private State ConcatState(GraphNode n)
    {
        var s = n.Shape;
        int axis = n.Int("axis", 1); // with the batch axis
        if (axis < 0)
            axis += s.Length + 1;
        var states = Enumerable.Range(0, n.Inputs.Length).Select(k => In(n, k)).ToList();
        var first = states.FirstOrDefault(st => st.Kind != Kind.Unknown);
        bool channelAxis = first.Kind switch
        {
            Kind.Nchw => axis == 1,
            Kind.Nhwc => axis == 3,
            Kind.Tokens => axis == 2,
            _ => false,
        };
        if (channelAxis && states.All(st => st.Kind == first.Kind || st.Kind == Kind.Unknown))
            return first;
        // Tokens along the token axis: one grid input, the tokens before it are leading (a class token).
        if (s.Length == 2 && axis == 1)
        {
            int grid = states.FindIndex(st => st.Kind == Kind.Tokens);
            if (grid >= 0 && states.Count(st => st.Kind == Kind.Tokens) == 1 && grid == n.Inputs.Length - 1 && states[grid].Leading >= 0)
            {
                int before = n.Inputs.Take(grid).Sum(i => ShapeOf(i) is { Length: 2 } sh ? sh[0] : 0);
                int added = s[0] - ShapeOf(n.Inputs[grid])[0];
                return new State(Kind.Tokens, states[grid].Leading + Math.Max(before, added),
                    $"the concat of {Math.Max(before, added)} token(s) before the grid '{n.Name}'");
            }
        }
        return default;
    }

    /// <summary>
    /// Layers that make good CAM targets, best first (<c>cam info</c>; the first is the default layer):
    /// <list type="number">
    /// <item>the head's input: the deepest tensor read as a grid with h*w &gt; 1 (channels first or last) or, for token
    /// sequences, the deepest LayerNorm that feeds an attention (ViT: the last block's <c>ln_1</c>;
    /// the final LayerNorm feeds only the class token to the head, so its patch tokens get no gradient); a transpose
    /// or reshape of a grid is passed over for the tensor it re-lays (Swin's <c>norm</c>, not the permute after it);</item>
    /// <item>then, per other grid, from the deepest, its stage output: the last residual sum on it (with the activation
    /// after it: ResNet's <c>layer3</c>, ConvNeXt's <c>features.5</c>), else the first tensor on it that a grid-shrinking
    /// node reads (ShuffleNet's <c>stage3</c>), else the last convolution, pooling, activation, concatenation or
    /// gating product on it; for a token model, the earlier LayerNorms that feed an attention.</item>
    /// </list>
    /// </summary>
    public IEnumerable<string> Suggest()
    {
        var nodes = _graph.Nodes;
        // attention[t]: a softmax over a rank >= 3 tensor (attention weights) is computed from t before any further
        // LayerNorm (so a block's ln_1 feeds its attention; its ln_2, the MLP and the residual stream do not).
        var attention = new HashSet<string>(StringComparer.Ordinal);
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            var n = nodes[i];
            bool feeds = (n.Op == Ops.Softmax && n.Shape.Length >= 3) || (n.Op != Ops.LayerNorm && attention.Contains(n.Output));
            if (feeds)
            {
                foreach (var x in n.Inputs)
                    attention.Add(x);
            }
        }
        var byOutput = nodes.ToDictionary(n => n.Output, StringComparer.Ordinal);

        string? head = null;
        for (int i = nodes.Count - 1; i >= 0 && head == null; i--)
        {
            var n = nodes[i];
            if (Grid(n) is not { } g || g.Item1 * g.Item2 <= 1)
                continue;
            var st = _states[n.Output];
            if (st.Kind == Kind.Tokens && !(attention.Contains(n.Output) && n.Op == Ops.LayerNorm))
                continue;
            // A pure re-layout of another grid tensor of the same size: the tensor it re-lays.
            var source = n;
            while (source.Op is Ops.Transpose or Ops.Reshape or Ops.Flatten && source.Inputs.Length == 1
                && byOutput.TryGetValue(source.Inputs[0], out var from) && Grid(from) == g)
                source = from;
            head = source.Output;
        }
        if (head == null)
            yield break;
        var headGrid = Grid(byOutput[head])!.Value;
        yield return head;
        if (_states[head].Kind == Kind.Tokens)
        {
            // Token models keep one grid: the earlier blocks' LayerNorms that feed an attention (ViT's ln_1).
            int more = 0;
            for (int i = nodes.Count - 1; i >= 0 && more < 3; i--)
            {
                var n = nodes[i];
                if (n.Output != head && n.Op == Ops.LayerNorm && attention.Contains(n.Output) && _states[n.Output].Kind == Kind.Tokens
                    && Grid(n) == headGrid)
                {
                    more++;
                    yield return n.Output;
                }
            }
            yield break;
        }
        // The stage outputs: per grid, the last residual sum on it (with the activation right after it, as ResNet's
        // block ends), else the first tensor on it that a grid-shrinking node reads, else the last block output on it;
        // deepest first.
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
            index[nodes[i].Output] = i;
        var residual = new Dictionary<(int, int), GraphNode>();
        var last = new Dictionary<(int, int), GraphNode>();
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            var n = nodes[i];
            if (_states[n.Output].Kind == Kind.Tokens || Grid(n) is not { } g || g.Item1 * g.Item2 <= 1 || g == headGrid)
                continue;
            if (IsResidual(n))
                residual.TryAdd(g, n);
            bool blockOutput = n.Op is Ops.Conv or Ops.MaxPool or Ops.AvgPool or Ops.Relu or Ops.Clip or Ops.LeakyRelu
                or Ops.HardSwish or Ops.Concat || (n.Op is Ops.Add or Ops.Mul && n.Inputs.Length == 2)
                || (n.Op == Ops.Reshape && _states[n.Output].Kind == Kind.Nchw); // ShuffleNet's channel shuffle ends a block
            if (blockOutput)
                last.TryAdd(g, n);
        }
        // The first tensor on a grid that a node shrinking the grid reads: the stage's output where the next stage
        // starts with a strided op on it (ShuffleNet's stage output, read by both branches of the next block).
        var shrunk = new Dictionary<(int, int), GraphNode>();
        var byName = nodes.ToDictionary(n => n.Output, StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (Grid(n) is not { } g || !last.ContainsKey(g) || _states[n.Output].Kind == Kind.Tokens)
                continue;
            bool feedsSmaller = (_consumers.GetValueOrDefault(n.Output) ?? []).Any(c =>
                Grid(c) is { } cg && cg.Item1 * cg.Item2 < g.Item1 * g.Item2);
            if (feedsSmaller)
                shrunk.TryAdd(g, n);
        }
        var stages = last.Keys.Select(g =>
        {
            if (!residual.TryGetValue(g, out var r))
                return shrunk.GetValueOrDefault(g) ?? last[g];
            var users = _consumers.GetValueOrDefault(r.Output) ?? [];
            return users is [{ Op: Ops.Relu or Ops.Clip or Ops.LeakyRelu or Ops.HardSwish } act] && TensorShape.Equal(act.Shape, r.Shape) ? act : r;
        });
        foreach (var n in stages.OrderByDescending(n => index[n.Output]))
            yield return n.Output;
    }

    // A sum of two activations of the same shape (a residual connection).
    private static bool IsResidual(GraphNode n) => n.Op == Ops.Add && n.Inputs.Length == 2;

    // The (h, w) grid a tensor is read as under what the graph says (no fallback), or null.
    private (int, int)? Grid(GraphNode n)
    {
        var s = n.Shape;
        var st = _states.GetValueOrDefault(n.Output);
        return st.Kind switch
        {
            Kind.Nchw when s.Length == 3 => (s[1], s[2]),
            Kind.Nhwc when s.Length == 3 => (s[0], s[1]),
            Kind.Tokens when s.Length == 2 => SquareSide(s[0] - (st.Leading >= 0 ? st.Leading : Guess(s[0]))) is int side and > 0
                && (st.Leading >= 0 || Guess(s[0]) <= MaxGuessedLeadingTokens) ? (side, side) : null,
            _ => null,
        };
    }

    /// <summary>How <paramref name="layer"/> is read under <paramref name="requested"/>: the layout (auto decided),
    /// the (C, h, w) grid and why.</summary>
    /// <exception cref="CamEngineException">The layout does not fit the layer (wrong rank, a token count that leaves
    /// no square grid); the message names the layer, its shape and what would fit.</exception>
    public LayerReading Read(GraphNode layer, LayerLayout requested)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var s = layer.Shape;
        string name = layer.Output;
        string shape = TensorShape.Format(s);
        if (requested.Kind == LayerLayoutKind.Auto)
        {
            var (decided, reason) = Decide(layer);
            return Grid(layer, decided, "auto: " + reason);
        }
        return Grid(layer, requested, "given");

        LayerReading Grid(GraphNode node, LayerLayout layout, string reason)
        {
            switch (layout.Kind)
            {
                case LayerLayoutKind.Nchw or LayerLayoutKind.Nhwc:
                    if (s.Length != 3)
                        throw new CamEngineException(
                            $"layer '{name}' has shape {shape}; layout {layout} needs a rank-3 {(layout.Kind == LayerLayoutKind.Nchw ? "(C, h, w)" : "(h, w, C)")} tensor"
                            + (s.Length == 2 ? " (a (T, C) token sequence reads with --layout tokens or tokens:K)" : ""));
                    return layout.Kind == LayerLayoutKind.Nchw
                        ? new LayerReading(node.Output, layout, s[0], s[1], s[2], reason)
                        : new LayerReading(node.Output, layout, s[2], s[0], s[1], reason);
                default:
                {
                    if (s.Length != 2)
                        throw new CamEngineException(
                            $"layer '{name}' has shape {shape}; layout {layout} needs a rank-2 (T, C) token sequence"
                            + (s.Length == 3 ? " (a rank-3 grid reads with --layout nchw or nhwc)" : ""));
                    int k = layout.LeadingTokens, t = s[0];
                    int side = SquareSide(t - k);
                    if (side < 1)
                        throw new CamEngineException(
                            $"layer '{name}' has {t} tokens; {layout} leaves {t - k}, which is not a square grid (h*h)"
                            + (Guess(t) != k ? $"; tokens:{Guess(t)} would leave {t - Guess(t)} ({SquareSide(t - Guess(t))}x{SquareSide(t - Guess(t))})" : ""));
                    return new LayerReading(node.Output, layout, s[1], side, side, reason);
                }
            }
        }
    }

    /// <summary>The side of a square grid of <paramref name="count"/> cells, or 0 when it is not a positive square.</summary>
    private static int SquareSide(int count)
    {
        if (count < 1)
            return 0;
        int side = (int)Math.Round(Math.Sqrt(count));
        return side * side == count ? side : 0;
    }

    // The smallest K that leaves a square grid.
    private static int Guess(int tokens)
    {
        int side = (int)Math.Floor(Math.Sqrt(tokens));
        while ((long)(side + 1) * (side + 1) <= tokens)
            side++;
        while ((long)side * side > tokens)
            side--;
        return tokens - side * side;
    }

    private (LayerLayout Layout, string Reason) Decide(GraphNode layer)
    {
        var s = layer.Shape;
        var st = _states.GetValueOrDefault(layer.Output);
        switch (st.Kind)
        {
            case Kind.Nchw when s.Length == 3:
                return (LayerLayout.Nchw, $"channels first, from {st.Origin}");
            case Kind.Nhwc when s.Length == 3:
                return (LayerLayout.Nhwc, $"channels last, from {st.Origin}");
            case Kind.Tokens when s.Length == 2 && st.Leading >= 0:
                return (LayerLayout.Tokens(st.Leading), $"tokens, from {st.Origin}");
            case Kind.FlatGrid:
                throw new CamEngineException(
                    $"layer '{layer.Output}' has shape {TensorShape.Format(s)}: a (C, h*w) flattened grid ({st.Origin}); pick the (C, h, w) layer before the flatten, or the tokens after the transpose");
        }
        if (s.Length == 3)
        {
            foreach (var c in _consumers.GetValueOrDefault(layer.Output) ?? [])
            {
                if (c.Op == Ops.Transpose && c.Ints("perm", []).SequenceEqual([0, 3, 1, 2]))
                    return (LayerLayout.Nhwc, $"channels last, read by the transpose to channels first '{c.Name}'");
                if (c.Op == Ops.LayerNorm && c.Int("axis", 3) == 3)
                    return (LayerLayout.Nhwc, $"channels last, read by the LayerNorm over the last axis '{c.Name}'");
                if (c.Op == Ops.MatMul && c.Inputs.Length == 1)
                    return (LayerLayout.Nhwc, $"channels last, read by the MatMul over the last axis '{c.Name}'");
            }
            return (LayerLayout.Nchw, "no layout evidence in the graph; read as (C, h, w)");
        }
        if (s.Length == 2)
        {
            int k = Guess(s[0]);
            if (k > MaxGuessedLeadingTokens)
                throw new CamEngineException(string.Create(CultureInfo.InvariantCulture,
                    $"layer '{layer.Output}' has {s[0]} tokens and the graph does not say how many lead the grid; no square grid is left after dropping {MaxGuessedLeadingTokens} or fewer: give --layout tokens:K"));
            return (LayerLayout.Tokens(k), string.Create(CultureInfo.InvariantCulture,
                $"tokens ({(st.Kind == Kind.Tokens ? st.Origin : "a rank-2 tensor")}); {k} leading token(s) leave a {SquareSide(s[0] - k)}x{SquareSide(s[0] - k)} grid"));
        }
        throw new CamEngineException(
            $"layer '{layer.Output}' has shape {TensorShape.Format(s)}; a CAM layer must be a (C, h, w) or (h, w, C) grid or a (T, C) token sequence");
    }
}
