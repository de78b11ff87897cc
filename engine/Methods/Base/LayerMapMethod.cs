using CamEngine.Graph;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the layer methods that need more than one image's A and G at a time (perturbation loops batched
/// across images, eigen-decompositions, the classifier's weights): for each layer it receives the activations
/// of the whole batch (and their gradients when <see cref="NeedsGradients"/>), returns one map (h*w) per image
/// before ReLU, and leaves ReLU, normalization, resize and layer fusion to the shared post-processing.
/// </summary>
public abstract class LayerMapMethod : CamMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected LayerMapMethod()
    {
    }

    /// <inheritdoc/>
    public override bool UsesLayers => true;

    /// <inheritdoc/>
    internal override bool ReadsOnlyLayerSuffix => true;

    /// <summary>True when the method needs dy/dA (one reverse pass for the batch).</summary>
    private protected virtual bool NeedsGradients => false;

    /// <summary>Maps (and channel weights, if any) of every image at layer <paramref name="layer"/> of the context.
    /// <paramref name="activations"/> and <paramref name="gradients"/> are (N, C, h, w) row-major, the layer read
    /// through its layout (<see cref="ExplainContext.GridShape"/>; <see cref="ExplainContext.ForwardFromGrid"/> writes
    /// back through it).</summary>
    private protected abstract LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients);

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var names = context.Layers.Select(l => l.Output).ToList();
        var perLayer = new List<LayerMaps>();
        Gradients? grads = null;
        try
        {
            if (NeedsGradients)
            {
                using var seed = context.Seed();
                grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = names });
            }
            for (int l = 0; l < names.Count; l++)
            {
                var a = context.Activations(l); // (N, C, h, w) through the layer's layout
                var g = grads != null ? context.LayerGradients(grads, l) : null;
                perLayer.Add(Compute(context, l, a, g));
            }
        }
        finally
        {
            grads?.Dispose();
        }
        var input = model.Graph.InputShape;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var raws = new List<HostTensor>();
            for (int l = 0; l < names.Count; l++)
            {
                var shape = context.GridShape(l);
                raws.Add(new HostTensor([shape[1], shape[2]], perLayer[l].Maps[i]));
            }
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = names,
                Raw = raws[0],
                Map = CamPostprocess.Finish(raws, input[1], input[2], context.Convention, context.Fusion, $"{Name} map of image {i}"),
                Weights = perLayer[0].Weights?[i],
            });
        }
        return result;
    }

    /// <summary><c>sum_k w_k A_k</c> over the (C, plane) activations of one image.</summary>
    private protected static float[] WeightedSum(ReadOnlySpan<float> a, ReadOnlySpan<float> w, int plane)
    {
        var map = new float[plane];
        for (int k = 0; k < w.Length; k++)
        {
            float wk = w[k];
            var ak = a.Slice(k * plane, plane);
            for (int j = 0; j < plane; j++)
                map[j] += wk * ak[j];
        }
        return map;
    }
}

/// <summary>One layer's result for a batch: a map (h*w) per image and optionally channel weights (C) per image.</summary>
internal sealed record LayerMaps(float[][] Maps, float[][]? Weights = null);
