namespace CamEngine.Methods;

/// <summary>
/// FEM, the Feature Explanation Method (Fuad et al., IPTA 2020), as pytorch-grad-cam's <c>fem.py</c> computes it:
/// each channel's weight is the fraction of its positions above a K-sigma threshold of that channel,
/// <code>t_k = mean_ij A_k + K std_ij A_k;   w_k = (1 / hw) #{ij : A_k[i,j] > t_k};   L = ReLU(sum_k w_k A_k)</code>
/// with the population standard deviation and a strict comparison, as there. No gradients; K = 2 by default.
/// Xplique's FEM differs (threshold with <c>&gt;=</c>, masks weighted by channel means); this is pytorch-grad-cam's.
/// </summary>
public sealed class Fem : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "fem";

    /// <inheritdoc/>
    public override string Summary => "FEM: channels weighted by the share of their positions above mean + K std";

    /// <inheritdoc/>
    public override string Paper => "Fuad et al., Features Understanding in 3D CNNs for Actions Recognition in Video, IPTA 2020";

    /// <summary>The K of the K-sigma threshold.</summary>
    public double K { get; init; } = 2;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("k", "2", "threshold in standard deviations above each channel's mean, a number >= 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new Fem { K = values.Double("k", K, 0) };

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var maps = new float[context.Batch][];
        var weights = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            var a = activations.AsSpan(i * size, size);
            var w = new float[c];
            for (int k = 0; k < c; k++)
            {
                var ak = a.Slice(k * plane, plane);
                double mean = 0, variance = 0;
                foreach (float v in ak)
                    mean += v;
                mean /= plane;
                foreach (float v in ak)
                    variance += (v - mean) * (v - mean);
                double threshold = mean + K * Math.Sqrt(variance / plane);
                int above = 0;
                foreach (float v in ak)
                {
                    if (v > threshold)
                        above++;
                }
                w[k] = (float)above / plane;
            }
            weights[i] = w;
            maps[i] = WeightedSum(a, w, plane);
        }
        return new LayerMaps(maps, weights);
    }
}
