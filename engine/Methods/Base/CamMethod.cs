using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of every explanation method. The shared machinery (forward pass, target selection, reverse pass,
/// capture, post-processing) lives in the engine's explainer and the intermediate bases; a method overrides
/// only what makes it different (pytorch-grad-cam's <c>get_cam_weights</c> pattern).
/// </summary>
public abstract class CamMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected CamMethod()
    {
    }

    /// <summary>Command-line name, e.g. <c>gradcam</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for <c>cam methods</c>.</summary>
    public abstract string Summary { get; }

    /// <summary>The paper that defines it.</summary>
    public abstract string Paper { get; }

    /// <summary>True when the method works at a layer (needs <c>--layer</c>, or the default layer).</summary>
    public abstract bool UsesLayers { get; }

    /// <summary>
    /// True when the method reads from the shared forward pass only its layers' activations and what a reverse
    /// pass from the output to those layers uses, so the explainer may run <see cref="Graph.DeviceModel.ForwardFor"/>,
    /// which frees the rest of the trunk as it goes.
    /// </summary>
    internal virtual bool ReadsOnlyLayerSuffix => false;

    /// <summary>The kinds of batched re-run the method makes (the <see cref="MemoryPlan"/> budgets a batch for each).</summary>
    internal virtual Reruns Reruns => Reruns.None;

    /// <summary>The settings <see cref="WithParameters"/> can change, with their defaults; empty when none.</summary>
    public virtual IReadOnlyList<MethodParameter> Parameters => [];

    /// <summary>
    /// A copy of this method with the settings in <paramref name="values"/> (key to value as text, e.g.
    /// <c>samples</c> to <c>50</c>) changed and every other setting kept; this method itself when
    /// <paramref name="values"/> is empty.
    /// </summary>
    /// <exception cref="CamEngineException">A key is not one of <see cref="Parameters"/> (the message lists them),
    /// or a value does not parse or is out of range.</exception>
    public CamMethod WithParameters(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
            return this;
        var keys = Parameters.Select(p => p.Key).ToList();
        var given = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            string k = key.Trim().ToLowerInvariant();
            if (!keys.Contains(k))
                throw new CamEngineException(
                    $"{Name} has no parameter '{key}'; " + (keys.Count == 0 ? "it has none" : "valid: " + string.Join(", ", keys)));
            if (!given.TryAdd(k, value))
                throw new CamEngineException($"{Name}: parameter '{k}' is given twice");
        }
        return Configure(new ParameterValues(Name, given));
    }

    /// <summary>
    /// Checks that this method can explain <paramref name="target"/>, without running anything: callers (the
    /// command line with <c>--method all</c>, or any batch job) call it before loading inputs, and every explain call
    /// makes the same check before its forward pass.
    /// </summary>
    /// <exception cref="UnsupportedTargetException">The method cannot explain this kind of target; the message names
    /// the method, the target and why.</exception>
    public void CheckTarget(Target target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (TargetRefusal(target) is { } why)
            throw new UnsupportedTargetException($"{Name} cannot explain target '{target}': {why}");
    }

    /// <summary>
    /// Checks that this method can explain <paramref name="model"/> at <paramref name="layers"/>, without running
    /// anything (the transformer-native methods need a vision transformer's self-attention; CAM needs a head it can
    /// read after its layer); every explain call makes the same check before its forward pass.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="layers">The layers the method would work at (names as <c>--layer</c> takes them); null or empty
    /// means the model's default layer. Ignored by methods that do not use layers.</param>
    /// <exception cref="MethodNotApplicableException">The method cannot read this model; the message names the
    /// method and what is missing.</exception>
    /// <exception cref="CamEngineException">A layer name is unknown.</exception>
    public void CheckModel(CamModel model, IReadOnlyList<string>? layers = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.GraphOf;
        // Resolved as every explain call resolves them (an unknown name gets its "did you mean").
        var nodes = !UsesLayers ? [] : model.ResolveLayers(layers ?? []).Select(t => graph.FindByOutput(t)!).ToList();
        CheckModel(graph, nodes);
    }

    internal void CheckModel(ModelGraph graph, IReadOnlyList<GraphNode> layers)
    {
        if (ModelRefusal(graph, layers) is { } why)
            throw new MethodNotApplicableException($"{Name} cannot explain this model: {why}");
    }

    /// <summary>Why this method cannot explain a model with this graph at these layers (empty for methods without
    /// layers), or null when it can.</summary>
    private protected virtual string? ModelRefusal(ModelGraph graph, IReadOnlyList<GraphNode> layers) => null;

    /// <summary>Why this method cannot explain <paramref name="target"/>, or null when it can.</summary>
    private protected virtual string? TargetRefusal(Target target) => null;

    /// <summary>A copy with the given settings; every key is one of <see cref="Parameters"/>.</summary>
    private protected virtual CamMethod Configure(ParameterValues values) => this;

    internal abstract IReadOnlyList<Explanation> Run(ExplainContext context);
}

