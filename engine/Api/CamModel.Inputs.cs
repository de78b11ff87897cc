using CamEngine.IO;
using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Model;

namespace CamEngine;

/// <summary>Inputs read once and explained by several methods; names (targets, layers) resolved with suggestions.</summary>
public sealed partial class CamModel
{
    /// <summary>Reads a model file's layers, shapes, parameters, preprocessing and labels without opening a device.</summary>
    /// <param name="path">The model file.</param>
    /// <exception cref="CamEngineException">The file is missing, unreadable or invalid.</exception>
    public static ModelSummary Inspect(string path) => new(ModelFile.Load(path));

    /// <summary>Reads a model file's contents (e.g. what the ONNX converter returned) without opening a device.</summary>
    /// <param name="bytes">The model file's bytes.</param>
    /// <exception cref="CamEngineException">The bytes hold no valid model.</exception>
    public static ModelSummary Inspect(ReadOnlyMemory<byte> bytes) => new(ModelFile.FromBytes(bytes.Span));

    /// <summary>Largest labels file <see cref="ReadLabels(string)"/> reads.</summary>
    public const int MaxLabelsFileBytes = 16 << 20;

    /// <summary>
    /// Reads a labels file: one label per line (UTF-8; blank lines at the end dropped), at most
    /// <see cref="MaxLabelsFileBytes"/> bytes counted as they are read, so a device or pipe without a length is
    /// refused at the limit instead of filling memory.
    /// </summary>
    /// <param name="path">The labels file.</param>
    /// <exception cref="InvalidInputException">The file is missing, larger than the limit, or not UTF-8 text.</exception>
    public static IReadOnlyList<string> ReadLabels(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var lines = BoundedReader.ReadAllLines(path, MaxLabelsFileBytes).ToList();
        while (lines.Count > 0 && lines[^1].Trim().Length == 0)
            lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    /// <summary>This model's layers, shapes, parameters, preprocessing and labels.</summary>
    public ModelSummary Summary => new(Live()._graph, _parameterCount);

    /// <summary>Reads one image file for this model: a photo (decoded, resized, centre-cropped and normalized as the
    /// model file says) or a preprocessed float32 .npy of shape (C, H, W) or (N, C, H, W) (N inputs).</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="CamEngineException">The file is unreadable or does not fit the model input.</exception>
    public IReadOnlyList<CamInput> LoadInputs(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return InputLoader.Load(path, Live()._graph).Select(i => new CamInput(i, path)).ToList();
    }

    /// <summary>
    /// Explains inputs read by <see cref="LoadInputs(string)"/> with every method in one batch (so pass at most as many
    /// inputs as fit the device): one forward pass and one memory plan shared by the methods, which run in turn.
    /// </summary>
    /// <param name="inputs">The inputs of this batch.</param>
    /// <param name="methods">The methods (distinct names).</param>
    /// <param name="options">Layers, target, convention, memory budget...; null for the defaults. A per-image target
    /// (<see cref="Target.PerImage"/>) must list one class per input of this call.</param>
    /// <param name="timings">When not null, receives each method's own milliseconds for the batch (the shared forward
    /// pass is not in them: it is in <paramref name="ledger"/> as <see cref="PassLedger.SharedForward"/>).</param>
    /// <param name="ledger">When not null, collects each method's re-run passes, batch sizes and times (a run's
    /// breakdown, over all its batches).</param>
    /// <returns>Every map, ordered by method (in the order given), then input, then target rank (top-k).</returns>
    public IReadOnlyList<CamResult> Explain(
        IReadOnlyList<CamInput> inputs, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null,
        IDictionary<string, double>? timings = null, PassLedger? ledger = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(methods);
        if (inputs.Count == 0)
            return [];
        Live();
        options ??= new ExplainOptions();
        var sources = inputs.Select(i => new Source(i.Image, i.Source)).ToList();
        var labels = _labels;
        var stacked = InputLoader.Stack(inputs.Select(i => i.Image).ToList());
        var calls = new PassLedger();
        var byMethod = _explainer.Explain(stacked, methods, options, calls);
        var breakdown = calls.Snapshot();
        ledger?.Add(calls);
        var results = new List<CamResult>();
        foreach (var method in methods)
        {
            if (timings != null)
                timings[method.Name] = breakdown.Methods.FirstOrDefault(m => m.Method == method.Name)?.WallMs ?? 0;
            foreach (var e in byMethod[method.Name])
            {
                var source = sources[e.Image];
                string? label = labels != null && e.TargetClass >= 0 && e.TargetClass < labels.Length ? labels[e.TargetClass] : null;
                results.Add(new CamResult(e, e.Image, source.Path, source.Image.Display, label, source.Image.Input,
                    _graph.Preprocessing) { Photo = source.Image.Photo });
            }
        }
        return results;
    }

    /// <summary>The sanity check (cascading randomization) of a method on inputs read by <see cref="LoadInputs(string)"/>
    /// (see <see cref="EvaluateSanity(IReadOnlyList{string}, Methods.CamMethod, ExplainOptions?, Metrics.SanityCheckOptions?, IProgress{Metrics.MetricProgress}?, CancellationToken)"/>).</summary>
    /// <param name="inputs">The inputs.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">The seed.</param>
    /// <param name="progress">Reports randomization steps finished.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    public Metrics.SanityCheckResult EvaluateSanity(
        IReadOnlyList<CamInput> inputs, CamMethod method, ExplainOptions? explainOptions = null,
        Metrics.SanityCheckOptions? options = null, IProgress<Metrics.MetricProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0)
            throw new ArgumentException("no inputs given", nameof(inputs));
        return EvaluateSanity(InputLoader.Stack(inputs.Select(i => i.Image).ToList()), method, explainOptions, options, progress, cancellationToken);
    }

    /// <summary>The <paramref name="top"/> highest-scoring classes of each input, with softmax probabilities.</summary>
    /// <param name="inputs">Inputs read by <see cref="LoadInputs(string)"/>, one batch.</param>
    /// <param name="top">How many classes per input, highest first.</param>
    public IReadOnlyList<IReadOnlyList<Prediction>> Predict(IReadOnlyList<CamInput> inputs, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0)
            return [];
        return PredictCore(InputLoader.Stack(inputs.Select(i => i.Image).ToList()), top);
    }

    /// <summary>The raw outputs of each input, flattened (N x outputs values).</summary>
    /// <param name="inputs">Inputs read by <see cref="LoadInputs(string)"/>, one batch.</param>
    public float[] Outputs(IReadOnlyList<CamInput> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        return _explainer.Outputs(InputLoader.Stack(inputs.Select(i => i.Image).ToList()));
    }

    /// <summary>
    /// True when the model's output is an embedding, not class scores: it has no class labels and its last
    /// operator is not a linear map (a featurizer ending in pooling, flatten or reshape, like ML.NET's ResNet-18).
    /// Softmax probabilities over an embedding's channels mean nothing; <c>cam predict</c> prints the values instead.
    /// </summary>
    public bool IsEmbedding
    {
        get
        {
            var g = Live()._graph;
            if (_labels is { Length: > 0 } || g.Nodes.Count == 0)
                return false;
            var last = g.FindByOutput(g.OutputName) ?? g.Nodes[^1];
            return last.Op.ToLowerInvariant() is not ("gemm" or "matmul" or "linear" or "conv" or "add" or "softmax" or "logsoftmax");
        }
    }

    /// <summary>
    /// A target from its text: <c>top1</c>, a class index, <c>topK</c>, <c>softmax[:C]</c>, a class label (case
    /// ignored), <c>C1,C2,...</c> (one class index or label per image, in order), <c>similar:IMAGE</c> or
    /// <c>cosine:IMAGE</c> (IMAGE is read and embedded with this model).
    /// </summary>
    /// <param name="text">The target as typed.</param>
    /// <exception cref="CamEngineException">Unknown target or label (with a suggestion), an ambiguous label (with
    /// its matches), a class outside the model's output, or an unreadable reference image.</exception>
    public Target ParseTarget(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var labels = Live()._labels;
        string t = text.Trim();
        foreach (var (prefix, cosine) in new[] { ("similar:", false), ("cosine:", true) })
        {
            if (!t.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                continue;
            string path = t[prefix.Length..];
            var reference = LoadInputs(path);
            if (reference.Count != 1)
                throw new CamEngineException($"the reference '{path}' holds {reference.Count} images; give one");
            return Target.Similarity(Outputs(reference), cosine);
        }
        int classes = OutputShape.Aggregate(1, (a, b) => a * b);
        int Check(int c) => c < classes
            ? c
            : throw new CamEngineException(string.Create(CultureInfo.InvariantCulture,
                $"target class {c} is outside the model's {classes} outputs (0 to {classes - 1})"));
        if (labels is { Length: > 0 } && labels.Any(l => string.Equals(l.Trim(), t, StringComparison.OrdinalIgnoreCase)))
            return Target.Class(CamNames.ResolveLabel(t, labels));
        if (t.Contains(',', StringComparison.Ordinal))
        {
            var parts = t.Split(',', StringSplitOptions.TrimEntries);
            return Target.PerImage(parts.Select(p => Check(ClassOf(p, labels))).ToArray());
        }
        if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
            return Target.Class(Check(c));
        try
        {
            return Target.Parse(t);
        }
        catch (CamEngineException) when (labels is { Length: > 0 })
        {
            return Target.Class(CamNames.ResolveLabel(t, labels));
        }
        catch (CamEngineException e)
        {
            string? near = CamNames.Suggest(t, ["top1", "softmax", "similar:", "cosine:"]);
            throw near != null ? new CamEngineException($"unknown target '{text}'; did you mean '{near}'?", e) : e;
        }
    }

    private static int ClassOf(string part, string[]? labels)
    {
        if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
            return c;
        if (labels is { Length: > 0 })
            return CamNames.ResolveLabel(part, labels);
        throw new CamEngineException($"'{part}' is not a class index, and the model has no labels");
    }

    /// <summary>
    /// The layers that <see cref="ExplainOptions.Layers"/> names, resolved to their output tensors: output tensor
    /// names, node names or PyTorch module paths (<c>layer4</c>); none names the default layer.
    /// </summary>
    /// <param name="names">The layer names as typed.</param>
    /// <exception cref="CamEngineException">A name matches no layer; the message suggests the nearest one.</exception>
    public IReadOnlyList<string> ResolveLayers(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var g = Live()._graph;
        if (names.Count == 0)
            return [g.DefaultTargetLayer().Output];
        var resolved = new List<string>();
        foreach (var name in names)
        {
            try
            {
                resolved.Add(g.ResolveLayer(name).Output);
            }
            catch (CamEngineException e)
            {
                var modules = g.Nodes.SelectMany(n => ModelGraph.ModulePaths(n.Name));
                string? near = CamNames.Suggest(name, g.Nodes.Select(n => n.Output).Concat(g.Nodes.Select(n => n.Name)).Concat(modules));
                throw near != null ? new CamEngineException($"unknown layer '{name}'; did you mean '{near}'? (see `cam info`)", e) : e;
            }
        }
        return resolved;
    }

    /// <summary>
    /// How each layer that <paramref name="names"/> names (as <see cref="ResolveLayers"/> resolves them) is read as the
    /// (C, h, w) grid the layer methods see under <paramref name="layout"/> (<see cref="ExplainOptions.Layout"/>): the
    /// layout (with <c>auto</c>, the one the graph says), the grid and why.
    /// </summary>
    /// <exception cref="CamEngineException">A name matches no layer, or the layout does not fit a layer (a token count
    /// that leaves no square grid, a rank the layout cannot read); the message names the layer.</exception>
    public IReadOnlyList<LayerReading> ReadLayers(IReadOnlyList<string> names, LayerLayout layout)
    {
        var resolved = ResolveLayers(names);
        var g = Live()._graph;
        var layouts = LayerLayouts.Of(g);
        return resolved.Select(name => layouts.Read(g.FindByOutput(name)!, layout)).ToList();
    }
}
