using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine;

/// <summary>Explaining: one image or a batch, one method or several.</summary>
public sealed partial class CamModel
{
    /// <summary>Explains one image file with one method.</summary>
    /// <param name="imagePath">A PNG, JPEG or BMP photo (preprocessed as the model file says), or a preprocessed
    /// float32 .npy of shape (C, H, W).</param>
    /// <param name="method">A method name from <see cref="Methods"/>, e.g. <c>gradcam</c>.</param>
    /// <param name="options">Layers, target, convention...; null: the default layer, the top-1 class, the
    /// pytorch-grad-cam convention.</param>
    /// <returns>The map for the image's target class.</returns>
    /// <exception cref="CamEngineException">Unreadable image, unknown method or layer, or a target that gives
    /// several maps (top-k: use <see cref="Explain(IReadOnlyList{string}, IReadOnlyList{CamMethod}, ExplainOptions?, IProgress{ExplainProgress}?, CancellationToken)"/>).</exception>
    /// <example><code>
    /// var result = model.Explain("cat.jpg", "gradcam", new ExplainOptions { Layers = ["layer4"], Target = Target.Class(281) });
    /// </code></example>
    public CamResult Explain(string imagePath, string method = "gradcam", ExplainOptions? options = null) =>
        Explain(imagePath, MethodCatalog.Get(method), options);

    /// <summary>Explains one image file with a configured method object (e.g. <c>new SmoothGrad { Samples = 16 }</c>).</summary>
    /// <param name="imagePath">A PNG, JPEG or BMP photo, or a preprocessed float32 .npy of shape (C, H, W).</param>
    /// <param name="method">The method.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <returns>The map for the image's target class.</returns>
    /// <exception cref="CamEngineException">Unreadable image, unknown layer, or a target that gives several maps.</exception>
    public CamResult Explain(string imagePath, CamMethod method, ExplainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(method);
        return Single(ExplainCore(LoadImages([imagePath]), [method], options, null, CancellationToken.None), imagePath);
    }

    /// <summary>Explains one decoded picture (any size: it is resized and centre-cropped as the model file says).</summary>
    /// <param name="image">The picture.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <returns>The map for the picture's target class; its <see cref="CamResult.Image"/> is the centre crop.</returns>
    /// <exception cref="CamEngineException">Unknown method or layer, or a target that gives several maps.</exception>
    public CamResult Explain(RgbImage image, string method = "gradcam", ExplainOptions? options = null) =>
        Explain(image, MethodCatalog.Get(method), options);

    /// <summary>Explains one decoded picture with a configured method object.</summary>
    /// <param name="image">The picture.</param>
    /// <param name="method">The method.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <returns>The map for the picture's target class.</returns>
    /// <exception cref="CamEngineException">Unknown layer, or a target that gives several maps.</exception>
    public CamResult Explain(RgbImage image, CamMethod method, ExplainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(method);
        return Single(ExplainCore([FromPicture(image)], [method], options, null, CancellationToken.None), "the image");
    }

    /// <summary>Explains image files with one or several methods, <see cref="CamModelOptions.BatchSize"/> images
    /// per pass, all methods sharing each forward pass.</summary>
    /// <param name="imagePaths">Photos or .npy files; an (N, C, H, W) .npy counts as N images.</param>
    /// <param name="methods">A method name, comma-separated names (<c>gradcam,layercam</c>) or <c>all</c>.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="progress">Told after each batch how many images are done.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>Every map, ordered by image, then method (in the order given), then target rank (top-k).</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public IReadOnlyList<CamResult> Explain(
        IReadOnlyList<string> imagePaths, string methods, ExplainOptions? options = null,
        IProgress<ExplainProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Explain(imagePaths, ParseMethods(methods), options, progress, cancellationToken);