/// <summary>
/// Everything a method needs about one batch: the model, the forward pass and the targets. Rows: a batch row is
/// one (image, target) pair (a top-k target replicates each image k times); <see cref="Batch"/> counts rows and
/// every per-row member (<see cref="Classes"/>, <see cref="Scores"/>, <see cref="Score"/>) is indexed by row.
/// The <see cref="Explainer"/> maps rows back to image indices in the explanations it returns.
/// </summary>
internal sealed class ExplainContext
{
    public required DeviceModel Model { get; init; }

    public required ForwardPass Forward { get; init; }

    /// <summary>Class of each row; -1 for targets without a class (similarity).</summary>
    public required int[] Classes { get; init; }

    /// <summary>Target score of each row on the unperturbed input.</summary>
    public required float[] Scores { get; init; }

    public required IReadOnlyList<GraphNode> Layers { get; init; }

    /// <summary>How each of <see cref="Layers"/> is read as a (C, h, w) grid (<see cref="LayerLayout"/>); null: every
    /// layer as is, which must then be (C, h, w).</summary>
    public IReadOnlyList<LayerGrid>? Grids { get; init; }

    public Convention Convention { get; init; } = Convention.PytorchGradCam;

    /// <summary>Layer fusion; null means the convention's default (<see cref="CamPostprocess.DefaultFusion"/>).</summary>
    public LayerFusion? Fusion { get; init; }

    /// <summary>pytorch-grad-cam's <c>eigen_smooth</c>: the map is the first principal component of the
    /// per-channel weighted activations instead of their sum.</summary>
    public bool EigenSmooth { get; init; }

    /// <summary>Seed of every random draw a method makes (<c>--seed</c>); same seed, same map.</summary>
    public int RandomSeed { get; init; }

    /// <summary>The input rows (N, C, H, W) on the host, as fed to <see cref="Forward"/>; null when the caller did
    /// not keep them (then methods that re-run the model read <see cref="ForwardPass.Input"/>).</summary>
    public HostTensor? Input { get; init; }

    /// <summary>Score function of each row; null means the raw logit of <see cref="Classes"/>.</summary>
    public TargetRow[]? Targets { get; init; }

    /// <summary>Images per masked, ablated or noisy re-run (Score-CAM, Ablation-CAM, SmoothGrad...): the smallest of the
    /// plan's batches; the planned methods ask <see cref="Plan"/> for their kind's.</summary>
    public int PerturbationBatch { get; init; } = 32;

    /// <summary>The call's memory plan: re-run batch sizes, shared buffers and masks, the pass ledger. A context made
    /// outside the explainer gets a plan of <see cref="PerturbationBatch"/> rows for every kind.</summary>
    public MemoryPlan Plan
    {
        get => _plan ??= MemoryPlan.Fixed(PerturbationBatch);
        init => _plan = value;
    }

    private MemoryPlan? _plan;

    /// <summary>A score other than the target's (Finer-CAM's contrast); null means the target's score.</summary>
    public ScoreObjective? Objective { get; init; }

    public int Batch => Forward.Batch;

    /// <summary>This context with <paramref name="objective"/> as the score to explain.</summary>
    public ExplainContext WithObjective(ScoreObjective objective) => new()
    {
        Model = Model, Forward = Forward, Classes = Classes, Scores = Scores, Layers = Layers,
        Convention = Convention, PerturbationBatch = PerturbationBatch, RandomSeed = RandomSeed, Objective = objective,
        Fusion = Fusion, EigenSmooth = EigenSmooth, Input = Input, Targets = Targets, Grids = Grids, Plan = Plan,
    };

    private readonly Dictionary<int, float[]> _nativeActivations = [];

    /// <summary>Layer <paramref name="layer"/> as the methods see it: its layout and (C, h, w) grid.</summary>
    public LayerGrid Grid(int layer) => Grids?[layer] ?? LayerGrid.AsIs(Layers[layer]);

    /// <summary>The (C, h, w) grid shape of layer <paramref name="layer"/>.</summary>
    public int[] GridShape(int layer) => Grid(layer).Shape;

    /// <summary>The activations of layer <paramref name="layer"/> in the forward pass, (N, C, h, w) row-major.</summary>
    public float[] Activations(int layer)
    {
        var grid = Grid(layer);
        return grid.ToGrid(grid.IsIdentity ? Backend.Download(Forward[Layers[layer].Output]) : NativeActivations(layer));
    }

