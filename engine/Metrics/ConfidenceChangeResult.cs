namespace CamEngine.Metrics;

/// <summary>
/// Scores before and after multiplying the input by the map, per explanation, and their averages
/// (see <see cref="CamModel.EvaluateConfidenceChange(IReadOnlyList{CamResult}, MetricOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).
/// </summary>
public sealed class ConfidenceChangeResult
{
    /// <summary>The score read (<see cref="MetricScore"/>).</summary>
    public required MetricScore Score { get; init; }

    /// <summary>Y_i: the score on the unperturbed image, one per explanation.</summary>
    public required double[] Original { get; init; }

    /// <summary>O_i: the score on the image multiplied by the map, one per explanation.</summary>
    public required double[] Masked { get; init; }

    /// <summary>Average drop in percent, <c>100/N sum_i max(0, Y_i - O_i) / Y_i</c> (Grad-CAM++ paper; lower is
    /// better). NaN when some Y_i is not positive (only possible with <see cref="MetricScore.Logit"/>).</summary>
    public double AverageDrop
    {
        get
        {
            double sum = 0;
            for (int i = 0; i < Original.Length; i++)
                sum += Original[i] > 0 ? Math.Max(0, Original[i] - Masked[i]) / Original[i] : double.NaN;
            return Original.Length == 0 ? double.NaN : 100 * sum / Original.Length;
        }
    }

    /// <summary>Increase in confidence in percent, <c>100/N count_i(O_i &gt; Y_i)</c> (higher is better).</summary>
    public double IncreaseInConfidence =>
        Original.Length == 0 ? double.NaN : 100.0 * Original.Where((y, i) => Masked[i] > y).Count() / Original.Length;

    /// <summary>
    /// pytorch-grad-cam's <c>DropInConfidence</c> averaged over the explanations: <c>1/N sum_i max(0, Y_i - O_i)</c>,
    /// not divided by Y_i and not in percent, in the units of <see cref="Score"/> (pytorch-grad-cam reads the raw
    /// logit by default; <c>cam eval --metric avgdrop-pgc</c> does the same).
    /// </summary>
    public double DropInConfidence =>
        Original.Length == 0 ? double.NaN : Original.Select((y, i) => Math.Max(0, y - Masked[i])).Average();
}