    /// <summary>Explains image files with configured method objects, <see cref="CamModelOptions.BatchSize"/>
    /// images per pass.</summary>
    /// <param name="imagePaths">Photos or .npy files; an (N, C, H, W) .npy counts as N images.</param>
    /// <param name="methods">The methods (distinct names).</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="progress">Told after each batch how many images are done.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>Every map, ordered by image, then method, then target rank.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public IReadOnlyList<CamResult> Explain(
        IReadOnlyList<string> imagePaths, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null,
        IProgress<ExplainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        cancellationToken.ThrowIfCancellationRequested();
        return ExplainCore(LoadImages(imagePaths), methods, options, progress, cancellationToken);
    }

    /// <summary>Explains a preprocessed batch (N, C, H, W) with configured method objects.</summary>
    /// <param name="batch">Model inputs, already normalized as the model expects.</param>
    /// <param name="methods">The methods (distinct names).</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="progress">Told after each batch how many images are done.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>Every map, ordered by image, then method, then target rank; each with the denormalized input as
    /// its <see cref="CamResult.Image"/>.</returns>
    /// <exception cref="InvalidInputException">The batch's shape is not (N, C, H, W) of the model input.</exception>
    public IReadOnlyList<CamResult> Explain(
        HostTensor batch, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null,
        IProgress<ExplainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        return ExplainCore(FromBatch(batch), methods, options, progress, cancellationToken);
    }

    /// <summary>Explains one image file: the file is read asynchronously, the explanation runs on the thread pool (see <see cref="Explain(string, string, ExplainOptions?)"/>).</summary>
    /// <param name="imagePath">A photo or a (C, H, W) .npy.</param>
    /// <param name="method">A method name from <see cref="Methods"/>.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels reading the file, and the explanation if it has not started.</param>
    /// <returns>The map for the image's target class.</returns>
    public async Task<CamResult> ExplainAsync(
        string imagePath, string method = "gradcam", ExplainOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var m = MethodCatalog.Get(method);
        var images = await LoadImagesAsync([imagePath], cancellationToken).ConfigureAwait(false);
        return Single(await Task.Run(() => ExplainCore(images, [m], options, null, cancellationToken), cancellationToken)
            .ConfigureAwait(false), imagePath);
    }

    /// <summary>Explains image files: the files are read asynchronously, the explanations run on the thread pool (see
    /// <see cref="Explain(IReadOnlyList{string}, string, ExplainOptions?, IProgress{ExplainProgress}?, CancellationToken)"/>).</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="methods">A method name, comma-separated names or <c>all</c>.</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="progress">Told after each batch how many images are done.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>Every map, ordered by image, then method, then target rank.</returns>
    /// <example><code>
    /// var maps = await model.ExplainAsync(files, "gradcam,scorecam",
    ///     progress: new Progress&lt;ExplainProgress&gt;(p => Console.WriteLine($"{p.ImagesDone}/{p.ImageCount}")),
    ///     cancellationToken: ct);
    /// </code></example>
    public Task<IReadOnlyList<CamResult>> ExplainAsync(
        IReadOnlyList<string> imagePaths, string methods, ExplainOptions? options = null,
        IProgress<ExplainProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ExplainAsync(imagePaths, ParseMethods(methods), options, progress, cancellationToken);

    /// <summary>Explains image files with configured method objects: the files are read asynchronously, the
    /// explanations run on the thread pool.</summary>
    /// <param name="imagePaths">Photos or .npy files.</param>
    /// <param name="methods">The methods (distinct names).</param>
    /// <param name="options">Layers, target, convention...; null for the defaults.</param>
    /// <param name="progress">Told after each batch how many images are done.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>Every map, ordered by image, then method, then target rank.</returns>
    public async Task<IReadOnlyList<CamResult>> ExplainAsync(
        IReadOnlyList<string> imagePaths, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null,
        IProgress<ExplainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        ArgumentNullException.ThrowIfNull(methods);
        var images = await LoadImagesAsync(imagePaths, cancellationToken).ConfigureAwait(false);
        return await Task.Run<IReadOnlyList<CamResult>>(
            () => ExplainCore(images, methods, options, progress, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>As <see cref="LoadImages"/>, reading the files asynchronously.</summary>
    private async Task<List<Source>> LoadImagesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        Live();
        var graph = _graph;
        var images = new List<Source>();
        foreach (var path in paths)
        {
            ArgumentNullException.ThrowIfNull(path, nameof(paths));
            cancellationToken.ThrowIfCancellationRequested();
            var loaded = await InputLoader.LoadAsync(path, graph, cancellationToken).ConfigureAwait(false);
            images.AddRange(loaded.Select(i => new Source(i, path)));
        }
        return images;
    }

    /// <summary><c>all</c>, or comma-separated method names (duplicates dropped).</summary>
    internal static IReadOnlyList<CamMethod> ParseMethods(string methods)
    {
        ArgumentNullException.ThrowIfNull(methods);
        var names = methods.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0)
            throw new CamEngineException("no method named; see CamModel.Methods");
        if (names is ["all"])
            return MethodCatalog.All;
        return names.Select(MethodCatalog.Get).DistinctBy(m => m.Name).ToList();
    }

    /// <summary>One image with where it came from (a file, or null).</summary>
    private readonly record struct Source(InputImage Image, string? Path);

    private List<Source> LoadImages(IReadOnlyList<string> paths)
    {
        Live();
        var graph = _graph;
        var images = new List<Source>();
        foreach (var path in paths)
        {
            ArgumentNullException.ThrowIfNull(path, nameof(paths));
            images.AddRange(InputLoader.Load(path, graph).Select(i => new Source(i, path)));
        }
        return images;
    }

    private Source FromPicture(RgbImage image)
    {
        return new Source(InputLoader.FromPhoto("image", image, Live()._graph.Preprocessing), null);
    }

    /// <summary>Throws unless <paramref name="batch"/> is (N, C, H, W) of the model input, N at least 1.</summary>
    private HostTensor CheckBatch(HostTensor batch)
    {
        var want = Live()._graph.InputShape;
        var s = batch.Shape;
        if (s.Length != 4 || s[0] < 1 || !s.AsSpan(1).SequenceEqual(want))
            throw new InvalidInputException(
                $"batch shape {batch.ShapeText} does not match the model input (N,C,H,W) with (C,H,W) = {TensorShape.Format(want)}");
        return batch;
    }

    private List<Source> FromBatch(HostTensor batch)
    {
        var graph = _graph;
        var want = graph.InputShape;
        var s = CheckBatch(batch).Shape;
        int size = batch.Length / s[0];
        var images = new List<Source>(s[0]);
        for (int i = 0; i < s[0]; i++)
        {
            var one = new HostTensor([1, .. want], batch.Data.AsSpan(i * size, size).ToArray());
            var display = want[0] is 3 or 1 ? ImagePreprocessor.ToDisplay(one, graph.Preprocessing) : null;
            images.Add(new Source(new InputImage($"image_{i}", one, display), null));
        }
        return images;
    }

    private static CamResult Single(List<CamResult> results, string what) =>
        results.Count == 1
            ? results[0]
            : throw new CamEngineException(
                $"{what} gives {results.Count} maps (several images in one file, or a top-k target); use the Explain overload for a list of images");

    /// <summary>The batches: every method over <see cref="_batchSize"/> images at a time, one forward pass each.</summary>
    private List<CamResult> ExplainCore(
        List<Source> images, IReadOnlyList<CamMethod> methods, ExplainOptions? options,
        IProgress<ExplainProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(methods);
        if (methods.Count == 0)
            throw new ArgumentException("no method given", nameof(methods));
        if (methods.Any(m => m is null))
            throw new ArgumentException("a method is null", nameof(methods));
        if (methods.DistinctBy(m => m.Name).Count() != methods.Count)
            throw new ArgumentException("two methods share a name; their maps would be indistinguishable", nameof(methods));
        options ??= new ExplainOptions();
        var labels = _labels;
        var results = new List<CamResult>();
        for (int start = 0; start < images.Count; start += _batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Live();
            int count = Math.Min(_batchSize, images.Count - start);
            var chunk = images.GetRange(start, count);
            var byMethod = _explainer.Explain(
                InputLoader.Stack(chunk.Select(s => s.Image).ToList()), methods, ForImages(options, start, count));
            foreach (var method in methods)
            {
                foreach (var e in byMethod[method.Name])
                {
                    var source = chunk[e.Image];
                    string? label = labels != null && e.TargetClass >= 0 && e.TargetClass < labels.Length ? labels[e.TargetClass] : null;
                    results.Add(new CamResult(e, start + e.Image, source.Path, source.Image.Display, label, source.Image.Input,
                        _graph.Preprocessing)
                    {
                        Photo = source.Image.Photo,
                    });
                }
            }
            progress?.Report(new ExplainProgress(start + count, images.Count));
        }
        // Stable: within an image, method order then target rank, as the explainer produced them.
        return results.OrderBy(r => r.ImageIndex).ToList();
    }

    /// <summary><paramref name="options"/> for images start .. start + count - 1: a per-image target is cut to
    /// them, everything else is kept.</summary>
    internal static ExplainOptions ForImages(ExplainOptions options, int start, int count)
    {
        var target = options.Target.ForImages(start, count);
        return ReferenceEquals(target, options.Target)
            ? options
            : new ExplainOptions
            {
                Layers = options.Layers, Target = target, Convention = options.Convention,
                MemoryBudgetBytes = options.MemoryBudgetBytes, Fusion = options.Fusion, AugSmooth = options.AugSmooth,
                EigenSmooth = options.EigenSmooth, PerturbationBatch = options.PerturbationBatch, Seed = options.Seed,
                Layout = options.Layout,
            };
    }
}
