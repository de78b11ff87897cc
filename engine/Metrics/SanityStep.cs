namespace CamEngine.Metrics;

/// <summary>One step of the cascading randomization: the layer randomized last and the maps' agreement with the
/// original maps.</summary>
/// <param name="Index">0 for the original model; k after the top k parameterized layers are randomized.</param>
/// <param name="Layer">The node randomized at this step (cumulative with the steps before); empty at step 0.</param>
/// <param name="Parameters">The parameter tensors re-drawn at this step.</param>
/// <param name="Correlations">Spearman's rho between each explanation's original map and its map now, in the order
/// of the original explanations; NaN where a map is constant.</param>
public sealed record SanityStep(int Index, string Layer, IReadOnlyList<string> Parameters, double[] Correlations)
{
    /// <summary>Mean of <see cref="Correlations"/> (NaN if any is NaN).</summary>
    public double MeanCorrelation => Correlations.Length == 0 ? double.NaN : Correlations.Average();
}
