using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Tensors;

namespace CamEngine;

/// <summary>
/// Evaluating explanations: faithfulness metrics that perturb the preprocessed input guided by the maps and score
/// the perturbed copies with this model, batched (the metric options' <c>BatchSize</c> inputs per forward pass).
/// Each metric comes in three forms: over results of <see cref="Explain(IReadOnlyList{string}, IReadOnlyList{CamMethod}, ExplainOptions?, IProgress{ExplainProgress}?, CancellationToken)"/>
/// and its siblings (one method's results), and over image files with a method name or a configured method
/// object (one call explains, then evaluates). Perturbations act on the normalized input tensor, as in
/// pytorch-grad-cam and TorchCAM: a zero is the dataset mean colour.
/// <example><code>
/// using var model = CamModel.Load("models/tiny_resnet.safetensors");
/// var deletion = model.EvaluateDeletion(["cat.jpg", "dog.jpg"], "gradcam");
/// Console.WriteLine($"deletion AUC {deletion.MeanAuc:F3} (lower is better)");
/// var drop = model.EvaluateConfidenceChange(model.Explain(["cat.jpg"], "scorecam"));
/// Console.WriteLine($"average drop {drop.AverageDrop:P1}");
/// </code></example>
/// </summary>
public sealed partial class CamModel
{
    /// <summary>
    /// Average drop and increase in confidence (Chattopadhyay et al., "Grad-CAM++", WACV 2018): every channel of
    /// the input is multiplied pixel-wise by the map, and the class score on the product is compared with the
    /// score on the input (pytorch-grad-cam's <c>CamMultImageConfidenceChange</c>, TorchCAM's
    /// <c>ClassificationMetric</c>).
    /// </summary>
    /// <param name="results">One method's results from this model, with a class each.</param>
    /// <param name="options">Batch size and score (default the softmax probability).</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between forward passes.</param>
    /// <returns>Per-result scores in the order of <paramref name="results"/>, and their summaries.</returns>
    /// <exception cref="ArgumentException">No results, or results of several methods.</exception>
    /// <exception cref="CamEngineException">A result comes from a model with another input, or has no class.</exception>
    public ConfidenceChangeResult EvaluateConfidenceChange(
        IReadOnlyList<CamResult> results, MetricOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (input, explanations) = MetricInput(results);
        return Evaluator().ConfidenceChange(input, explanations, options, progress, cancellationToken);
    }