    /// <summary>dL/d(layer <paramref name="layer"/>) from <paramref name="grads"/>, (N, C, h, w) row-major.</summary>
    public float[] LayerGradients(Gradients grads, int layer)
    {
        ArgumentNullException.ThrowIfNull(grads);
        return Grid(layer).ToGrid(Backend.Download(grads.Layers[Layers[layer].Output]));
    }

    /// <summary>
    /// Runs the layers after layer <paramref name="layer"/> with its activations replaced by <paramref name="m"/>
    /// grids (m, C, h, w), row r standing for row <paramref name="rows"/>[r] of the forward pass (the layer's tensor is
    /// written through the inverse of its layout; dropped leading tokens keep that row's values).
    /// </summary>
    public ForwardPass ForwardFromGrid(int layer, ReadOnlySpan<float> grids, int m, int[] rows)
    {
        var grid = Grid(layer);
        var node = Layers[layer];
        var native = grid.ToNative(grids, m, grid.IsIdentity ? [] : NativeActivations(layer), rows);
        using var replaced = Backend.Upload(native, [m, .. node.Shape]);
        return Model.ForwardFrom(Forward, node.Output, replaced, rows);
    }

    /// <summary>One image's grid (C, h, w) of layer <paramref name="layer"/> in the layer's own layout, the dropped
    /// leading tokens taken from row <paramref name="row"/> of the forward pass.</summary>
    public float[] NativeRow(int layer, ReadOnlySpan<float> grid, int row)
    {
        var g = Grid(layer);
        return g.ToNative(grid, 1, g.IsIdentity ? [] : NativeActivations(layer), [row]);
    }

    // The layer's own (N, native...) values, downloaded once per context.
    private float[] NativeActivations(int layer)
    {
        if (!_nativeActivations.TryGetValue(layer, out var a))
            _nativeActivations[layer] = a = Backend.Download(Forward[Layers[layer].Output]);
        return a;
    }

    public Backend Backend => Model.Backend;

    /// <summary>Row <paramref name="image"/>'s score as a function with exact higher derivatives.</summary>
    public Autodiff.ScoreFunction ScoreFunctionFor(int image)
    {
        if (Objective != null)
            throw new CamEngineException("higher-order derivatives of a custom objective are not available");
        return Targets is { } t ? t[image].Score : Autodiff.ScoreFunction.Logit(Classes[image]);
    }

    /// <summary>The score of row <paramref name="image"/> given a model output row (for masked or perturbed re-runs
    /// of that row's image): the <see cref="Objective"/> when set, else the row's <see cref="Target"/>.</summary>
    public float Score(int image, ReadOnlySpan<float> outputRow) =>
        Objective != null ? Objective.Score(image, outputRow)
        : Targets is { } t ? t[image].Score.Value(outputRow) : outputRow[Classes[image]];

    /// <summary>d score / d(output row) for row <paramref name="image"/>, written into <paramref name="gradient"/>.</summary>
    public void ScoreGradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient)
    {
        if (Objective != null)
        {
            Objective.Gradient(image, outputRow, gradient);
            return;
        }
        if (Targets is { } t)
        {
            t[image].Score.Gradient(outputRow, gradient);
            return;
        }
        gradient.Clear();
        gradient[Classes[image]] = 1f;
    }

    /// <summary>dL/d(output) for the whole batch, L = sum_i score_i: one row per batch row.</summary>
    public Tensor Seed() => SeedFor(Forward);

    /// <summary>dL/d(output) of another forward pass over the same rows (e.g. a noisy copy of the input).</summary>
    public Tensor SeedFor(ForwardPass pass)
    {
        ArgumentNullException.ThrowIfNull(pass);
        if (pass.Batch != Batch)
            throw new CamEngineException($"a pass of {pass.Batch} rows cannot take the targets of {Batch} rows");
        var output = pass.Output;
        var values = Backend.Download(output);
        int k = output.Length / Batch;
        var seed = new float[output.Length];
        for (int i = 0; i < Batch; i++)
            ScoreGradient(i, values.AsSpan(i * k, k), seed.AsSpan(i * k, k));
        return Backend.Upload(seed, output.Shape);
    }

    /// <summary>A random source seeded from <see cref="RandomSeed"/> and a method-specific salt.</summary>
    public Random NewRandom(int salt = 0) => new(unchecked(RandomSeed * 7919 + salt));
}

/// <summary>A scalar score of one image's model output and its gradient (a method's own objective).</summary>
internal abstract class ScoreObjective
{
    /// <summary>The score of image <paramref name="image"/> from its output row.</summary>
    public abstract float Score(int image, ReadOnlySpan<float> outputRow);

    /// <summary>d score / d(output row), written into <paramref name="gradient"/>.</summary>
    public abstract void Gradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient);
}
