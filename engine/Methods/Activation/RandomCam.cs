namespace CamEngine.Methods;

/// <summary>
/// RandomCAM, pytorch-grad-cam's sanity baseline (<c>random_cam.py</c>): channel weights drawn uniformly from
/// [-1, 1], independent of the model's output,
/// <code>w_k ~ U(-1, 1);   L = ReLU(sum_k w_k A_k)</code>
/// A method whose metric scores do not beat this one's explains nothing. Weights are drawn from
/// <see cref="ExplainOptions.Seed"/> (one stream per row and layer), or replayed from <see cref="Weights"/>.
/// </summary>
public sealed class RandomCam : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "randomcam";

    /// <inheritdoc/>
    public override string Summary => "RandomCAM: channels weighted uniformly at random in [-1, 1] (sanity baseline)";

    /// <inheritdoc/>
    public override string Paper => "pytorch-grad-cam's RandomCAM baseline (Gildenblat et al., 2021); cf. Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018";

    /// <summary>Weights (C) to use for every row and layer instead of drawing them; null draws from the seed.</summary>
    public float[]? Weights { get; init; }

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        if (Weights != null && Weights.Length != c)
            throw new CamEngineException($"randomcam: {Weights.Length} replayed weights for a layer of {c} channels");
        var maps = new float[context.Batch][];
        var weights = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            var w = Weights?.ToArray() ?? new float[c];
            if (Weights == null)
            {
                var rng = context.NewRandom(unchecked(0x52414E44 + (layer * 65537) + i));
                for (int k = 0; k < c; k++)
                    w[k] = (float)(rng.NextDouble() * 2 - 1);
            }
            weights[i] = w;
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), w, plane);
        }
        return new LayerMaps(maps, weights);
    }
}
