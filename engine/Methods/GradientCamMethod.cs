using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the methods that combine a layer's activations A (C, h, w) with the gradient G = dy/dA of the
/// target score: one reverse pass for the whole batch, then per image and layer a map at layer resolution
/// (<see cref="LayerMap"/>, by default the channel-weighted sum <c>sum_k w_k A_k</c> with
/// <see cref="ChannelWeights"/>), then <see cref="CamPostprocess"/>.
/// </summary>
public abstract class GradientCamMethod : CamMethod
{
    /// <inheritdoc/>
    public override bool UsesLayers => true;

    /// <summary>Channel weights w (C) from A and G of one image, both (C, h*w) row-major.</summary>
    protected abstract float[] ChannelWeights(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane);

    /// <summary>The map at layer resolution (h*w), before ReLU. Default: <c>sum_k w_k A_k</c>.</summary>
    protected virtual float[] LayerMap(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane)
    {
        var w = ChannelWeights(a, g, channels, plane);
        var map = new float[plane];
        for (int k = 0; k < channels; k++)
        {
            float wk = w[k];
            var ak = a.Slice(k * plane, plane);
            for (int j = 0; j < plane; j++)
                map[j] += wk * ak[j];
        }
        return map;
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var layerNames = context.Layers.Select(l => l.Output).ToList();
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = layerNames });
        var activations = layerNames.Select(n => model.Backend.Download(context.Forward[n])).ToList();
        var gradients = layerNames.Select(n => model.Backend.Download(grads.Layers[n])).ToList();
        var input = model.Graph.InputShape;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var raws = new List<HostTensor>();
            for (int l = 0; l < layerNames.Count; l++)
            {
                var shape = context.Layers[l].Shape;
                if (shape.Length != 3)
                    throw new CamEngineException($"layer '{layerNames[l]}' has shape {TensorShape.Format(shape)}; a CAM layer must be (C, h, w)");
                int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
                var map = LayerMap(
                    activations[l].AsSpan(i * size, size), gradients[l].AsSpan(i * size, size), c, plane);
                raws.Add(new HostTensor([shape[1], shape[2]], map));
            }
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = layerNames,
                Raw = raws[0],
                Map = CamPostprocess.FuseLayers(raws, input[1], input[2], $"{Name} map of image {i}"),
            });
        }
        return result;
    }
}

/// <summary>
/// Turning layer-resolution maps into the final map, as pytorch-grad-cam does (and as the fixtures record):
/// per layer <c>relu</c>, min-max (<c>(c - min) / (1e-7 + max(c - min))</c>), bilinear resize with half-pixel
/// centres; then the mean over layers, <c>relu</c> and min-max again. With one layer this is
/// relu, normalize, resize, relu, normalize.
/// </summary>
public static class CamPostprocess
{
    /// <summary>Fuses one or more (h, w) maps into an (H, W) map in [0, 1].</summary>
    public static HostTensor FuseLayers(IReadOnlyList<HostTensor> raws, int height, int width, string what)
    {
        ArgumentNullException.ThrowIfNull(raws);
        var sum = new float[height * width];
        foreach (var raw in raws)
        {
            MapOps.EnsureFinite(raw.Data, what);
            var m = MapOps.Relu(raw);
            MapOps.MinMaxNormalize(m.Data);
            var up = Resize.Bilinear(m, height, width, alignCorners: false);
            for (int j = 0; j < sum.Length; j++)
                sum[j] += up.Data[j];
        }
        for (int j = 0; j < sum.Length; j++)
            sum[j] /= raws.Count;
        MapOps.Relu(sum);
        MapOps.MinMaxNormalize(sum);
        return new HostTensor([height, width], sum);
    }
}