    /// <summary>Explains image files with one method, then measures the average drop and increase in confidence
    /// (see <see cref="EvaluateConfidenceChange(IReadOnlyList{CamResult}, MetricOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</summary>
    /// <param name="imagePaths">Photos or .npy files, as <see cref="Explain(IReadOnlyList{string}, string, ExplainOptions?, IProgress{ExplainProgress}?, CancellationToken)"/> takes them.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Batch size and score.</param>
    /// <param name="progress">Reports the stage <c>explain</c> (images done), then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One score per map, ordered by image (then target rank for a top-k target).</returns>
    public ConfidenceChangeResult EvaluateConfidenceChange(
        IReadOnlyList<string> imagePaths, string method, ExplainOptions? explainOptions = null,
        MetricOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateConfidenceChange(imagePaths, MethodCatalog.Get(method), explainOptions, options, progress, cancellationToken);

    /// <summary>Explains image files with a configured method object, then measures the average drop and
    /// increase in confidence.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Batch size and score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One score per map, ordered by image.</returns>
    public ConfidenceChangeResult EvaluateConfidenceChange(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions = null,
        MetricOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateConfidenceChange(ExplainForMetric(imagePaths, method, explainOptions, progress, cancellationToken),
            options, progress, cancellationToken);

    /// <summary>
    /// Deletion (Petsiuk et al., "RISE", BMVC 2018): pixels are ranked by the map (highest first; ties by
    /// row-major index) and replaced, all channels together, by the baseline in steps of ceil(H W / steps) pixels;
    /// the curve is the class score against the fraction deleted. A faithful map makes the score fall fast: lower
    /// area is better.
    /// </summary>
    /// <param name="results">One method's results from this model, with a class each.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between forward passes.</param>
    /// <returns>One curve per result, in the order of <paramref name="results"/>; a curve's <c>Image</c> is the
    /// index of its image among the distinct images of <paramref name="results"/> in order of first appearance
    /// (for the results of one Explain call, <see cref="CamResult.ImageIndex"/>).</returns>
    /// <exception cref="ArgumentException">No results, or results of several methods.</exception>
    /// <exception cref="CamEngineException">A result comes from a model with another input, or has no class.</exception>
    public DeletionInsertionResult EvaluateDeletion(
        IReadOnlyList<CamResult> results, DeletionInsertionOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (input, explanations) = MetricInput(results);
        return Evaluator().Deletion(input, explanations, options, progress, cancellationToken);
    }

    /// <summary>Explains image files with one method, then measures deletion (see
    /// <see cref="EvaluateDeletion(IReadOnlyList{CamResult}, DeletionInsertionOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One curve per map, ordered by image.</returns>
    public DeletionInsertionResult EvaluateDeletion(
        IReadOnlyList<string> imagePaths, string method, ExplainOptions? explainOptions = null,
        DeletionInsertionOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateDeletion(imagePaths, MethodCatalog.Get(method), explainOptions, options, progress, cancellationToken);

    /// <summary>Explains image files with a configured method object, then measures deletion.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One curve per map, ordered by image.</returns>
    public DeletionInsertionResult EvaluateDeletion(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions = null,
        DeletionInsertionOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateDeletion(ExplainForMetric(imagePaths, method, explainOptions, progress, cancellationToken),
            options, progress, cancellationToken);

    /// <summary>
    /// Insertion (RISE): the mirror of deletion: starting from the baseline, the input's pixels are put back in
    /// the map's order. A faithful map makes the score rise fast: higher area is better.
    /// </summary>
    /// <param name="results">One method's results from this model, with a class each.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between forward passes.</param>
    /// <returns>One curve per result, in the order of <paramref name="results"/> (image indices as for
    /// <see cref="EvaluateDeletion(IReadOnlyList{CamResult}, DeletionInsertionOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</returns>
    /// <exception cref="ArgumentException">No results, or results of several methods.</exception>
    /// <exception cref="CamEngineException">A result comes from a model with another input, or has no class.</exception>
    public DeletionInsertionResult EvaluateInsertion(
        IReadOnlyList<CamResult> results, DeletionInsertionOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (input, explanations) = MetricInput(results);
        return Evaluator().Insertion(input, explanations, options, progress, cancellationToken);
    }

    /// <summary>Explains image files with one method, then measures insertion.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One curve per map, ordered by image.</returns>
    public DeletionInsertionResult EvaluateInsertion(
        IReadOnlyList<string> imagePaths, string method, ExplainOptions? explainOptions = null,
        DeletionInsertionOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateInsertion(imagePaths, MethodCatalog.Get(method), explainOptions, options, progress, cancellationToken);

    /// <summary>Explains image files with a configured method object, then measures insertion.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then perturbed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>One curve per map, ordered by image.</returns>
    public DeletionInsertionResult EvaluateInsertion(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions = null,
        DeletionInsertionOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateInsertion(ExplainForMetric(imagePaths, method, explainOptions, progress, cancellationToken),
            options, progress, cancellationToken);

    /// <summary>
    /// ROAD, remove and debias (Rong, Leemann et al., ICML 2022), with pytorch-grad-cam's semantics: for each
    /// percentile, MoRF imputes the most relevant pixels and LeRF the least relevant ones by noisy linear
    /// imputation (seeded), and the class scores after imputation are compared with the score on the input; the
    /// model is not retrained.
    /// </summary>
    /// <param name="results">One method's results from this model, with a class each.</param>
    /// <param name="options">Percentiles, noise, seed, batch size, score.</param>
    /// <param name="progress">Reports imputed inputs scored.</param>
    /// <param name="cancellationToken">Checked between forward passes.</param>
    /// <returns>Per-result scores in the order of <paramref name="results"/>, and the combined score.</returns>
    /// <exception cref="ArgumentException">No results, or results of several methods.</exception>
    /// <exception cref="CamEngineException">A result comes from a model with another input, or has no class.</exception>
    public RoadResult EvaluateRoad(
        IReadOnlyList<CamResult> results, RoadOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (input, explanations) = MetricInput(results);
        return Evaluator().Road(input, explanations, options, progress, cancellationToken);
    }

    /// <summary>Explains image files with one method, then measures ROAD.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Percentiles, noise, seed, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then imputed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>Scores per map, ordered by image.</returns>
    public RoadResult EvaluateRoad(
        IReadOnlyList<string> imagePaths, string method, ExplainOptions? explainOptions = null,
        RoadOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateRoad(imagePaths, MethodCatalog.Get(method), explainOptions, options, progress, cancellationToken);

    /// <summary>Explains image files with a configured method object, then measures ROAD.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">Percentiles, noise, seed, batch size, score.</param>
    /// <param name="progress">Reports the stage <c>explain</c>, then imputed inputs scored.</param>
    /// <param name="cancellationToken">Checked between batches and forward passes.</param>
    /// <returns>Scores per map, ordered by image.</returns>
    public RoadResult EvaluateRoad(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions = null,
        RoadOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateRoad(ExplainForMetric(imagePaths, method, explainOptions, progress, cancellationToken),
            options, progress, cancellationToken);

    /// <summary>
    /// The sanity check of Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018), cascading
    /// model-parameter randomization: the parameterized layers are re-drawn from the output layer down (each
    /// tensor from a normal distribution with its own mean and standard deviation, seeded), and after each step the
    /// maps are recomputed for the original classes and compared with the original maps by Spearman's rank
    /// correlation. A method whose maps depend on the model ends with a low correlation. The original weights are
    /// put back when the call returns, also when it throws or is cancelled; other calls on this model wait until
    /// then.
    /// </summary>
    /// <param name="imagePaths">Photos or .npy files (one map per image: no top-k target).</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">The seed.</param>
    /// <param name="progress">Reports randomization steps finished (stage <c>sanity</c>).</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The original explanations and one step per randomized layer.</returns>
    public SanityCheckResult EvaluateSanity(
        IReadOnlyList<string> imagePaths, string method, ExplainOptions? explainOptions = null,
        SanityCheckOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        EvaluateSanity(imagePaths, MethodCatalog.Get(method), explainOptions, options, progress, cancellationToken);

    /// <summary>The sanity check (cascading randomization) of a configured method object on image files (see
    /// <see cref="EvaluateSanity(IReadOnlyList{string}, string, ExplainOptions?, SanityCheckOptions?, IProgress{MetricProgress}?, CancellationToken)"/>).</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">The seed.</param>
    /// <param name="progress">Reports randomization steps finished.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The original explanations and one step per randomized layer.</returns>
    public SanityCheckResult EvaluateSanity(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions = null,
        SanityCheckOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        cancellationToken.ThrowIfCancellationRequested();
        var images = LoadImages(imagePaths);
        if (images.Count == 0)
            throw new ArgumentException("no images given", nameof(imagePaths));
        return Sanity(InputLoader.Stack(images.Select(s => s.Image).ToList()), method, explainOptions, options,
            progress, cancellationToken);
    }

    /// <summary>The sanity check (cascading randomization) on a preprocessed batch (N, C, H, W).</summary>
    /// <param name="batch">Model inputs, already normalized as the model expects.</param>
    /// <param name="method">The method.</param>
    /// <param name="explainOptions">Layers, target, convention...; null for the defaults.</param>
    /// <param name="options">The seed.</param>
    /// <param name="progress">Reports randomization steps finished.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The original explanations (image indices into <paramref name="batch"/>) and one step per
    /// randomized layer.</returns>
    /// <exception cref="InvalidInputException">The batch's shape is not (N, C, H, W) of the model input.</exception>
    public SanityCheckResult EvaluateSanity(
        HostTensor batch, CamMethod method, ExplainOptions? explainOptions = null,
        SanityCheckOptions? options = null, IProgress<MetricProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        return Sanity(CheckBatch(batch), method, explainOptions, options, progress, cancellationToken);
    }

    /// <summary>
    /// The pointing game (Zhang et al., ECCV 2016) over results: a map hits when its maximum lies on the object or
    /// within <paramref name="tolerance"/> pixels of it; also the share of the map's mass on the object (Score-CAM's
    /// energy-based variant). Needs no model.
    /// </summary>
    /// <param name="results">The results, any methods.</param>
    /// <param name="truths">One ground truth per result, at the map's size (<see cref="CamResult.Height"/> x
    /// <see cref="CamResult.Width"/>), e.g. <see cref="GroundTruth.FromBoxes"/>.</param>
    /// <param name="tolerance">Acceptance radius in pixels (default 15, TorchRay's).</param>
    /// <returns>Hits, energies and maxima in the order of <paramref name="results"/>.</returns>
    public static PointingGameResult EvaluatePointingGame(
        IReadOnlyList<CamResult> results, IReadOnlyList<GroundTruth> truths,
        double tolerance = PointingGame.DefaultTolerance)
    {
        ArgumentNullException.ThrowIfNull(results);
        return PointingGame.Evaluate(results.Select(r => r.Explanation.Map).ToList(), truths, tolerance);
    }

    private MetricEvaluator Evaluator() => new(Live()._explainer);

    private SanityCheckResult Sanity(
        HostTensor input, CamMethod method, ExplainOptions? explainOptions, SanityCheckOptions? options,
        IProgress<MetricProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(method);
        // The check re-draws this model's weights: hold the device for the whole call so that no other call sees
        // a randomized model (the lock is re-entrant; the evaluator and explainer take it again inside).
        using (_backend.SyncRoot.EnterScope())
        {
            Live();
            return Evaluator().SanityCheck(input, method, explainOptions, options, progress, cancellationToken);
        }
    }

    /// <summary>Explains for a metric, reporting the explain batches as the stage <c>explain</c>.</summary>
    private List<CamResult> ExplainForMetric(
        IReadOnlyList<string> imagePaths, CamMethod method, ExplainOptions? explainOptions,
        IProgress<MetricProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        ArgumentNullException.ThrowIfNull(method);
        cancellationToken.ThrowIfCancellationRequested();
        var explainProgress = progress is null
            ? null
            : new SyncProgress<ExplainProgress>(p => progress.Report(new MetricProgress("explain", p.ImagesDone, p.ImageCount)));
        return ExplainCore(LoadImages(imagePaths), [method], explainOptions, explainProgress, cancellationToken);
    }

    /// <summary>
    /// The batch the metrics perturb and the explanations over it: the distinct inputs of <paramref name="results"/>
    /// (by reference: every result of one image shares its input) stacked in order of first appearance, and each
    /// result's explanation with its image index into that batch.
    /// </summary>
    private (HostTensor Input, List<Explanation> Explanations) MetricInput(IReadOnlyList<CamResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        Live();
        if (results.Count == 0)
            throw new ArgumentException("no results to evaluate", nameof(results));
        if (results.Any(r => r is null))
            throw new ArgumentException("a result is null", nameof(results));
        if (results.Select(r => r.Method).Distinct(StringComparer.Ordinal).Count() > 1)
            throw new ArgumentException(
                "the results come from several methods; evaluate each method's results separately", nameof(results));
        var index = new Dictionary<HostTensor, int>(ReferenceEqualityComparer.Instance);
        var inputs = new List<HostTensor>();
        var explanations = new List<Explanation>(results.Count);
        foreach (var r in results)
        {
            if (!index.TryGetValue(r.Input, out int i))
            {
                index[r.Input] = i = inputs.Count;
                inputs.Add(r.Input);
            }
            var e = r.Explanation;
            explanations.Add(e.Image == i
                ? e
                : new Explanation
                {
                    Image = i, Method = e.Method, TargetClass = e.TargetClass, Score = e.Score, Layers = e.Layers,
                    Map = e.Map, Raw = e.Raw, Weights = e.Weights,
                });
        }
        var want = _graph.InputShape;
        foreach (var x in inputs)
        {
            if (x.Shape.Length != 4 || x.Shape[0] != 1 || !x.Shape.AsSpan(1).SequenceEqual(want))
                throw new CamEngineException(
                    $"a result was computed on an input of shape {x.ShapeText}; this model takes (1,{string.Join(",", want)})");
        }
        var batch = inputs.Count == 1 ? inputs[0] : Stack(inputs);
        return (batch, explanations);
    }

    private static HostTensor Stack(List<HostTensor> inputs)
    {
        int size = inputs[0].Length;
        var data = new float[checked(size * inputs.Count)];
        for (int i = 0; i < inputs.Count; i++)
            inputs[i].Data.CopyTo(data, i * size);
        var one = inputs[0].Shape;
        return new HostTensor([inputs.Count, one[1], one[2], one[3]], data);
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (no synchronization context
    /// hop), so the explain stage's reports arrive before the metric's.</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
