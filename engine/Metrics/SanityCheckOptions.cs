namespace CamEngine.Metrics;

/// <summary>Options of the sanity check (<see cref="CamModel.EvaluateSanity(CamEngine.Tensors.HostTensor, CamEngine.Methods.CamMethod, CamEngine.Methods.ExplainOptions?, SanityCheckOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</summary>
public sealed class SanityCheckOptions
{
    /// <summary>Seed of the random weights: the same seed gives the same randomized models and numbers.</summary>
    public int Seed { get; init; }
}
