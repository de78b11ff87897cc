namespace CamEngine.Metrics;

/// <summary>Options of <see cref="MetricEvaluator.SanityCheck"/>.</summary>
public sealed class SanityCheckOptions
{
    /// <summary>Seed of the random weights: the same seed gives the same randomized models and numbers.</summary>
    public int Seed { get; init; }
}
