namespace CamEngine.Methods;

/// <summary>
/// Collects, over one or more explain calls (a run of many batches), the work of each method: the rows it re-ran in
/// batched passes, by kind (<c>forward</c>: whole-model passes keeping only the output; <c>forward-from-layer</c>: from
/// the CAM layer to the output; <c>forward+backward</c>: down to the input), the batch sizes, the time inside those
/// passes and the method's wall time; and the shared forward pass of each call (method <see cref="SharedForward"/>).
/// <see cref="Snapshot"/> turns it into a <see cref="RunBreakdown"/>, whose ideal time per method is its rows of each
/// kind times the best per-image time of that kind measured anywhere in the run. Work a method does outside batched
/// re-runs (its reverse pass, post-processing) has no ideal: it counts as overhead. Thread-safe.
/// </summary>
public sealed class PassLedger
{
    /// <summary>The name under which the forward pass shared by a call's methods is recorded.</summary>
    public const string SharedForward = "(shared forward)";

    private readonly Lock _lock = new();
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _best = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _planned = new(StringComparer.Ordinal);
    private long _budget;
    private int _maskSets;

    /// <summary>Counts a Score-CAM mask set computed (shared by the methods of a call that read it).</summary>
    internal void AddMaskSet()
    {
        lock (_lock)
            _maskSets++;
    }

    private long _maskHostCopyBytes;

    /// <summary>Counts <paramref name="bytes"/> of a host copy of a mask set (made where the device's memory is not the
    /// host's; on the CPU backend the host reads the device masks in place and nothing is counted).</summary>
    internal void AddMaskHostCopy(long bytes)
    {
        lock (_lock)
            _maskHostCopyBytes += bytes;
    }

    /// <summary>Bytes of host copies of mask sets made so far.</summary>
    internal long MaskHostCopyBytes
    {
        get
        {
            lock (_lock)
                return _maskHostCopyBytes;
        }
    }

    /// <summary>Adds a batch of <paramref name="rows"/> re-run rows of <paramref name="kind"/> that took
    /// <paramref name="ms"/> milliseconds to <paramref name="method"/>.</summary>
    internal void AddPass(string method, string kind, int rows, double ms)
    {
        if (rows < 1)
            return;
        lock (_lock)
        {
            var e = Get(method);
            e.Rows[kind] = e.Rows.GetValueOrDefault(kind) + rows;
            e.BatchSizes.Add(rows);
            e.Batches++;
            e.PassMs += ms;
            double perRow = ms / rows;
            if (!_best.TryGetValue(kind, out double best) || perRow < best)
                _best[kind] = perRow;
        }
    }

    /// <summary>Adds <paramref name="ms"/> of wall time to <paramref name="method"/>.</summary>
    internal void AddWall(string method, double ms)
    {
        lock (_lock)
            Get(method).WallMs += ms;
    }

    /// <summary>Notes a call's plan: its budget and the rows per re-run batch of each kind.</summary>
    internal void AddPlan(long budget, IReadOnlyDictionary<string, int> rows)
    {
        lock (_lock)
        {
            _budget = budget;
            foreach (var (kind, r) in rows)
                _planned[kind] = r;
        }
    }

    /// <summary>Adds everything <paramref name="other"/> recorded (the best per-image times compete).</summary>
    internal void Add(PassLedger other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(other, this))
            return;
        lock (other._lock)
        {
            lock (_lock)
            {
                foreach (var name in other._order)
                {
                    var from = other._entries[name];
                    var to = Get(name);
                    foreach (var (kind, rows) in from.Rows)
                        to.Rows[kind] = to.Rows.GetValueOrDefault(kind) + rows;
                    to.BatchSizes.UnionWith(from.BatchSizes);
                    to.Batches += from.Batches;
                    to.PassMs += from.PassMs;
                    to.WallMs += from.WallMs;
                }
                foreach (var (kind, best) in other._best)
                {
                    if (!_best.TryGetValue(kind, out double mine) || best < mine)
                        _best[kind] = best;
                }
                foreach (var (kind, rows) in other._planned)
                    _planned[kind] = Math.Max(_planned.GetValueOrDefault(kind), rows);
                _budget = other._budget;
                _maskSets += other._maskSets;
                _maskHostCopyBytes += other._maskHostCopyBytes;
            }
        }
    }

    /// <summary>The breakdown so far.</summary>
    public RunBreakdown Snapshot()
    {
        lock (_lock)
        {
            var methods = new List<MethodBreakdown>();
            foreach (var name in _order)
            {
                var e = _entries[name];
                double ideal = e.Rows.Sum(p => p.Value * _best.GetValueOrDefault(p.Key));
                methods.Add(new MethodBreakdown
                {
                    Method = name,
                    Passes = e.Rows.Values.Sum(),
                    PassesByKind = new Dictionary<string, long>(e.Rows, StringComparer.Ordinal),
                    Batches = e.Batches,
                    BatchSizes = e.BatchSizes.Order().Reverse().ToList(),
                    PassMs = e.PassMs,
                    WallMs = e.WallMs,
                    IdealMs = ideal,
                });
            }
            double wall = methods.Sum(m => m.WallMs), idealTotal = methods.Sum(m => m.IdealMs);
            return new RunBreakdown
            {
                MemoryBudgetBytes = _budget,
                PlannedBatch = new Dictionary<string, int>(_planned, StringComparer.Ordinal),
                BestPerImageMs = new Dictionary<string, double>(_best, StringComparer.Ordinal),
                Methods = methods,
                WallMs = wall,
                IdealMs = idealTotal,
                Ratio = idealTotal > 0 ? wall / idealTotal : 0,
                MaskSetsBuilt = _maskSets,
            };
        }
    }

    private Entry Get(string method)
    {
        if (!_entries.TryGetValue(method, out var e))
        {
            _entries[method] = e = new Entry();
            _order.Add(method);
        }
        return e;
    }

    private sealed class Entry
    {
        public Dictionary<string, long> Rows { get; } = new(StringComparer.Ordinal);

        public SortedSet<int> BatchSizes { get; } = [];

        public long Batches { get; set; }

        public double PassMs { get; set; }

        public double WallMs { get; set; }
    }
}
