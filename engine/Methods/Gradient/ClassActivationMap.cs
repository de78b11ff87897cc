using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Backends;

namespace CamEngine.Methods;

/// <summary>
/// CAM (Zhou et al., CVPR 2016, arXiv:1512.04150), for two kinds of head after the layer A (C, h, w):
/// <list type="bullet">
/// <item>A global average pool and a linear classifier (the paper's case): the class's classifier weights
/// weight the channels, <code>L = sum_k W[c, k] A_k</code> The classifier is found by walking the graph from
/// the layer to a global average pool whose output (through flatten) feeds the gemm that is the model's
/// output. As in TorchCAM, the raw map has no ReLU and the weights apply to any layer with as many channels as
/// the classifier has inputs, though only at the pool's input is it the paper's CAM (which then equals
/// Grad-CAM up to a positive factor).</item>
/// <item>Any other head in which the score is an affine function of A, <c>y = sum_{k,i,j} W_eff[k,i,j]
/// A[k,i,j] + b</c> (only convolution, gemm, pooling by averaging, flatten, reshape, batch norm, pad, concat,
/// add/sub, and mul/div by something that does not depend on A lie between the layer and the output): the
/// map is each location's exact contribution to the score, <code>L[i,j] = sum_k W_eff[k,i,j] A[k,i,j]</code>
/// so that <c>sum_ij L + b = y</c>. W_eff = dy/dA is constant in an affine head; one reverse pass gives it.
/// On a GAP + linear head this contribution is the classic map divided by h*w; the classic scaling is kept
/// there (the raw maps differ by that factor, the normalized maps not at all). A non-affine node (ReLU,
/// max-pool, sigmoid, softmax, a product of two A-dependent tensors...) is refused by name.</item>
/// </list>
/// CAM explains a score linear in the model's output: the class logit (under a softmax target, the logit of its
/// class, as the classifier weights are), a mask sum or a dot-product similarity; cosine similarity is refused.
/// </summary>
public sealed class ClassActivationMap : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "cam";

    /// <inheritdoc/>
    public override string Summary =>
        "CAM: classifier weights after global average pooling, or each location's exact contribution to an affine head";

    private protected override string? TargetRefusal(Target target) =>
        target.IsCosine
            ? "CAM explains a score linear in the model's output (a logit, a mask sum, a dot-product similarity); "
              + "cosine similarity is not (use similar: for the dot product)"
            : null;

    // Refused before any work (and left out of --method all with a note) when no classifier reads the layer's
    // pooled channels and the head after it is not affine: a vision transformer's token layers, for example.
    private protected override string? ModelRefusal(ModelGraph graph, IReadOnlyList<GraphNode> layers)
    {
        foreach (var node in layers)
        {
            if (TryFindClassifier(graph, node, out string why) == null && FirstNonAffine(graph, node) is { } blocker)
                return $"at layer '{node.Output}' it needs a global-average-pool + linear head or a head affine in the layer ({why}; node '{blocker.Name}' ({blocker.Op}) is not affine)";
        }
        return null;
    }

    /// <inheritdoc/>
    public override string Paper => "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016 (arXiv:1512.04150)";

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var node = context.Layers[layer];
        var graph = context.Model.Graph;
        int c = context.GridShape(layer)[0];
        var gemm = TryFindClassifier(graph, node, out string why);
        // Rows without a class (a dot-product similarity) have no classifier row to read: their map is the
        // contribution of each location, which the GAP + linear head, being affine, also gives.
        bool everyRowHasAClass = context.Classes.All(cls => cls >= 0);
        if (gemm != null && everyRowHasAClass && ClassifierInputs(context, gemm) == c)
            return Classic(context, layer, gemm, activations);
        if (FirstNonAffine(graph, node) is { } blocker)
        {
            string reason = gemm != null
                ? $"its classifier '{gemm.Name}' takes {ClassifierInputs(context, gemm)} features, the layer has {c} channels"
                : why;
            throw new CamEngineException(
                $"cam needs a global-average-pool + linear head or a head affine in the layer after layer '{node.Output}': " +
                $"{reason}, and node '{blocker.Name}' ({blocker.Op}) is not affine");
        }
        return Contributions(context, layer, activations);
    }

    private static int ClassifierInputs(ExplainContext context, GraphNode gemm) =>
        context.Model.Parameter(gemm.Param("weight")!).Length / Math.Max(gemm.Shape[0], 1);

    // L = sum_k W[c, k] A_k with the classifier's weights of each row's class.
    private static LayerMaps Classic(ExplainContext context, int layer, GraphNode gemm, float[] activations)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var weight = context.Model.Backend.Download(context.Model.Parameter(gemm.Param("weight")!));
        int outputs = gemm.Shape[0];
        bool transB = gemm.Int("transB", 0) != 0;
        float alpha = gemm.Float("alpha", 1f);
        var maps = new float[context.Batch][];
        var weights = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            int cls = context.Classes[i];
            if (cls < 0 || cls >= outputs)
                throw new CamEngineException($"cam on a classifier head explains a class; row {i}'s target has none");
            var w = new float[c];
            for (int k = 0; k < c; k++)
                w[k] = alpha * (transB ? weight[cls * c + k] : weight[k * outputs + cls]);
            weights[i] = w;
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), w, plane);
        }
        return new LayerMaps(maps, weights);
    }

    // L[j] = sum_k G[k, j] A[k, j] with G = dy/dA of the affine head (one reverse pass for the batch).
    private static LayerMaps Contributions(ExplainContext context, int layer, float[] activations)
    {
        var node = context.Layers[layer];
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var model = context.Model;
        using var seed = LinearSeed(context);
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = [node.Output] });
        var g = context.LayerGradients(grads, layer);
        var maps = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            var map = new float[plane];
            for (int k = 0; k < c; k++)
            {
                for (int j = 0; j < plane; j++)
                    map[j] += g[i * size + k * plane + j] * activations[i * size + k * plane + j];
            }
            maps[i] = map;
        }
        return new LayerMaps(maps);
    }

    // d score / d output per row for a score linear in the output: the target's own gradient when it is linear,
    // the class logit's under a softmax target.
    private static Tensor LinearSeed(ExplainContext context)
    {
        if (context.Targets is not { } targets)
            return context.Seed();
        var output = context.Forward.Output;
        var values = context.Backend.Download(output);
        int n = context.Batch, k = output.Length / n;
        var seed = new float[output.Length];
        for (int i = 0; i < n; i++)
        {
            var score = targets[i].Score;
            if (score.IsLinear)
                score.Gradient(values.AsSpan(i * k, k), seed.AsSpan(i * k, k));
            else if (targets[i].Class >= 0)
                seed[i * k + targets[i].Class] = 1f;
            else
                throw new CamEngineException(
                    $"cam explains a score linear in the model's output (a logit, a mask sum, a dot-product similarity); row {i}'s target is not");
        }
        return context.Backend.Upload(seed, output.Shape);
    }

    /// <summary>The gemm after the global average pool that <paramref name="layer"/> reaches, or null with the
    /// reason in <paramref name="why"/>.</summary>
    internal static GraphNode? TryFindClassifier(ModelGraph graph, GraphNode layer, out string why)
    {
        var reach = new HashSet<string>(StringComparer.Ordinal) { layer.Output };
        GraphNode? gap = null;
        foreach (var n in graph.Nodes)
        {
            if (!n.Inputs.Any(reach.Contains))
                continue;
            if (n.Op == Ops.GlobalAvgPool)
            {
                gap = n;
                break;
            }
            reach.Add(n.Output);
        }
        if (gap == null)
        {
            why = "no global average pool follows it";
            return null;
        }
        string tensor = gap.Output;
        while (true)
        {
            var consumers = graph.Nodes.Where(n => n.Inputs.Contains(tensor)).ToList();
            if (consumers.Count != 1)
            {
                why = $"'{tensor}' feeds {consumers.Count} nodes, not one classifier";
                return null;
            }
            var next = consumers[0];
            if (next.Op == Ops.Flatten)
            {
                tensor = next.Output;
                continue;
            }
            if (next.Op != Ops.Gemm)
            {
                why = $"the pool feeds '{next.Name}' ({next.Op}), not a gemm";
                return null;
            }
            if (next.Output != graph.OutputName)
            {
                why = $"the gemm '{next.Name}' is not the model's output";
                return null;
            }
            why = "";
            return next;
        }
    }

    /// <summary>
    /// The first node, in graph order, on a path from <paramref name="layer"/> to the model's output that is not
    /// affine in the layer's activations; null when the output is an affine function of them. Tensors that do not
    /// depend on the layer (a skip connection from before it) are constants here: they only move the offset b.
    /// </summary>
    internal static GraphNode? FirstNonAffine(ModelGraph graph, GraphNode layer)
    {
        var depends = new HashSet<string>(StringComparer.Ordinal) { layer.Output };
        var downstream = new List<GraphNode>();
        foreach (var n in graph.Nodes)
        {
            if (n.Inputs.Any(depends.Contains))
            {
                depends.Add(n.Output);
                downstream.Add(n);
            }
        }
        if (!depends.Contains(graph.OutputName))
            throw new CamEngineException($"cam: the model's output does not depend on layer '{layer.Output}'");
        var feedsOutput = new HashSet<string>(StringComparer.Ordinal) { graph.OutputName };
        for (int i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var n = graph.Nodes[i];
            if (feedsOutput.Contains(n.Output))
                feedsOutput.UnionWith(n.Inputs);
        }
        return downstream.FirstOrDefault(n => feedsOutput.Contains(n.Output) && !IsAffine(n, depends));
    }

    // Affine in the tensors of `depends`, everything else held fixed: the op's rule decides (engine/Graph/Ops).
    private static bool IsAffine(GraphNode n, HashSet<string> depends) =>
        Graph.Ops.OpRegistry.Find(n.Op)?.IsAffine(n, depends.Contains) ?? false;
}
