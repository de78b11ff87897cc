using CamEngine.Backends;

namespace CamEngine.Methods;

/// <summary>
/// IS-CAM, integrated Score-CAM (Naidu et al., 2020, arXiv:2010.03023), as TorchCAM implements it (masks in
/// TorchCAM's convention whatever <see cref="ExplainOptions.Convention"/> says):
/// <code>a_i = sum_{j=1..i} j/S  (0.1, 0.3, 0.6, ... for S = 10);   w_k = softmax_k( (1/S) sum_i [ y(a_i * (x * M_k)) - y(x) ] )</code>
/// The cumulative coefficients follow TorchCAM (the paper's formula differs, frgfm/torch-cam#154).
/// </summary>
public sealed class IsCam : ScoreCamBase
{
    /// <inheritdoc/>
    public override string Name => "iscam";

    /// <inheritdoc/>
    public override string Summary => "IS-CAM: Score-CAM integrated over scaled masked inputs";

    /// <inheritdoc/>
    public override string Paper => "Naidu et al., IS-CAM: Integrated Score-CAM, 2020 (arXiv:2010.03023)";

    /// <summary>Integration steps (S), 10 as in TorchCAM.</summary>
    public int Steps { get; init; } = 10;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
        [new("steps", "10", "integration steps (S): each mask is scaled by the running sums of (i+1)/S, an integer >= 1")];

    private protected override CamMethod Configure(ParameterValues values) => new IsCam { Steps = values.Int("steps", Steps, 1) };

    internal override Convention MaskConventionFor(Convention requested) => Convention.TorchCam;

    private protected override float[][] ChannelWeights(ExplainContext context, MaskSet masks, int channels)
    {
        if (Steps < 1)
            throw new CamEngineException($"iscam needs at least one step, got {Steps}");
        int n = context.Batch;
        var coefficients = new float[Steps];
        double coefficient = 0;
        for (int s = 0; s < Steps; s++)
            coefficients[s] = (float)(coefficient += (double)(s + 1) / Steps);
        // item = (s * N + i) * C + k: mask row i * C + k scaled by the step's coefficient.
        var scores = MaskedScores(context, masks, Steps * n * channels,
            item => new MaskedRow(item / channels % n, item % (n * channels), -1, coefficients[item / (channels * n)]));
        var baseline = BaselineScores(context);
        var weights = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var mean = new double[channels];
            for (int k = 0; k < channels; k++)
            {
                float sum = 0;
                for (int s = 0; s < Steps; s++)
                    sum += scores[(s * n + i) * channels + k] - baseline[i];
                mean[k] = sum / Steps;
            }
            weights[i] = Softmax(mean);
        }
        return weights;
    }
}
