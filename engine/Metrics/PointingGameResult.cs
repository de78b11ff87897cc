namespace CamEngine.Metrics;

/// <summary>Pointing-game outcome of a set of maps (see <see cref="PointingGame.Evaluate"/>).</summary>
public sealed class PointingGameResult
{
    /// <summary>Whether each map's maximum hit its ground truth (within the tolerance).</summary>
    public required bool[] Hits { get; init; }

    /// <summary>Each map's share of mass inside its ground truth, in [0, 1] (NaN for an all-zero map).</summary>
    public required double[] Energies { get; init; }

    /// <summary>The map maximum of each map (x = column, y = row; the first in row-major order on ties).</summary>
    public required (int X, int Y)[] Points { get; init; }

    /// <summary>Hits / maps, over the whole set (TorchRay averages per class instead; with one class the two agree).</summary>
    public double HitRate => Hits.Length == 0 ? double.NaN : (double)Hits.Count(h => h) / Hits.Length;

    /// <summary>Mean of <see cref="Energies"/>.</summary>
    public double MeanEnergy => Energies.Length == 0 ? double.NaN : Energies.Average();
}
