namespace CamEngine.Methods;

/// <summary>
/// SmoothGrad (Smilkov et al., 2017, arXiv:1706.03825): the input gradient averaged over noisy copies,
/// <code>M = (1/n) sum_s dy/dx (x + e_s),   e_s ~ N(0, (sigma (max(x) - min(x)))^2)</code>
/// with the noise level relative to the image's range, as in the paper (defaults n = 25, sigma = 0.15).
/// The copies run <see cref="ExplainOptions.PerturbationBatch"/> at a time; the noise comes from
/// <see cref="ExplainOptions.Seed"/>. Raw: the signed (C, H, W) mean gradient.
/// </summary>
public sealed class SmoothGrad : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "smoothgrad";

    /// <inheritdoc/>
    public override string Summary => "SmoothGrad: input gradient averaged over Gaussian-noised copies of the image";

    /// <inheritdoc/>
    public override string Paper => "Smilkov et al., SmoothGrad, 2017 (arXiv:1706.03825)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Gradient;

    /// <summary>Noisy copies per image (n).</summary>
    public int Samples { get; init; } = 25;

    /// <summary>Noise standard deviation as a fraction of the image's value range.</summary>
    public float Sigma { get; init; } = 0.15f;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("samples", "25", "noisy copies per image (n), an integer >= 1"),
        new("sigma", "0.15", "noise standard deviation as a fraction of the image's value range, >= 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new SmoothGrad
    {
        Samples = values.Int("samples", Samples, 1), Sigma = values.Float("sigma", Sigma, 0),
    };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        if (Samples < 1)
            throw new CamEngineException($"smoothgrad needs at least one sample, got {Samples}");
        var x = Perturbation.Inputs(context);
        var shape = context.Model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2], n = context.Batch;
        var std = new float[n];
        for (int i = 0; i < n; i++)
        {
            var xi = x.AsSpan(i * size, size);
            std[i] = Sigma * (TensorMax(xi) - TensorMin(xi));
        }
        var rng = new Random(context.RandomSeed);
        var sums = new double[n * size];
        Perturbation.InputGradients(context, n * Samples, item => item / Samples, (item, input) =>
        {
            int i = item / Samples;
            var xi = x.AsSpan(i * size, size);
            for (int j = 0; j < size; j++)
                input[j] = std[i] == 0 ? xi[j] : xi[j] + (float)(std[i] * Perturbation.Gaussian(rng));
        }, (item, g) =>
        {
            int i = item / Samples;
            for (int j = 0; j < size; j++)
                sums[i * size + j] += g[j];
        });
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            var raw = new float[size];
            for (int j = 0; j < size; j++)
                raw[j] = (float)(sums[i * size + j] / Samples);
            result.Add(PixelMaps.Make(this, context, i, raw));
        }
        return result;
    }

    private static float TensorMax(ReadOnlySpan<float> v)
    {
        float m = float.NegativeInfinity;
        foreach (float f in v)
            m = Math.Max(m, f);
        return m;
    }

    private static float TensorMin(ReadOnlySpan<float> v)
    {
        float m = float.PositiveInfinity;
        foreach (float f in v)
            m = Math.Min(m, f);
        return m;
    }
}
