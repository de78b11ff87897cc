using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>One encoder block of a vision transformer, by the tensor names of the engine graph.</summary>
/// <param name="Attention">The post-softmax attention probabilities, (heads, T, T) per image.</param>
/// <param name="Input">The residual stream entering the block (T, C): the input of its first residual add that
/// does not depend on the attention.</param>
/// <param name="AttentionInput">The normalized tokens the attention's Q/K/V projection reads (ln_1's output, in
/// torchvision's ViT; the block input itself in a block without a pre-norm), (T, C).</param>
/// <param name="Output">The residual stream leaving the block (T, C): its last residual add.</param>
internal sealed record VitBlock(string Attention, string Input, string AttentionInput, string Output);

/// <summary>
/// The encoder blocks of a vision transformer with global self-attention over one token sequence (torchvision's
/// VisionTransformer, timm's ViT/DeiT), found from the graph alone, whatever the opset's form of LayerNorm:
/// <list type="bullet">
/// <item>an attention is a softmax of shape (heads, T, T) per image whose output a batched matmul reads;</item>
/// <item>the residual stream is the adds of two computed (T, C) tensors;</item>
/// <item>block l's input is the operand of the first residual add after its attention that does not depend on
/// the attention, its attention input is what the first by-constant matmul (the Q/K/V projection) on the way
/// from that input to the softmax reads, and its output is the last residual add before the next attention
/// (the last residual add of the graph for the last block).</item>
/// </list>
/// Windowed attention (Swin) has no such (T, C) stream and is refused, as is any graph where the pattern breaks.
/// </summary>
internal sealed class VitStructure
{
    private VitStructure(IReadOnlyList<VitBlock> blocks, int tokens, int channels, int heads)
    {
        Blocks = blocks;
        Tokens = tokens;
        Channels = channels;
        Heads = heads;
    }

    /// <summary>The blocks, input side first.</summary>
    public IReadOnlyList<VitBlock> Blocks { get; }

    /// <summary>Tokens T per image (prefix tokens included).</summary>
    public int Tokens { get; }

    /// <summary>Embedding width C.</summary>
    public int Channels { get; }

    /// <summary>Attention heads per block.</summary>
    public int Heads { get; }

    /// <summary>The square patch grid side left after <paramref name="prefix"/> leading tokens (class, distillation
    /// or register tokens).</summary>
    /// <exception cref="CamEngineException">T - prefix is not a positive square.</exception>
    public int GridSide(int prefix, string method)
    {
        int patches = Tokens - prefix;
        int side = (int)Math.Round(Math.Sqrt(Math.Max(0, patches)));
        if (patches < 1 || side * side != patches)
            throw new CamEngineException(
                $"{method}: {Tokens} tokens less prefix={prefix} leaves {patches}, not a square patch grid; set --param {method}.prefix=K (the number of leading class/register tokens)");
        return side;
    }

    /// <summary>The structure of <paramref name="graph"/>, or null with <paramref name="why"/> saying what is missing.</summary>
    public static VitStructure? Find(ModelGraph graph, out string why)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var nodes = graph.Nodes;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
            index[nodes[i].Output] = i;
        var readers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
        {
            foreach (var name in nodes[i].Inputs)
            {
                if (!readers.TryGetValue(name, out var list))
                    readers[name] = list = [];
                list.Add(i);
            }
        }
        int[] ShapeOf(string tensor) => index.TryGetValue(tensor, out int at) ? nodes[at].Shape : graph.InputShape;

