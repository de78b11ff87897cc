using CamEngine.Methods;

namespace CamEngine.Metrics;

/// <summary>The outcome of the sanity check (<see cref="CamModel.EvaluateSanity(CamEngine.Tensors.HostTensor, CamEngine.Methods.CamMethod, CamEngine.Methods.ExplainOptions?, SanityCheckOptions?, IProgress{MetricProgress}?, CancellationToken)"/>): the original explanations and one
/// <see cref="SanityStep"/> per randomization step, step 0 first.</summary>
public sealed class SanityCheckResult
{
    /// <summary>The method checked.</summary>
    public required string Method { get; init; }

    /// <summary>The explanations on the original model.</summary>
    public required IReadOnlyList<Explanation> Original { get; init; }

    /// <summary>Step 0 (the original model, rho = 1 for non-constant maps), then one per parameterized layer from
    /// the output down.</summary>
    public required IReadOnlyList<SanityStep> Steps { get; init; }

    /// <summary>Mean rho after the last step (every parameterized layer randomized). A method whose maps depend on
    /// the model gives a low value; a value near 1 fails the check.</summary>
    public double FinalCorrelation => Steps[^1].MeanCorrelation;
}
