using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>
/// CAM (Zhou et al., CVPR 2016, arXiv:1512.04150): for a network ending in global average pooling and a linear
/// classifier, the class's classifier weights weight the channels of the pooled layer:
/// <code>L = sum_k W[c, k] A_k</code>
/// The classifier is found by walking the graph from the layer to a global average pool whose output (through
/// flatten) feeds a gemm; a model without such a head is refused. As in TorchCAM, the raw map has no ReLU and
/// the weights apply to any layer with as many channels as the classifier has inputs, though only at the
/// pool's input is it the paper's CAM (which then equals Grad-CAM up to a positive factor).
/// </summary>
public sealed class ClassActivationMap : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "cam";

    /// <inheritdoc/>
    public override string Summary => "CAM: channels weighted by the classifier's weights after global average pooling";

    /// <inheritdoc/>
    public override string Paper => "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016 (arXiv:1512.04150)";

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var node = context.Layers[layer];
        var gemm = FindClassifier(context.Model.Graph, node);
        int c = node.Shape[0], plane = node.Shape[1] * node.Shape[2], size = c * plane;
        var weight = context.Model.Backend.Download(context.Model.Parameter(gemm.Param("weight")!));
        int outputs = gemm.Shape[0];
        if (weight.Length != outputs * c)
            throw new CamEngineException(
                $"cam: the classifier '{gemm.Name}' takes {weight.Length / Math.Max(outputs, 1)} features, layer '{node.Output}' has {c} channels");
        bool transB = gemm.Int("transB", 0) != 0;
        float alpha = gemm.Float("alpha", 1f);
        var maps = new float[context.Batch][];
        var weights = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            int cls = context.Classes[i];
            var w = new float[c];
            for (int k = 0; k < c; k++)
                w[k] = alpha * (transB ? weight[cls * c + k] : weight[k * outputs + cls]);
            weights[i] = w;
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), w, plane);
        }
        return new LayerMaps(maps, weights);
    }

    /// <summary>The gemm after the global average pool that <paramref name="layer"/> reaches.</summary>
    internal static GraphNode FindClassifier(ModelGraph graph, GraphNode layer)
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
        string refuse = $"cam needs a global-average-pool + linear head after layer '{layer.Output}'";
        if (gap == null)
            throw new CamEngineException($"{refuse}: no global average pool follows it");
        string tensor = gap.Output;
        while (true)
        {
            var consumers = graph.Nodes.Where(n => n.Inputs.Contains(tensor)).ToList();
            if (consumers.Count != 1)
                throw new CamEngineException($"{refuse}: '{tensor}' feeds {consumers.Count} nodes, not one classifier");
            var next = consumers[0];
            if (next.Op == Ops.Flatten)
            {
                tensor = next.Output;
                continue;
            }
            if (next.Op != Ops.Gemm)
                throw new CamEngineException($"{refuse}: the pool feeds '{next.Name}' ({next.Op}), not a gemm");
            if (next.Output != graph.OutputName)
                throw new CamEngineException($"{refuse}: the gemm '{next.Name}' is not the model's output");
            return next;
        }
    }
}