        var softmax = new List<int>();
        bool windowed = false;
        for (int i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (n.Op != Ops.Softmax || n.Shape.Length < 3 || n.Shape[^1] != n.Shape[^2] || n.Shape[^1] < 2
                || !readers.TryGetValue(n.Output, out var r) || !r.Any(j => nodes[j].Op == Ops.BatchMatMul))
                continue;
            if (n.Shape.Length == 3)
                softmax.Add(i);
            else
                windowed = true; // (windows, heads, T, T): attention within windows
        }
        if (windowed)
        {
            why = "its self-attention runs within windows (a softmax of shape (windows, heads, T, T), as in Swin); these methods need one global token sequence (ViT)";
            return null;
        }
        if (softmax.Count == 0)
        {
            why = "the model has no self-attention (a softmax of shape (heads, T, T) read by a batched matmul): it is not a vision transformer";
            return null;
        }
        int tokens = nodes[softmax[0]].Shape[1], heads = nodes[softmax[0]].Shape[0];
        if (softmax.Any(i => nodes[i].Shape[1] != tokens || nodes[i].Shape[0] != heads))
        {
            why = "its attentions differ in token or head count (windowed or hierarchical attention, as in Swin); these methods need one global token sequence (ViT)";
            return null;
        }
        var residual = new List<int>();
        for (int i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (n.Op == Ops.Add && n.Inputs.Length == 2 && n.Shape is [var t, _] && t == tokens
                && n.Inputs.All(x => ShapeOf(x).SequenceEqual(n.Shape)))
                residual.Add(i);
        }
        if (residual.Count == 0)
        {
            why = $"no residual stream of {tokens} tokens (adds of two computed (T, C) tensors) carries its attention: windowed attention (Swin) is not supported, only one global token sequence (ViT)";
            return null;
        }
        int channels = nodes[residual[0]].Shape[1];

        var blocks = new List<VitBlock>();
        for (int b = 0; b < softmax.Count; b++)
        {
            int s = softmax[b], next = b + 1 < softmax.Count ? softmax[b + 1] : nodes.Count;
            int first = residual.FirstOrDefault(i => i > s, -1);
            int last = residual.LastOrDefault(i => i > s && i < next, -1);
            string block = $"attention {b + 1} ('{nodes[s].Output}')";
            if (first < 0 || first >= next || last < 0 || nodes[residual[0]].Shape[1] != nodes[first].Shape[1])
            {
                why = $"{block} is not followed by a residual add of its block";
                return null;
            }
            var fromAttention = Descendants(nodes, s, first, nodes[s].Output);
            var operands = nodes[first].Inputs.Where(x => !fromAttention.Contains(x)).ToList();
            if (operands.Count != 1)
            {
                why = $"{block}: its residual add '{nodes[first].Output}' does not have exactly one operand apart from the attention branch";
                return null;
            }
            string input = operands[0];
            int from = index.TryGetValue(input, out int at) ? at : -1;
            var fromInput = Descendants(nodes, from, s, input);
            string? attentionInput = null;
            for (int i = from + 1; i < s && attentionInput == null; i++)
            {
                var n = nodes[i];
                if (n.Op == Ops.MatMul && fromInput.Contains(n.Inputs[0]) && ShapeOf(n.Inputs[0]).SequenceEqual(nodes[first].Shape))
                    attentionInput = n.Inputs[0];
            }
            if (attentionInput == null)
            {
                why = $"{block}: no Q/K/V projection (a matmul by a constant over the (T, C) tokens) reads the block input '{input}'";
                return null;
            }
            blocks.Add(new VitBlock(nodes[s].Output, input, attentionInput, nodes[last].Output));
        }
        why = "";
        return new VitStructure(blocks, tokens, channels, heads);
    }

    /// <summary>The structure of <paramref name="graph"/>.</summary>
    /// <exception cref="MethodNotApplicableException">The graph is not a vision transformer these methods read.</exception>
    public static VitStructure Of(ModelGraph graph, string method) =>
        Find(graph, out string why) ?? throw new MethodNotApplicableException($"{method} cannot explain this model: {why}");

    // Tensors computed from `root` by nodes (from, to]: root included.
    private static HashSet<string> Descendants(IReadOnlyList<GraphNode> nodes, int from, int to, string root)
    {
        var set = new HashSet<string>(StringComparer.Ordinal) { root };
        for (int i = from + 1; i <= to && i < nodes.Count; i++)
        {
            if (nodes[i].Inputs.Any(set.Contains))
                set.Add(nodes[i].Output);
        }
        return set;
    }
}
