namespace CamEngine.Metrics;

/// <summary>Deletion or insertion curves of one method's explanations, in the order of the explanations.</summary>
public sealed class DeletionInsertionResult
{
    /// <summary>True for insertion (higher area is better), false for deletion (lower is better).</summary>
    public required bool Insertion { get; init; }

    /// <summary>The score read.</summary>
    public required MetricScore Score { get; init; }

    /// <summary>One curve per explanation.</summary>
    public required IReadOnlyList<PerturbationCurve> Curves { get; init; }

    /// <summary>Mean of the curves' areas.</summary>
    public double MeanAuc => Curves.Count == 0 ? double.NaN : Curves.Average(c => c.Auc);
}
