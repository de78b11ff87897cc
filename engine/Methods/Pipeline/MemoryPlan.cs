using System.Diagnostics;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>The kinds of batched re-run a method makes; each costs its own memory per row and is timed apart.</summary>
[Flags]
internal enum Reruns
{
    /// <summary>No batched re-runs (one reverse pass at most, on the shared forward).</summary>
    None = 0,

    /// <summary>Whole-model forward passes keeping only the output (Score-CAM family, RISE, occlusion).</summary>
    Forward = 1,

    /// <summary>Forward passes from a layer to the output (Ablation-CAM, Recipro-CAM).</summary>
    Suffix = 2,

    /// <summary>Forward and reverse passes down to the input (SmoothGrad, integrated gradients, GradientSHAP).</summary>
    Gradient = 4,
}

/// <summary>
/// The memory plan of one explain call: how many rows (image, target pairs) are explained at once, how many re-run
/// rows each kind of batched pass takes, and the buffers the methods of the call share. Everything is sized from one
/// budget (<see cref="ExplainOptions.MemoryBudgetBytes"/>, by default the backend's), in bytes of float32 data:
/// <list type="bullet">
/// <item>per explained row, fixed while the methods run: the kept forward pass with room for one reverse pass
/// (twice every node's output) and the Score-CAM masks (C x H x W per layer and mask convention alive at once,
/// found by walking the method list, since a mask set lives from its first method to its last);</item>
/// <item>per re-run row of each kind used: an output-only forward (the peak of a pass that frees each activation after
/// its last reader, plus the input on the host and the device), a forward from a layer (the layer row twice plus
/// every later node's output), or a forward and reverse pass (twice every node's output plus the input twice).</item>
/// </list>
/// The explained rows take at most half the budget; the rest is split evenly between the re-run kinds the methods
/// use, and each kind gets <c>share / (2 x row cost)</c> rows (at most <see cref="ExplainOptions.PerturbationBatch"/>):
/// the factor 2 covers the tail of a run of re-runs, which is cut into power-of-two batches so the backend's buffer pool
/// sees a bounded set of shapes (at most twice the full batch's buffers). A budget that cannot hold one explained row and
/// one re-run row of each kind is refused with both numbers before any pass.
/// Shared while the call runs: one host scratch buffer for the re-run inputs (every method reuses it), the masks of
/// each (layer, convention) (Score-CAM, SS-CAM and IS-CAM under TorchCAM's masks compute them once; dropped after
/// the last method that reads them), and the model output on the all-zero input. Every re-run batch is timed into
/// <see cref="PassLedger"/>.
/// </summary>
internal sealed class MemoryPlan
{
    private readonly Dictionary<(int Layer, Convention Convention), object> _masks = [];
    private float[]? _scratch;
    private float[]? _zeroOutput;

    private MemoryPlan(long budget, int explainRows, long fixedRowBytes, long maskRowBytes,
        Dictionary<Reruns, long> rowBytes, Dictionary<Reruns, int> rows, PassLedger ledger)
    {
        BudgetBytes = budget;
        ExplainRows = explainRows;
        FixedRowBytes = fixedRowBytes;
        MaskRowBytes = maskRowBytes;
        RowBytes = rowBytes;
        _rows = rows;
        Ledger = ledger;
    }

    private readonly Dictionary<Reruns, int> _rows;

    /// <summary>The budget the plan fits, bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>Rows explained at once (the explainer's chunk).</summary>
    public int ExplainRows { get; }

    /// <summary>Bytes one explained row holds while the methods run (kept activations, reverse pass, masks).</summary>
    public long FixedRowBytes { get; }

    /// <summary>The masks' part of <see cref="FixedRowBytes"/>.</summary>
    public long MaskRowBytes { get; }

    /// <summary>The smallest budget that holds one explained row and one re-run row of each kind used.</summary>
    public long MinimumBytes { get; private init; }

    /// <summary>Bytes of one re-run row, per kind the methods use.</summary>
    public IReadOnlyDictionary<Reruns, long> RowBytes { get; }

    /// <summary>Where the re-run batches are timed.</summary>
    public PassLedger Ledger { get; }

    /// <summary>The method whose passes are being recorded (set by the explainer around each method).</summary>
    public string Current { get; set; } = "";

