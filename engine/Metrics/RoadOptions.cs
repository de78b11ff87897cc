namespace CamEngine.Metrics;

/// <summary>Options of ROAD (<see cref="CamModel.EvaluateRoad(IReadOnlyList{CamResult}, RoadOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</summary>
public sealed class RoadOptions : MetricOptions
{
    /// <summary>The percentiles p (each in 1..99; default 10, 20, ..., 90 as pytorch-grad-cam's <c>ROADCombined</c>).
    /// MoRF at p imputes the pixels whose map value is at least the p-th percentile of the map (the top
    /// (100 - p) %), LeRF at p those in the bottom (100 - p) %.</summary>
    public IReadOnlyList<int> Percentiles { get; init; } = [10, 20, 30, 40, 50, 60, 70, 80, 90];

    /// <summary>Standard deviation of the noise on imputed values, in normalized input units (default 0.01).</summary>
    public double Noise { get; init; } = NoisyLinearImputation.DefaultNoise;

    /// <summary>Seed of the noise: the same seed gives the same numbers.</summary>
    public int Seed { get; init; }

    /// <summary>Relative residual at which the conjugate-gradient solve stops (default 1e-10).</summary>
    public double SolverTolerance { get; init; } = 1e-10;

    internal void ValidateRoad()
    {
        Validate();
        if (Percentiles.Count == 0 || Percentiles.Any(p => p is < 1 or > 99))
            throw new CamEngineException($"ROAD percentiles must be a non-empty list of integers in 1..99, got [{string.Join(",", Percentiles)}]");
        if (!(Noise >= 0) || !double.IsFinite(Noise))
            throw new CamEngineException($"the ROAD noise must be a finite number >= 0, got {Noise}");
        if (!(SolverTolerance > 0 && SolverTolerance < 1))
            throw new CamEngineException($"the solver tolerance must be in (0, 1), got {SolverTolerance}");
    }
}
