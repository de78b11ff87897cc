using CamEngine.Tensors;

namespace CamEngine.Metrics;

/// <summary>
/// The pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016): a map scores a
/// hit when its maximum lies on the object, or within <c>tolerance</c> pixels of it (TorchRay's acceptance disc of
/// radius 15 around the point: hit when the Euclidean distance from the maximum to the nearest object pixel is at
/// most the tolerance). Also the energy-based variant of the Score-CAM paper: the share of the map's mass
/// (sum of its values, which are non-negative after ReLU and normalization) that falls on the object.
/// </summary>
public static class PointingGame
{
    /// <summary>TorchRay's default tolerance, in pixels.</summary>
    public const double DefaultTolerance = 15;

    /// <summary>Plays every map (H, W) against its ground truth (same size).</summary>
    /// <param name="maps">The final maps, e.g. <see cref="Methods.Explanation.Map"/>.</param>
    /// <param name="truths">One ground truth per map.</param>
    /// <param name="tolerance">Acceptance radius in pixels (default 15).</param>
    public static PointingGameResult Evaluate(
        IReadOnlyList<HostTensor> maps, IReadOnlyList<GroundTruth> truths, double tolerance = DefaultTolerance)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(truths);
        if (maps.Count != truths.Count)
            throw new ArgumentException($"{maps.Count} maps but {truths.Count} ground truths");
        if (!(tolerance >= 0) || !double.IsFinite(tolerance))
            throw new CamEngineException($"the pointing tolerance must be a finite number >= 0, got {tolerance}");
        var hits = new bool[maps.Count];
        var energies = new double[maps.Count];
        var points = new (int, int)[maps.Count];
        for (int i = 0; i < maps.Count; i++)
        {
            var map = maps[i];
            var truth = truths[i];
            if (map.Shape.Length != 2 || map.Shape[0] != truth.Height || map.Shape[1] != truth.Width)
                throw new CamEngineException(
                    $"map {i} has shape {map.ShapeText}; its ground truth is {truth.Height}x{truth.Width}");
            Imaging.MapOps.EnsureFinite(map.Data, $"#{i}");
            points[i] = ArgMax(map);
            hits[i] = Distance(truth, points[i].Item1, points[i].Item2) <= tolerance;
            energies[i] = Energy(map, truth);
        }
        return new PointingGameResult { Hits = hits, Energies = energies, Points = points };
    }

    /// <summary>The maximum of a map (H, W) as (column, row): the first in row-major order on ties.</summary>
    public static (int X, int Y) ArgMax(HostTensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        int best = 0;
        for (int j = 1; j < map.Length; j++)
        {
            if (map.Data[j] > map.Data[best])
                best = j;
        }
        return (best % map.Shape[^1], best / map.Shape[^1]);
    }

    /// <summary>Euclidean distance from pixel (x, y) to the nearest pixel of the ground truth (0 on it).</summary>
    public static double Distance(GroundTruth truth, int x, int y)
    {
        ArgumentNullException.ThrowIfNull(truth);
        double best = double.PositiveInfinity;
        for (int q = 0; q < truth.Mask.Count; q++)
        {
            if (!truth.Mask[q])
                continue;
            double dx = q % truth.Width - x, dy = q / truth.Width - y;
            best = Math.Min(best, dx * dx + dy * dy);
        }
        return Math.Sqrt(best);
    }

    /// <summary>Sum of the map over the ground truth divided by the sum over the whole map (NaN when that is 0).
    /// Negative values, which final maps do not have, are counted as 0.</summary>
    public static double Energy(HostTensor map, GroundTruth truth)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(truth);
        double inside = 0, total = 0;
        for (int q = 0; q < map.Length; q++)
        {
            double v = Math.Max(0, map.Data[q]);
            total += v;
            if (truth.Mask[q])
                inside += v;
        }
        return total > 0 ? inside / total : double.NaN;
    }
}
