namespace CamEngine.Metrics;

/// <summary>
/// ROAD scores of one method's explanations (see <see cref="CamModel.EvaluateRoad(IReadOnlyList{CamResult}, RoadOptions?, IProgress{MetricProgress}?, CancellationToken)"/>): the class score on the
/// input and after imputing, per explanation and percentile, for both orders.
/// </summary>
public sealed class RoadResult
{
    /// <summary>The score read.</summary>
    public required MetricScore Score { get; init; }

    /// <summary>The percentiles, in the order of the inner arrays.</summary>
    public required IReadOnlyList<int> Percentiles { get; init; }

    /// <summary>The score on the unperturbed input, per explanation.</summary>
    public required double[] Original { get; init; }

    /// <summary>The score after imputing the most relevant pixels: [explanation][percentile].</summary>
    public required double[][] MostRelevantFirst { get; init; }

    /// <summary>The score after imputing the least relevant pixels: [explanation][percentile].</summary>
    public required double[][] LeastRelevantFirst { get; init; }

    /// <summary>pytorch-grad-cam's <c>ROADMostRelevantFirstAverage</c> averaged over explanations: the mean over
    /// percentiles of (score after MoRF imputation - original score). More negative is better.</summary>
    public double MeanMostRelevantFirst => MeanChange(MostRelevantFirst);

    /// <summary>pytorch-grad-cam's <c>ROADLeastRelevantFirstAverage</c> averaged over explanations: the mean over
    /// percentiles of (score after LeRF imputation - original score). Closer to 0 is better.</summary>
    public double MeanLeastRelevantFirst => MeanChange(LeastRelevantFirst);

    /// <summary>pytorch-grad-cam's <c>ROADCombined</c> for explanation <paramref name="i"/>: the mean over
    /// percentiles of (LeRF - MoRF) / 2. Higher is better.</summary>
    public double Combined(int i) =>
        Enumerable.Range(0, Percentiles.Count).Average(p => (LeastRelevantFirst[i][p] - MostRelevantFirst[i][p]) / 2);

    /// <summary><see cref="Combined(int)"/> averaged over the explanations.</summary>
    public double MeanCombined =>
        Original.Length == 0 ? double.NaN : Enumerable.Range(0, Original.Length).Average(Combined);

    private double MeanChange(double[][] after) =>
        Original.Length == 0 ? double.NaN : Original.Select((y, i) => after[i].Average(v => v - y)).Average();
}
