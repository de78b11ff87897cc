using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the methods that combine a layer's activations A (C, h, w) with the gradient G = dy/dA of the
/// target score: one reverse pass for the whole batch, then per row and layer the per-channel weighted
/// activations (<see cref="WeightedActivations(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, Convention)"/>,
/// by default <c>w_k A_k</c> with <see cref="ChannelWeights(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, Convention)"/>),
/// summed over channels into the map at layer resolution (or, with eigen_smooth, projected on their first
/// principal component), then the shared post-processing under the convention.
/// </summary>
public abstract class GradientCamMethod : CamMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected GradientCamMethod()
    {
    }

    /// <inheritdoc/>
    public override bool UsesLayers => true;

    /// <inheritdoc/>
    internal override bool ReadsOnlyLayerSuffix => true;

    /// <summary>Channel weights w (C) from A and G of one image, both (C, h*w) row-major; null for methods whose
    /// map is element-wise (they override <see cref="WeightedActivations(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, Convention)"/>).</summary>
    private protected virtual float[]? ChannelWeights(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane) => null;

    /// <summary>Channel weights under a convention; by default the convention-free
    /// <see cref="ChannelWeights(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int)"/>.</summary>
    private protected virtual float[]? ChannelWeights(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention) =>
        ChannelWeights(a, g, channels, plane);

    /// <summary>
    /// The per-channel contributions (C, h*w) whose channel sum is the map: by default <c>w_k A_k[j]</c>.
    /// Element-wise methods (HiResCAM, LayerCAM, ...) override this.
    /// </summary>
    private protected virtual float[] WeightedActivations(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        var w = ChannelWeights(a, g, channels, plane, convention)
                ?? throw new InvalidOperationException($"{Name} defines neither channel weights nor weighted activations");
        var r = new float[channels * plane];
        for (int k = 0; k < channels; k++)
        {
            float wk = w[k];
            for (int j = 0; j < plane; j++)
                r[k * plane + j] = wk * a[k * plane + j];
        }
        return r;
    }

    /// <summary>A map at layer resolution (h*w), before ReLU, for methods that are neither channel-weighted nor
    /// element-wise; null (the default) means the channel sum of the weighted activations. Not used with eigen_smooth.</summary>
    private protected virtual float[]? LayerMap(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane) => null;

    /// <summary>Under the TorchCAM and paper conventions each normalized layer map is scaled by this before a
    /// multi-layer fusion (LayerCAM: tanh(2c)); null: no scaling.</summary>
    private protected virtual Func<float, float>? LayerScale => null;

    /// <summary>The channel weights this method computes for one image (tests compare them with the references).</summary>
    internal float[]? WeightsFor(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention) =>
        ChannelWeights(a, g, channels, plane, convention);

    /// <summary>The raw map (h*w) this method computes for one image from A and G under the context's settings.</summary>
    internal float[] RawMap(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention, bool eigenSmooth)
    {
        if (!eigenSmooth && LayerMap(a, g, channels, plane) is { } map)
            return map;
        var contributions = WeightedActivations(a, g, channels, plane, convention);
        return eigenSmooth ? PrincipalComponent.Project(contributions, channels, plane) : ChannelSum(contributions, channels, plane);
    }

    /// <summary>Sum over channels of (C, plane) values.</summary>
    private protected static float[] ChannelSum(ReadOnlySpan<float> values, int channels, int plane)
    {
        var map = new float[plane];
        for (int k = 0; k < channels; k++)
        {
            var v = values.Slice(k * plane, plane);
            for (int j = 0; j < plane; j++)
                map[j] += v[j];
        }
        return map;
    }

    /// <summary>How the map is computed on the device under <paramref name="convention"/>
    /// (<see cref="Backends.Backend.CamChannelWeights"/> then <see cref="Backends.Backend.WeightedChannelSum"/>, or
    /// <see cref="Backends.Backend.ProductChannelSum"/>), with the same arithmetic as the host methods above; null
    /// (the default): on the host from downloaded activations and gradients.</summary>
    private protected virtual DeviceMapRule? DeviceMap(Convention convention) => null;

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var layerNames = context.Layers.Select(l => l.Output).ToList();
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = layerNames });
        if (!context.EigenSmooth && DeviceMap(context.Convention) is { } rule
            && Enumerable.Range(0, context.Layers.Count).All(l => context.Grid(l).IsIdentity && context.Layers[l].Shape.Length == 3))
        {
            // Weights and the channel sum on the device: only the (h, w) map of each image comes back.
            var maps = layerNames.Select(n => DeviceMaps(model.Backend, context.Forward[n], grads.Layers[n], rule)).ToList();
            return Build(context, (i, l, c, plane) => maps[l].AsSpan(i * plane, plane).ToArray());
        }
        var activations = layerNames.Select((_, l) => context.Activations(l)).ToList(); // (N, C, h, w) through the layout
        var gradients = layerNames.Select((_, l) => context.LayerGradients(grads, l)).ToList();
        return Build(context, (i, l, c, plane) =>
        {
            int size = c * plane;
            return RawMap(activations[l].AsSpan(i * size, size), gradients[l].AsSpan(i * size, size), c, plane,
                context.Convention, context.EigenSmooth);
        });
    }

    private static float[] DeviceMaps(Backends.Backend backend, Backends.Tensor a, Backends.Tensor g, DeviceMapRule rule)
    {
        int n = a.Shape[0], c = a.Shape[1], h = a.Shape[2], w = a.Shape[3];
        using var map = backend.Allocate(n, h, w);
        if (rule.Weights is { } weightRule)
        {
            using var weights = backend.Allocate(n, c);
            backend.CamChannelWeights(a, g, weights, weightRule, rule.Epsilon);
            backend.WeightedChannelSum(a, weights, map);
        }
        else
        {
            backend.ProductChannelSum(a, g, map, rule.ReluGradient);
        }
        return backend.Download(map);
    }

    /// <summary>Explanations of every row from a function (row, layer, channels, plane) -> raw map (h*w).</summary>
    private protected IReadOnlyList<Explanation> Build(ExplainContext context, Func<int, int, int, int, float[]> rawMap)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(rawMap);
        var layerNames = context.Layers.Select(l => l.Output).ToList();
        var input = context.Model.Graph.InputShape;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var raws = new List<HostTensor>();
            for (int l = 0; l < layerNames.Count; l++)
            {
                var shape = context.GridShape(l);
                raws.Add(new HostTensor([shape[1], shape[2]], rawMap(i, l, shape[0], shape[1] * shape[2])));
            }
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = layerNames,
                Raw = raws[0],
                Map = CamPostprocess.Finish(raws, input[1], input[2], context.Convention, context.Fusion,
                    $"{Name} map of image {i}", LayerScale),
            });
        }
        return result;
    }
}

/// <summary>A gradient CAM's map on the device: channel weights under <see cref="Weights"/> (with
/// <see cref="Epsilon"/>) then the weighted channel sum, or, without weights, the element-wise channel sum of
/// <c>g * a</c> (<c>max(g, 0) * a</c> with <see cref="ReluGradient"/>).</summary>
internal sealed record DeviceMapRule(Kernels.CamWeightRule? Weights, double Epsilon = 0, bool ReluGradient = false);
