using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>Options of an explanation (<see cref="CamModel.Explain(string, CamMethod, ExplainOptions?)"/> and its
/// siblings): layers, target, convention, fusion, smoothing, seed.</summary>
public sealed class ExplainOptions
{
    /// <summary>Layer names (tensor, node or module path); empty means the model's default target layer.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>Which score to explain; top-1 by default.</summary>
    public Target Target { get; init; } = Target.Top1;

    /// <summary>Which library's (or the paper's) definition to follow.</summary>
    public Convention Convention { get; init; } = Convention.PytorchGradCam;

    /// <summary>The one memory knob of an explain call (bytes): the <see cref="MemoryPlan"/> sizes from it how many
    /// images are explained at once and how many rows each kind of re-run batch takes (Score-CAM's masked inputs,
    /// Ablation-CAM's ablated layers, SmoothGrad's noisy copies...), counting the kept activations, a reverse pass and
    /// the Score-CAM masks; a batch that still runs out of device memory is retried in halves. A budget that cannot
    /// hold one image is refused with both numbers before any pass. Null: on the CPU a quarter of the memory available
    /// to the process, at most 1 GiB; on a GPU 60% of its free memory.</summary>
    public long? MemoryBudgetBytes { get; init; }

    /// <summary>How several layers' maps are fused; null: the convention's default (mean for pytorch-grad-cam,
    /// max otherwise).</summary>
    public LayerFusion? Fusion { get; init; }

    /// <summary>
    /// pytorch-grad-cam's <c>aug_smooth</c>: test-time augmentation with ttach's HorizontalFlip x
    /// Multiply(0.9, 1, 1.1) — six passes, the input flipped or not and its (normalized) pixel values scaled
    /// by the factor; each final map is flipped back and the six are averaged (not renormalized). The targets are
    /// resolved once, on the unaugmented input.
    /// </summary>
    public bool AugSmooth { get; init; }

    /// <summary>pytorch-grad-cam's <c>eigen_smooth</c> (the map is the first principal component of the weighted activations instead of their sum).</summary>
    public bool EigenSmooth { get; init; }

    /// <summary>At most this many images per forward (and reverse) pass of the perturbation methods' re-runs:
    /// Score-CAM's masked inputs, Ablation-CAM's ablated activations, SmoothGrad's noisy copies, integrated gradients'
    /// path points. The memory plan may give fewer (<see cref="MemoryBudgetBytes"/>).</summary>
    public int PerturbationBatch { get; init; } = 32;

    /// <summary>Seed of every random draw (noise of stochastic methods); same seed, same map.</summary>
    public int Seed { get; init; }

    /// <summary>How the layers' tensors are read as (C, h, w) grids (<c>--layout</c>): <see cref="LayerLayout.Auto"/>
    /// (the default) decides per layer from the graph; an explicit layout applies to every layer.</summary>
    public LayerLayout Layout { get; init; } = LayerLayout.Auto;
}

/// <summary>
/// Runs methods on a batch: uploads the input, runs the graph once, resolves targets into rows (one per
/// image, or k per image for top-k: the image is replicated), then lets the method do its passes. Every
/// returned <see cref="Explanation"/> names its original image (<see cref="Explanation.Image"/>) and class.
/// <example><code>
/// using var backend = Devices.Open();
/// using var model = DeviceModel.Load(ModelFile.Load("model.safetensors"), backend);
/// var maps = new Explainer(model).Explain(input, new GradCam());
/// </code></example>
/// </summary>
internal sealed class Explainer(DeviceModel model)
{
    /// <summary>ttach <c>Multiply(factors=[0.9, 1, 1.1])</c>, as pytorch-grad-cam's aug_smooth uses it.</summary>
    private static readonly float[] s_augFactors = [0.9f, 1f, 1.1f];
    private static readonly bool[] s_flips = [false, true];

    /// <summary>The model explained.</summary>
    public DeviceModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>Resolves the layers a method works at.</summary>
    public IReadOnlyList<GraphNode> ResolveLayers(IReadOnlyList<string> names) =>
        names.Count == 0 ? [Model.Graph.DefaultTargetLayer()] : names.Select(Model.Graph.ResolveLayer).ToList();

    /// <summary>How each layer is read as a (C, h, w) grid under <paramref name="layout"/> (auto: decided from the graph).</summary>
    /// <exception cref="CamEngineException">The layout does not fit a layer; the message names it.</exception>
    public IReadOnlyList<LayerGrid> ReadLayers(IReadOnlyList<GraphNode> layers, LayerLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0)
            return [];
        var layouts = LayerLayouts.Of(Model.Graph);
        return layers.Select(l => new LayerGrid(l, layouts.Read(l, layout))).ToList();
    }

    /// <summary>Explains every image of <paramref name="input"/> (N, C, H, W) with <paramref name="method"/>.</summary>
    public IReadOnlyList<Explanation> Explain(HostTensor input, CamMethod method, ExplainOptions? options = null) =>
        Explain(input, [method], options)[method.Name];

    /// <summary>The model's output for <paramref name="input"/> (N, C, H, W), flattened per image: (N, outputs).</summary>
    public float[] Outputs(HostTensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        MapOpsGuard(input);
        using var scope = Model.Backend.SyncRoot.EnterScope();
        using var x = Model.Backend.Upload(input);
        using var forward = Model.ForwardOutput(x);
        return Model.Backend.Download(forward.Output);
    }

    /// <summary>Explains the batch with several methods, sharing one forward pass and one memory plan; each method's
    /// re-run batches and wall time go to <paramref name="ledger"/> when given.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Explanation>> Explain(
        HostTensor input, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null, PassLedger? ledger = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(methods);
        options ??= new ExplainOptions();
        foreach (var method in methods)
            method.CheckTarget(options.Target); // before any work: one method that cannot run refuses the whole call
        options.Target.CheckOutput(Model.Graph.OutputShape);
        var layers = ResolveLayers(options.Layers);
        foreach (var method in methods)
            method.CheckModel(Model.Graph, method.UsesLayers ? layers : []);
        // A layout that does not fit a layer refuses before any pass.
        IReadOnlyList<LayerGrid>? grids = methods.Any(m => m.UsesLayers) ? ReadLayers(layers, options.Layout) : null;
        MapOpsGuard(input);
        var backend = Model.Backend;
        using var scope = backend.SyncRoot.EnterScope();
        int n = input.Shape[0];
        long budget = options.MemoryBudgetBytes ?? MemoryPlan.DefaultBudget(backend);
        MemoryPlan.CheckBudget(budget);
        // Refused with the numbers before any pass runs when one image cannot fit the budget.
        GraphBudget.CheckFits(Model.Graph, budget);
        var plan = MemoryPlan.For(Model.Graph, budget, options.PerturbationBatch, int.MaxValue, methods, layers,
            options.Convention, ledger);
        plan.Backend = backend;
        // Weight forms (packed, Winograd-transformed, flipped) count against the budget too: at most half of it.
        long formCap = backend.WeightFormCacheBytes;
        backend.WeightFormCacheBytes = Math.Min(formCap, Math.Max(1, budget / 2));
        plan.Ledger.AddPlan(budget, plan.RowBytes.Keys.ToDictionary(MemoryPlan.KindName, plan.Rows, StringComparer.Ordinal));
        int chunk = plan.ExplainRows;
        // When the batch fits one chunk, the forward pass that picks the targets is kept: with one row per image
        // (top-1, a class, ...) the methods run on that same pass instead of a second forward of the same input.
        Backends.Tensor? keptInput = null;
        ForwardPass? kept = null;
        try
        {
            float[] outputs;
            if (n <= chunk)
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                keptInput = backend.Upload(input);
                kept = ForwardFor(keptInput, methods, layers);
                outputs = backend.Download(kept.Output);
                plan.Current = PassLedger.SharedForward;
                plan.Record(Reruns.Forward, n, t0);
                plan.Ledger.AddWall(PassLedger.SharedForward, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (outputs.Any(v => !float.IsFinite(v)))
                {
                    using var full = Model.Forward(keptInput); // every activation, to name the node
                    throw new CamEngineException(FirstNonFinite(full));
                }
            }
            else
            {
                outputs = ChunkedOutputs(input, chunk);
            }
            var rows = options.Target.Rows(outputs, n, Model.Graph.OutputShape);
            var rowInput = Replicate(input, rows);
            // With --aug-smooth the other variants' passes would be alive next to the kept one: not kept there.
            if (!ReferenceEquals(rowInput, input) || rows.Length > chunk || options.AugSmooth)
            {
                kept?.Dispose();
                kept = null;
            }
            return ExplainChunks(rows, rowInput, methods, layers, grids, options, chunk, kept, plan);
        }
        finally
        {
            kept?.Dispose();
            keptInput?.Dispose();
            plan.Release();
            backend.WeightFormCacheBytes = formCap;
        }
    }

    /// <summary>Explains the target rows a chunk at a time (halving the chunk when the device runs out of
    /// memory); <paramref name="kept"/>, when given, is the forward pass of exactly these rows.</summary>
    private Dictionary<string, IReadOnlyList<Explanation>> ExplainChunks(
        TargetRow[] rows, HostTensor rowInput, IReadOnlyList<CamMethod> methods, IReadOnlyList<GraphNode> layers,
        IReadOnlyList<LayerGrid>? grids, ExplainOptions options, int chunk, ForwardPass? kept, MemoryPlan plan)
    {
        var merged = methods.ToDictionary(m => m.Name, _ => new List<Explanation>(), StringComparer.Ordinal);
        for (int start = 0; start < rows.Length;)
        {
            int count = Math.Min(chunk, rows.Length - start);
            Dictionary<string, IReadOnlyList<Explanation>> part;
            try
            {
                var reuse = start == 0 && count == rows.Length ? kept : null;
                part = ExplainRows(rows[start..(start + count)], Slice(rowInput, start, count), methods, layers, grids, options, reuse, plan);
            }
            catch (DeviceMemoryException) when (count > 1)
            {
                chunk = count / 2; // retry this part in halves
                continue;
            }
            foreach (var method in methods)
            {
                merged[method.Name].AddRange(part[method.Name]); // image indices are the caller's already
            }
            start += count;
        }
        return merged.ToDictionary(p => p.Key, p => (IReadOnlyList<Explanation>)p.Value, StringComparer.Ordinal);
    }

    /// <summary>Explains a contiguous run of target rows (each an image replicated per target).</summary>
    private Dictionary<string, IReadOnlyList<Explanation>> ExplainRows(
        TargetRow[] rows, HostTensor rowInput, IReadOnlyList<CamMethod> methods, IReadOnlyList<GraphNode> layers,
        IReadOnlyList<LayerGrid>? grids, ExplainOptions options, ForwardPass? reuse, MemoryPlan plan)
    {
        var backend = Model.Backend;
        var variants = options.AugSmooth
            ? (from flip in s_flips from f in s_augFactors select (flip, f)).ToList()
            : [(false, 1f)];
        var collected = methods.ToDictionary(m => m.Name, _ => new List<IReadOnlyList<Explanation>>(), StringComparer.Ordinal);
        var identities = new Dictionary<string, IReadOnlyList<Explanation>>(StringComparer.Ordinal);
        foreach (var (flip, factor) in variants)
        {
            var augmented = Augment(rowInput, flip, factor);
            bool reusing = reuse != null && !flip && factor == 1f;
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            using var x = reusing ? null : backend.Upload(augmented);
            using var fresh = reusing ? null : ForwardFor(x!, methods, layers);
            var forward = reusing ? reuse! : fresh!;
            var y = backend.Download(forward.Output);
            if (!reusing)
            {
                plan.Current = PassLedger.SharedForward;
                plan.Record(Reruns.Forward, rows.Length, t0);
                plan.Ledger.AddWall(PassLedger.SharedForward, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            int k = y.Length / rows.Length;
            var context = new ExplainContext
            {
                Model = Model, Forward = forward, Layers = layers, Grids = grids, Convention = options.Convention,
                Classes = rows.Select(r => r.Class).ToArray(),
                Scores = rows.Select((r, i) => r.Score.Value(y.AsSpan(i * k, k))).ToArray(),
                Targets = rows, Fusion = options.Fusion, EigenSmooth = options.EigenSmooth,
                RandomSeed = options.Seed, Input = augmented, Plan = plan,
                PerturbationBatch = Math.Min(plan.Rows(Reruns.Forward), Math.Min(plan.Rows(Reruns.Suffix), plan.Rows(Reruns.Gradient))),
            };
            // Masks belong to one variant's activations; each method's per-method buffers go when it finishes, and the
            // masks when no later method of the call reads them.
            plan.KeepMasksFor([], options.Convention);
            for (int m = 0; m < methods.Count; m++)
            {
                var method = methods[m];
                plan.Current = method.Name;
                plan.BeforeMethod();
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                var explanations = method.Run(context);
                double ms = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                plan.Ledger.AddWall(method.Name, ms);
                MemoryLog.After(method.Name, ms);
                plan.KeepMasksFor(methods.Skip(m + 1), options.Convention);
                plan.AfterMethod();
                MemoryLog.After("  after cleanup", 0);
                MemoryLog.Settle();
                collected[method.Name].Add(flip ? explanations.Select(FlipMap).ToList() : explanations);
                if (!flip && factor == 1f)
                    identities[method.Name] = explanations;
            }
        }
        var result = new Dictionary<string, IReadOnlyList<Explanation>>(StringComparer.Ordinal);
        foreach (var method in methods)
        {
            var runs = collected[method.Name];
            var baseRun = identities[method.Name];
            result[method.Name] = baseRun.Select((e, i) => new Explanation
            {
                Image = rows[e.Image].Image,
                Method = e.Method,
                TargetClass = rows[e.Image].Class,
                Score = e.Score,
                Layers = e.Layers,
                Raw = e.Raw,
                Weights = e.Weights,
                Concepts = e.Concepts,
                Map = runs.Count == 1 ? e.Map : Average(runs.Select(r => r[i].Map).ToList()),
            }).ToList();
        }
        return result;
    }

    /// <summary>The model outputs for every image, computed <paramref name="chunk"/> images at a time.</summary>
    private float[] ChunkedOutputs(HostTensor input, int chunk)
    {
        var backend = Model.Backend;
        int n = input.Shape[0];
        var all = new List<float>();
        for (int start = 0; start < n; start += chunk)
        {
            int count = Math.Min(chunk, n - start);
            using var x = backend.Upload(Slice(input, start, count));
            using var forward = Model.Forward(x);
            var outputs = backend.Download(forward.Output);
            if (outputs.Any(v => !float.IsFinite(v)))
                throw new CamEngineException(FirstNonFinite(forward));
            all.AddRange(outputs);
        }
        return all.ToArray();
    }

    private static HostTensor Slice(HostTensor t, int start, int count)
    {
        int n = t.Shape[0];
        if (start == 0 && count == n)
            return t;
        int size = t.Length / n;
        return new HostTensor([count, .. t.Shape[1..]], t.Data.AsSpan(start * size, count * size).ToArray());
    }

    private static HostTensor Replicate(HostTensor input, TargetRow[] rows)
    {
        int n = input.Shape[0];
        if (rows.Length == n && rows.Select((r, i) => r.Image == i).All(b => b))
            return input;
        int size = input.Length / n;
        var data = new float[rows.Length * size];
        for (int i = 0; i < rows.Length; i++)
            input.Data.AsSpan(rows[i].Image * size, size).CopyTo(data.AsSpan(i * size, size));
        return new HostTensor([rows.Length, .. input.Shape[1..]], data);
    }

    /// <summary>ttach's transforms on (N, C, H, W): horizontal flip (reverse W), then pixel values times factor.</summary>
    internal static HostTensor Augment(HostTensor input, bool flip, float factor)
    {
        if (!flip && factor == 1f)
            return input;
        var src = flip ? FlipLast(input) : input;
        var data = new float[src.Length];
        for (int j = 0; j < data.Length; j++)
            data[j] = src.Data[j] * factor;
        return new HostTensor(input.Shape, data);
    }

    private static HostTensor FlipLast(HostTensor t)
    {
        int w = t.Shape[^1];
        var data = new float[t.Length];
        for (int row = 0; row < t.Length / w; row++)
        {
            for (int j = 0; j < w; j++)
                data[row * w + j] = t.Data[row * w + w - 1 - j];
        }
        return new HostTensor(t.Shape, data);
    }

    private static Explanation FlipMap(Explanation e) => new()
    {
        Image = e.Image, Method = e.Method, TargetClass = e.TargetClass, Score = e.Score, Layers = e.Layers,
        Raw = e.Raw, Map = FlipLast(e.Map),
    };

    private static HostTensor Average(List<HostTensor> maps)
    {
        var sum = new float[maps[0].Length];
        foreach (var m in maps)
        {
            for (int j = 0; j < sum.Length; j++)
                sum[j] += m.Data[j];
        }
        for (int j = 0; j < sum.Length; j++)
            sum[j] /= maps.Count;
        return new HostTensor(maps[0].Shape, sum);
    }

    /// <summary>The forward pass the methods share: when every method reads only its layers and the part of the
    /// graph after them, the lean <see cref="DeviceModel.ForwardFor"/> (the trunk's activations freed as it goes,
    /// same values), else <see cref="DeviceModel.Forward"/>.</summary>
    private ForwardPass ForwardFor(Backends.Tensor x, IReadOnlyList<CamMethod> methods, IReadOnlyList<GraphNode> layers) =>
        layers.Count > 0 && methods.All(m => m.ReadsOnlyLayerSuffix)
            ? Model.ForwardFor(x, layers.Select(l => l.Output).ToList())
            : Model.Forward(x);

    /// <summary>Names the first node (in execution order) whose output holds NaN or infinity.</summary>
    private string FirstNonFinite(ForwardPass forward)
    {
        foreach (var node in Model.Graph.Nodes)
        {
            var values = Model.Backend.Download(forward[node.Output]);
            int at = Array.FindIndex(values, v => !float.IsFinite(v));
            if (at >= 0)
                return $"the model produced a non-finite value ({values[at]}) first in the output of node '{node.Name}' ({node.Op}), element {at}";
        }
        return "the model output holds non-finite values";
    }

    private static void MapOpsGuard(HostTensor input)
    {
        for (int i = 0; i < input.Data.Length; i++)
        {
            if (!float.IsFinite(input.Data[i]))
                throw new InvalidInputException($"the input holds a non-finite value ({input.Data[i]}) at element {i}");
        }
    }
}
