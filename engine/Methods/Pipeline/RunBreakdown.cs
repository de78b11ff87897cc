namespace CamEngine.Methods;

/// <summary>
/// Where the time of a run went, per method (<see cref="PassLedger.Snapshot"/>; written in the run manifest): with
/// <see cref="Ratio"/> = <see cref="WallMs"/> / <see cref="IdealMs"/>, the distance from doing nothing but the
/// passes, each at the best per-image speed the run reached for its kind.
/// </summary>
public sealed record RunBreakdown
{
    /// <summary>The memory budget the run was planned in, bytes.</summary>
    public long MemoryBudgetBytes { get; init; }

    /// <summary>Rows per re-run batch the plan gave each kind of pass (the largest over the run's calls).</summary>
    public IReadOnlyDictionary<string, int> PlannedBatch { get; init; } = new Dictionary<string, int>();

    /// <summary>The best per-image time of each kind of pass measured in the run: the smallest batch time / rows, ms.</summary>
    public IReadOnlyDictionary<string, double> BestPerImageMs { get; init; } = new Dictionary<string, double>();

    /// <summary>Score-CAM mask sets computed: one per layer, mask convention and batch of rows, whichever of Score-CAM,
    /// SS-CAM and IS-CAM read it.</summary>
    public int MaskSetsBuilt { get; init; }

    /// <summary>Per method in the order run, and <see cref="PassLedger.SharedForward"/>.</summary>
    public IReadOnlyList<MethodBreakdown> Methods { get; init; } = [];

    /// <summary>Sum of the methods' wall times (the shared forward included), ms.</summary>
    public double WallMs { get; init; }

    /// <summary>Sum of the methods' ideal times, ms.</summary>
    public double IdealMs { get; init; }

    /// <summary><see cref="WallMs"/> / <see cref="IdealMs"/>; 0 when nothing was re-run.</summary>
    public double Ratio { get; init; }
}
