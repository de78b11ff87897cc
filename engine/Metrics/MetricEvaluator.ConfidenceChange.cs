using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.Metrics;

internal sealed partial class MetricEvaluator
{
    /// <summary>
    /// Average drop and increase in confidence (Chattopadhyay et al., "Grad-CAM++", WACV 2018): every channel of
    /// the preprocessed input is multiplied pixel-wise by the final map (H, W, in [0, 1]), as pytorch-grad-cam's
    /// <c>CamMultImageConfidenceChange</c> and TorchCAM's <c>ClassificationMetric</c> do, and the class score O
    /// on the product is compared with the score Y on the input. One forward pass per
    /// <see cref="MetricOptions.BatchSize"/> inputs for Y, and again for O.
    /// </summary>
    /// <param name="input">The batch (N, C, H, W) the explanations were computed on.</param>
    /// <param name="explanations">One method's explanations of that batch.</param>
    /// <param name="options">Batch size and score (default the softmax probability).</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellation">Checked between forward passes.</param>
    public ConfidenceChangeResult ConfidenceChange(
        HostTensor input, IReadOnlyList<Explanation> explanations, MetricOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new MetricOptions();
        options.Validate();
        var (c, h, w) = Check(input, explanations);
        int plane = h * w, size = c * plane;
        var original = OriginalScores(input, explanations, options.Score, options.BatchSize, cancellation);
        var masked = ScoreInputs(explanations.Count, (i, dst) =>
        {
            var e = explanations[i];
            var x = input.Data.AsSpan(e.Image * size, size);
            var map = e.Map.Data;
            for (int ch = 0; ch < c; ch++)
            {
                for (int p = 0; p < plane; p++)
                    dst[ch * plane + p] = x[ch * plane + p] * map[p];
            }
        }, i => explanations[i].TargetClass, options.Score, options.BatchSize, false, "avgdrop", progress, cancellation);
        return new ConfidenceChangeResult { Score = options.Score, Original = original, Masked = masked };
    }
}