    /// <summary>Re-run rows per batch of <paramref name="kind"/>.</summary>
    public int Rows(Reruns kind) => _rows.TryGetValue(kind, out int r) ? r : 1;

    /// <summary>
    /// The plan for explaining up to <paramref name="rows"/> rows with <paramref name="methods"/> at
    /// <paramref name="layers"/> within <paramref name="budget"/> bytes, re-run batches capped at <paramref name="cap"/>.
    /// </summary>
    /// <exception cref="CamEngineException">The budget is not positive or the cap is below 1.</exception>
    /// <exception cref="DeviceMemoryException">The budget cannot hold one explained row and one re-run row of each
    /// kind; the message gives both numbers.</exception>
    public static MemoryPlan For(ModelGraph graph, long budget, int cap, int rows, IReadOnlyList<CamMethod> methods,
        IReadOnlyList<GraphNode> layers, Convention convention, PassLedger? ledger = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(layers);
        CheckBudget(budget);
        if (cap < 1)
            throw new CamEngineException($"the perturbation batch must be at least 1, got {cap}");
        long activations = GraphBudget.ActivationBytesPerImage(graph);
        long input = 4L * TensorShape.CheckedLength(graph.InputShape);
        long masks = PeakMaskBytes(graph, methods, layers, convention);
        long fixedRow = checked(2 * activations + masks);
        var kinds = methods.Aggregate(Reruns.None, (k, m) => k | m.Reruns);
        var rowBytes = new Dictionary<Reruns, long>();
        if (kinds.HasFlag(Reruns.Forward))
            rowBytes[Reruns.Forward] = checked(OutputForwardPeakBytes(graph) + 2 * input);
        if (kinds.HasFlag(Reruns.Suffix))
            rowBytes[Reruns.Suffix] = layers.Count == 0 ? 2 * input : layers.Max(l => SuffixBytes(graph, l));
        if (kinds.HasFlag(Reruns.Gradient))
            rowBytes[Reruns.Gradient] = checked(2 * activations + 2 * input);
        long need = checked(fixedRow + rowBytes.Values.Sum());
        if (need > budget)
        {
            var parts = new List<string> { $"{GraphBudget.Size(2 * activations)} of activations and gradients" };
            if (masks > 0)
                parts.Add($"{GraphBudget.Size(masks)} of Score-CAM masks");
            foreach (var (kind, bytes) in rowBytes)
                parts.Add($"{GraphBudget.Size(bytes)} for one {KindName(kind)} re-run row");
            throw new DeviceMemoryException(
                $"out of memory before starting: explaining one image needs {need} bytes ({GraphBudget.Size(need)}: {string.Join(", ", parts)}), "
                + $"more than the memory budget of {budget} bytes ({GraphBudget.Size(budget)})");
        }
        // Explained rows: at most half the budget (at least one row, which fits by the check above).
        int explain = (int)Math.Clamp(budget / 2 / Math.Max(1, fixedRow), 1, Math.Max(1, rows));
        long share = (budget - explain * fixedRow) / Math.Max(1, rowBytes.Count);
        var perKind = new Dictionary<Reruns, int>();
        foreach (var (kind, bytes) in rowBytes)
            perKind[kind] = (int)Math.Clamp(share / (2 * bytes), 1, cap);
        foreach (var kind in new[] { Reruns.Forward, Reruns.Suffix, Reruns.Gradient })
            perKind.TryAdd(kind, Math.Min(cap, perKind.Count == 0 ? cap : perKind.Values.Min()));
        return new MemoryPlan(budget, explain, fixedRow, masks, rowBytes, perKind, ledger ?? new PassLedger()) { MinimumBytes = need };
    }

    /// <summary>A plan of <paramref name="rows"/> rows for every kind of re-run and no budget (for contexts made outside
    /// the explainer).</summary>
    public static MemoryPlan Fixed(int rows)
    {
        int r = Math.Max(1, rows);
        var perKind = new Dictionary<Reruns, int> { [Reruns.Forward] = r, [Reruns.Suffix] = r, [Reruns.Gradient] = r };
        return new MemoryPlan(long.MaxValue, 1, 0, 0, [], perKind, new PassLedger());
    }

