namespace CamEngine.Methods;

/// <summary>
/// SS-CAM, smoothed Score-CAM (Wang et al., 2020, arXiv:2006.14255), as TorchCAM implements it (the only
/// library that has it; masks in TorchCAM's convention whatever <see cref="ExplainOptions.Convention"/> says):
/// <code>w_k = softmax_k( (1/S) sum_s [ y(x * (M_k + d_s)) - y(x) ] ),   d_s ~ N(0, std^2) per mask pixel</code>
/// The noise is on the normalized mask at input resolution, not on the input. TorchCAM's defaults are 35
/// samples with std 2; here <see cref="Samples"/> = 4, std 2. The noise is drawn from
/// <see cref="ExplainOptions.Seed"/>, or replayed from <see cref="Noise"/>.
/// </summary>
public sealed class SsCam : ScoreCamBase
{
    /// <inheritdoc/>
    public override string Name => "sscam";

    /// <inheritdoc/>
    public override string Summary => "SS-CAM: Score-CAM averaged over Gaussian noise added to the masks";

    /// <inheritdoc/>
    public override string Paper => "Wang et al., SS-CAM: Smoothed Score-CAM, 2020 (arXiv:2006.14255)";

    /// <summary>Noisy samples per mask (S).</summary>
    public int Samples { get; init; } = 4;

    /// <summary>Standard deviation of the mask noise.</summary>
    public float NoiseStd { get; init; } = 2f;

    /// <summary>Optional noise to replay, laid out (S, N, C, H, W) as TorchCAM draws it; null draws from the seed.</summary>
    public float[]? Noise { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("samples", "4", "noisy samples per mask (S), an integer >= 1 (TorchCAM uses 35)"),
        new("std", "2", "standard deviation of the noise added to the normalized masks, >= 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new SsCam
    {
        Samples = values.Int("samples", Samples, 1), NoiseStd = values.Float("std", NoiseStd, 0), Noise = Noise,
    };

    internal override Convention MaskConventionFor(Convention requested) => Convention.TorchCam;

    private protected override float[][] ChannelWeights(ExplainContext context, float[][] masks, int channels)
    {
        if (Samples < 1)
            throw new CamEngineException($"sscam needs at least one sample, got {Samples}");
        var x = Perturbation.Inputs(context);
        var inputShape = context.Model.Graph.InputShape;
        int big = inputShape[1] * inputShape[2], size = inputShape[0] * big;
        int n = context.Batch, perSample = n * channels * big;
        var noise = Noise;
        if (noise != null && noise.Length != Samples * perSample)
            throw new CamEngineException($"sscam noise has {noise.Length} values; expected {Samples}x{n}x{channels}x{big}");
        // Drawn noise is made item by item as the items are filled, in item order, which is the order of the
        // (S, N, C, H, W) layout: the same values as drawing the whole array first, without holding S x N x C x H x W
        // floats.
        var rng = noise == null ? new Random(context.RandomSeed) : null;
        var drawn = noise == null ? new float[big] : null;
        var uniforms = noise == null ? new double[2 * big] : null;
        int next = 0;
        // item = (s * N + i) * C + k
        var scores = Perturbation.Scores(context, Samples * n * channels, item => item / channels % n, (item, input) =>
        {
            int k = item % channels, i = item / channels % n, s = item / (channels * n);
            ReadOnlySpan<float> itemNoise;
            if (noise != null)
            {
                itemNoise = noise.AsSpan(s * perSample + (i * channels + k) * big, big);
            }
            else
            {
                if (item != next)
                    throw new InvalidOperationException($"sscam: items filled out of order ({item}, expected {next})");
                next++;
                Perturbation.Gaussians(rng!, NoiseStd, drawn!, uniforms!);
                itemNoise = drawn;
            }
            Masked(x.AsSpan(i * size, size), masks[i].AsSpan(k * big, big), itemNoise, 1f, input);
        });
        var baseline = BaselineScores(context);
        var weights = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var mean = new double[channels];
            for (int k = 0; k < channels; k++)
            {
                float sum = 0;
                for (int s = 0; s < Samples; s++)
                    sum += scores[(s * n + i) * channels + k] - baseline[i];
                mean[k] = sum / Samples;
            }
            weights[i] = Softmax(mean);
        }
        return weights;
    }
}
