namespace CamEngine.Methods;

/// <summary>One method's share of a <see cref="RunBreakdown"/>.</summary>
public sealed record MethodBreakdown
{
    /// <summary>The method's name (or <see cref="PassLedger.SharedForward"/>).</summary>
    public string Method { get; init; } = "";

    /// <summary>Rows re-run in batched passes, all kinds.</summary>
    public long Passes { get; init; }

    /// <summary>Rows re-run per kind of pass (<c>forward</c>, <c>forward-from-layer</c>, <c>forward+backward</c>).</summary>
    public IReadOnlyDictionary<string, long> PassesByKind { get; init; } = new Dictionary<string, long>();

    /// <summary>Number of batched passes.</summary>
    public long Batches { get; init; }

    /// <summary>The distinct batch sizes used, largest first.</summary>
    public IReadOnlyList<int> BatchSizes { get; init; } = [];

    /// <summary>Time inside the batched passes (upload, forward, reverse, download), ms.</summary>
    public double PassMs { get; init; }

    /// <summary>The method's wall time, ms.</summary>
    public double WallMs { get; init; }

    /// <summary>Sum over kinds of rows x the run's best per-image time of that kind, ms.</summary>
    public double IdealMs { get; init; }
}
