using CamEngine.Backends;

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

    private protected override float[][] ChannelWeights(ExplainContext context, MaskSet masks, int channels)
    {
        if (Samples < 1)
            throw new CamEngineException($"sscam needs at least one sample, got {Samples}");
        int big = masks.Big;
        int n = context.Batch, perSample = n * channels * big;
        var noise = Noise;
        if (noise != null && noise.Length != Samples * perSample)
            throw new CamEngineException($"sscam noise has {noise.Length} values; expected {Samples}x{n}x{channels}x{big}");
        // One sample at a time: its noise (N x C x H x W) is drawn in the (S, N, C, H, W) order of drawing the whole
        // array first (same values) and goes to the device once (on the CPU backend it is drawn into the device tensor
        // in place), and its masked batches are built on the device; nothing holds all S samples' noise.
        // item = (s * N + i) * C + k.
        var inputShape = context.Model.Graph.InputShape;
        var backend = context.Model.Backend;
        var rng = noise == null ? new Random(context.RandomSeed) : null;
        float[]? staging = null;
        var scores = new float[Samples * n * channels];
        for (int s = 0; s < Samples; s++)
        {
            using var deviceNoise = backend.Allocate(n * channels, inputShape[1], inputShape[2]);
            var inPlace = backend.HostMemory(deviceNoise);
            var sampleNoise = inPlace ?? (staging ??= new float[perSample]);
            var span = sampleNoise.Span;
            if (noise != null)
            {
                noise.AsSpan(s * perSample, perSample).CopyTo(span);
            }
            else
            {
                Perturbation.Gaussians(rng!, NoiseStd, sampleNoise);
            }
            if (inPlace == null)
                backend.CopyFromHost(deviceNoise, staging);
            var part = MaskedScores(context, masks, n * channels,
                local => new MaskedRow(local / channels, local, local, 1f), deviceNoise,
                row => sampleNoise.Span.Slice(row * big, big));
            part.CopyTo(scores, s * n * channels);
        }
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