    /// <summary>Most a budget defaults to on a host backend (cpu, ilgpu-cpu, reference): 1 GiB.</summary>
    public const long HostDefaultCap = 1L << 30;

    /// <summary>
    /// The budget when the options give none: the backend's (<see cref="Backends.Backend.MemoryBudgetBytes"/>: on the
    /// host a quarter of the memory available to the process, at most 4 GiB; on a GPU 60% of its free memory), and on a
    /// host backend at most <see cref="HostDefaultCap"/>: there the re-run batches come out of the same memory as
    /// everything else the process holds, and the CPU backend's buffer pool keeps what a batch used, so the default
    /// keeps a ResNet-18 run of every method near 1.5 GB resident.
    /// </summary>
    public static long DefaultBudget(Backends.Backend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        long budget = backend.MemoryBudgetBytes;
        return backend.Name is "cpu" or "ilgpu-cpu" or "reference" ? Math.Min(budget, HostDefaultCap) : budget;
    }

    /// <summary>Refuses a budget that is not a positive number of bytes.</summary>
    public static void CheckBudget(long budget)
    {
        if (budget <= 0)
            throw new CamEngineException($"the memory budget must be a positive number of bytes, got {budget}");
    }

    /// <summary>The name of a re-run kind in messages and the breakdown.</summary>
    public static string KindName(Reruns kind) => kind switch
    {
        Reruns.Forward => "forward",
        Reruns.Suffix => "forward-from-layer",
        Reruns.Gradient => "forward+backward",
        _ => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Splits <paramref name="count"/> pending rows into batches: one of <paramref name="batch"/> rows when they
    /// make a full batch, else power-of-two pieces, largest first (21 rows: 16, 4, 1), so every tail reuses the
    /// buffers of a few shapes. Yields (offset, rows).
    /// </summary>
    public static IEnumerable<(int Offset, int Rows)> Pieces(int count, int batch)
    {
        if (count == batch)
        {
            yield return (0, count);
            yield break;
        }
        int offset = 0;
        while (offset < count)
        {
            int m = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(count - offset)));
            yield return (offset, m);
            offset += m;
        }
    }

    /// <summary>The shared host scratch buffer of at least <paramref name="length"/> floats (contents undefined).</summary>
    public float[] Scratch(int length)
    {
        if (_scratch == null || _scratch.Length < length)
            _scratch = GC.AllocateUninitializedArray<float>(length);
        return _scratch;
    }

    /// <summary>The masks of layer <paramref name="layer"/> under <paramref name="convention"/>, built by
    /// <paramref name="build"/> the first time and shared by every later method of the call; the plan owns them (a
    /// disposable set, such as masks on the device, is disposed when dropped).</summary>
    public T Masks<T>(int layer, Convention convention, Func<T> build) where T : class
    {
        if (!_masks.TryGetValue((layer, convention), out var masks))
        {
            _masks[(layer, convention)] = masks = build();
            Ledger.AddMaskSet();
        }
        return (T)masks;
    }

    private void DropMasks((int Layer, Convention Convention) key)
    {
        if (_masks.Remove(key, out var masks) && masks is IDisposable d)
            d.Dispose();
    }

    /// <summary>True when the masks of (<paramref name="layer"/>, <paramref name="convention"/>) are held.</summary>
    public bool HoldsMasks(int layer, Convention convention) => _masks.ContainsKey((layer, convention));

    /// <summary>Drops the mask sets no method in <paramref name="remaining"/> reads.</summary>
    public void KeepMasksFor(IEnumerable<CamMethod> remaining, Convention convention)
    {
        var wanted = remaining.OfType<ScoreCamBase>().Select(m => m.MaskConventionFor(convention)).ToHashSet();
        foreach (var key in _masks.Keys.Where(k => !wanted.Contains(k.Convention)).ToList())
            DropMasks(key);
    }

    private long _allocatedMark = GC.GetTotalAllocatedBytes();
    private long _cacheMark;

    /// <summary>The backend the call runs on, whose caches <see cref="AfterMethod"/> trims; null: none trimmed.</summary>
    public Backends.Backend? Backend { get; set; }

    /// <summary>Before each method: marks the backend's cache clock, so <see cref="AfterMethod"/> knows what the method used.</summary>
    public void BeforeMethod() => _cacheMark = Backend?.CacheMark ?? 0;

    /// <summary>
    /// After each method: when it allocated more than a sixteenth of the budget (at least 32 MiB) on the managed heap,
    /// the backend's caches are trimmed (<see cref="Backends.Backend.TrimCaches"/>: weight forms the method did not use,
    /// such as the flipped weights of an earlier reverse pass or the forms of another batch size, and the idle buffers
    /// its batches left in the pools), then a blocking full collection with the large-object heap compacted returns that
    /// garbage (masks of other conventions, pass outputs, per-channel upsampled planes) before the next method allocates
    /// its own, instead of piling up across the methods of a run.
    /// </summary>
    public void AfterMethod()
    {
        long now = GC.GetTotalAllocatedBytes();
        if (now - _allocatedMark > Math.Max(32L << 20, BudgetBytes / 16))
        {
            Backend?.TrimCaches(_cacheMark);
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            now = GC.GetTotalAllocatedBytes();
        }
        _allocatedMark = now;
    }

    /// <summary>Drops every shared buffer.</summary>
    public void Release()
    {
        foreach (var key in _masks.Keys.ToList())
            DropMasks(key);
        _scratch = null;
        _zeroOutput = null;
    }

    /// <summary>The model output on the all-zero input (one row), computed once per call.</summary>
    public float[] ZeroOutput(Func<float[]> compute) => _zeroOutput ??= compute();

    /// <summary>Records a re-run batch of <paramref name="rows"/> rows of <paramref name="kind"/> for the current method.</summary>
    public void Record(Reruns kind, int rows, long startTimestamp) =>
        Ledger.AddPass(Current, KindName(kind), rows, Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds);

    /// <summary>The bytes per explained row of the masks alive at once: mask sets (one per mask convention, each
    /// C x H x W floats per layer) live from the first method that reads them to the last.</summary>
    private static long PeakMaskBytes(ModelGraph graph, IReadOnlyList<CamMethod> methods, IReadOnlyList<GraphNode> layers, Convention convention)
    {
        long perSet = 0;
        long plane = (long)graph.InputShape[1] * graph.InputShape[2];
        foreach (var layer in layers)
            perSet += 4 * plane * (layer.Shape.Length > 0 ? layer.Shape[0] : 1);
        var uses = methods.Select(m => m is ScoreCamBase s ? s.MaskConventionFor(convention) : (Convention?)null).ToList();
        int peak = 0;
        for (int i = 0; i < uses.Count; i++)
        {
            int alive = uses.Where(u => u != null).Distinct()
                .Count(c => uses.IndexOf(c) <= i && uses.LastIndexOf(c) >= i);
            peak = Math.Max(peak, alive);
        }
        return peak * perSet;
    }

    /// <summary>Peak bytes per row of an output-only forward: each node's output allocated, each activation freed after
    /// its last reader (max-pool routing, as large as the output, alive with it). An upper bound on what the executor
    /// holds, which also reuses storage in place.</summary>
    internal static long OutputForwardPeakBytes(ModelGraph graph)
    {
        var lastRead = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            foreach (var name in graph.Nodes[i].Inputs)
                lastRead[name] = i;
        }
        var size = new Dictionary<string, long>(StringComparer.Ordinal);
        long live = 0, peak = 0;
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            long bytes = 4 * TensorShape.CheckedLength(node.Shape);
            size[node.Output] = bytes;
            live += bytes;
            peak = Math.Max(peak, live + (node.Op == "maxpool" ? bytes : 0));
            foreach (var name in node.Inputs.Distinct())
            {
                if (lastRead[name] == i && size.Remove(name, out long freed))
                    live -= freed;
            }
        }
        return peak;
    }

    /// <summary>Bytes per row of a forward from <paramref name="layer"/>: its row on the host and the device, and every
    /// later node's output.</summary>
    private static long SuffixBytes(ModelGraph graph, GraphNode layer)
    {
        int at = graph.Nodes.ToList().FindIndex(n => n.Output == layer.Output);
        long bytes = 2 * 4 * TensorShape.CheckedLength(layer.Shape);
        for (int i = at + 1; i < graph.Nodes.Count; i++)
            bytes += 4 * TensorShape.CheckedLength(graph.Nodes[i].Shape);
        return bytes;
    }
}
