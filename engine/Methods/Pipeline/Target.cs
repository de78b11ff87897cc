using System.Globalization;
using CamEngine.Autodiff;

namespace CamEngine.Methods;

/// <summary>
/// What score a method explains, chosen per image from the model's output. A target expands a batch of N
/// images into rows, one per (image, score) pair: every kind gives one row per image except
/// <see cref="TopK"/>, which gives k rows per image (the image replicated, one class each).
/// <list type="bullet">
/// <item><see cref="Top1"/> (default) and <see cref="Class"/>: the raw logit y_c (before softmax).</item>
/// <item><see cref="TopK"/>: the raw logits of each image's k highest classes, one map each.</item>
/// <item><see cref="Softmax"/>: p_c = softmax(y)_c; d p_c / d y = p_c (delta_c - p).</item>
/// <item><see cref="Similarity"/>: the dot product or cosine of the output embedding with a reference embedding.</item>
/// <item><see cref="Mask"/>: sum over a spatial mask of class c's scores, for (N, K, H, W) outputs (segmentation).</item>
/// <item><see cref="PerImage"/>: one class index per image of the batch.</item>
/// </list>
/// </summary>
public sealed class Target
{
    private enum Kind { Top1, Class, TopK, Softmax, Similarity, Mask, PerImage }

    private readonly Kind _kind;
    private readonly int _class;
    private readonly float[]? _vector;
    private readonly int[]? _classes;
    private readonly bool _cosine;

    private Target(Kind kind, int classIndex = -1, float[]? vector = null, int[]? classes = null, bool cosine = false)
    {
        _kind = kind;
        _class = classIndex;
        _vector = vector;
        _classes = classes;
        _cosine = cosine;
    }

    /// <summary>True when every row of this target has a class of a class-score output (not a similarity, whose rows
    /// have none, and not a mask, whose class indexes the planes of a segmentation output).</summary>
    internal bool NamesOutputClass => _kind is not (Kind.Similarity or Kind.Mask);

    /// <summary>True for a cosine similarity, the one target kind whose score is not linear in the output and has no class.</summary>
    internal bool IsCosine => _kind == Kind.Similarity && _cosine;

    /// <summary>Each image's highest-scoring class (raw logit).</summary>
    public static Target Top1 { get; } = new(Kind.Top1);

    /// <summary>A fixed class index for every image (raw logit).</summary>
    public static Target Class(int index) =>
        index >= 0 ? new Target(Kind.Class, index) : throw new ArgumentOutOfRangeException(nameof(index), "class index must be >= 0");

    /// <summary>The k highest-scoring classes of each image, highest first: k rows (maps) per image.</summary>
    public static Target TopK(int k) =>
        k >= 1 ? new Target(Kind.TopK, k) : throw new ArgumentOutOfRangeException(nameof(k), "k must be >= 1");

    /// <summary>The softmax probability of class <paramref name="index"/>, or of each image's top-1 class when
    /// null. Its gradient with respect to the logits is <c>p_c (delta_c - p)</c>.</summary>
    public static Target Softmax(int? index = null)
    {
        if (index is < 0)
            throw new ArgumentOutOfRangeException(nameof(index), "class index must be >= 0");
        return new Target(Kind.Softmax, index ?? -1);
    }

    /// <summary>
    /// Similarity of the output embedding e (the model output of one image, flattened) with
    /// <paramref name="reference"/> r: <c>e . r</c>, or <c>e . r / (|e| |r|)</c> when <paramref name="cosine"/>.
    /// The reference is usually the embedding of another image computed with the same model.
    /// </summary>
    public static Target Similarity(float[] reference, bool cosine)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Length == 0)
            throw new ArgumentException("the reference embedding is empty", nameof(reference));
        foreach (float v in reference)
        {
            if (!float.IsFinite(v))
                throw new ArgumentException("the reference embedding holds a non-finite value", nameof(reference));
        }
        return new Target(Kind.Similarity, -1, (float[])reference.Clone(), cosine: cosine);
    }

    /// <summary>
    /// Segmentation target for a model whose output is (N, K, H, W): <c>sum_hw mask[h,w] * y[cls, h, w]</c>.
    /// <paramref name="mask"/> holds H*W weights (usually 0/1), row-major.
    /// </summary>
    public static Target Mask(int cls, float[] mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentOutOfRangeException.ThrowIfNegative(cls);
        if (mask.Length == 0)
            throw new ArgumentException("the mask is empty", nameof(mask));
        return new Target(Kind.Mask, cls, (float[])mask.Clone());
    }

    /// <summary>One class index per image of the batch (raw logits); the batch must have exactly that many images.</summary>
    public static Target PerImage(int[] classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (classes.Length == 0 || classes.Any(c => c < 0))
            throw new ArgumentException("per-image classes must be a non-empty list of indices >= 0", nameof(classes));
        return new Target(Kind.PerImage, classes: (int[])classes.Clone());
    }

    /// <summary>This target for images <paramref name="start"/> .. start + count - 1 of a batch explained in
    /// parts: a per-image list is cut to those images; every other target applies to each image alike.</summary>
    /// <param name="start">The first image's position in the whole list.</param>
    /// <param name="count">Images in the part.</param>
    /// <exception cref="ArgumentOutOfRangeException">A per-image list has no classes for some of those images.</exception>
    public Target ForImages(int start, int count) =>
        _kind != Kind.PerImage ? this
        : start >= 0 && count >= 0 && start + count <= _classes!.Length ? PerImage(_classes[start..(start + count)])
        : throw new ArgumentOutOfRangeException(nameof(count), $"the per-image target lists {_classes!.Length} classes; images {start} to {start + count - 1} need one each");

    /// <summary>Classes a per-image target lists (one per image); 0 for every other target.</summary>
    public int PerImageCount => _kind == Kind.PerImage ? _classes!.Length : 0;

    /// <summary>k of a top-k target (1 for top-1); 0 for every other target.</summary>
    public int TopCount => _kind switch { Kind.Top1 => 1, Kind.TopK => _class, _ => 0 };

    /// <summary>
    /// Parses <c>top1</c>, a class index <c>C</c>, <c>topK</c> (e.g. <c>top3</c>), <c>softmax</c> or
    /// <c>softmax:C</c>, or a comma-separated list of class indices (one per image). Similarity targets
    /// (<c>similar:IMAGE</c>, <c>cosine:IMAGE</c>) need the model to embed IMAGE: the command line resolves
    /// them and calls <see cref="Similarity"/>.
    /// </summary>
    public static Target Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        if (t is "top1" or "top-1")
            return Top1;
        if (TryIndex(t, out int c))
            return Class(c);
        if (t.StartsWith("top", StringComparison.Ordinal) && TryIndex(t[3..].TrimStart('-'), out int k) && k >= 1)
            return TopK(k);
        if (t == "softmax")
            return Softmax();
        if (t.StartsWith("softmax:", StringComparison.Ordinal) && TryIndex(t[8..], out int s))
            return Softmax(s);
        if (t.Contains(',', StringComparison.Ordinal))
        {
            var parts = t.Split(',', StringSplitOptions.TrimEntries);
            var classes = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                if (!TryIndex(parts[i], out classes[i]))
                    throw new CamEngineException($"unknown target '{text}': '{parts[i]}' is not a class index");
            }
            return PerImage(classes);
        }
        if (t.StartsWith("similar:", StringComparison.Ordinal) || t.StartsWith("cosine:", StringComparison.Ordinal))
            throw new CamEngineException($"target '{text}' needs the model to embed the image: build it with Target.Similarity");
        throw new CamEngineException(
            $"unknown target '{text}': use top1, a class index, topK, softmax[:C], C1,C2,... (one per image), similar:IMAGE or cosine:IMAGE");
    }

    private static bool TryIndex(string s, out int value) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    /// <summary>
    /// The class index of every row from the model's outputs, shape (N, classes...): one per image, or k per
    /// image for <see cref="TopK"/>; -1 for similarity targets, which have no class.
    /// </summary>
    public int[] Resolve(ReadOnlySpan<float> outputs, int batch) =>
        Rows(outputs, batch, [outputs.Length / Math.Max(batch, 1)]).Select(r => r.Class).ToArray();

    /// <summary>
    /// Checks what the model's per-image output shape alone decides, before any pass: a class index within the
    /// outputs, k of top-k at most the outputs, a reference embedding of the output's length, a mask target only on
    /// an (N, K, H, W) output with a plane of the mask's size. <see cref="Rows"/> makes the same checks.
    /// </summary>
    /// <exception cref="CamEngineException">The target does not fit the output; the message gives both.</exception>
    internal void CheckOutput(int[] outputShape)
    {
        long k = 1;
        foreach (int d in outputShape)
            k *= d;
        switch (_kind)
        {
            case Kind.Class:
                CheckClass(_class, k);
                break;
            case Kind.PerImage:
                foreach (int c in _classes!)
                    CheckClass(c, k);
                break;
            case Kind.TopK:
                if (_class > k)
                    throw new CamEngineException($"top-{_class} asks for more classes than the model's {k} outputs");
                break;
            case Kind.Softmax:
                if (_class >= 0)
                    CheckClass(_class, k);
                break;
            case Kind.Similarity:
                if (_vector!.Length != k)
                    throw new CamEngineException($"the reference embedding has {_vector.Length} values but the model outputs {k} per image");
                break;
            case Kind.Mask:
                CheckMask(outputShape);
                break;
        }
    }

    private void CheckMask(int[] outputShape)
    {
        if (outputShape.Length != 3)
            throw new CamEngineException(
                $"a mask target needs an (N, K, H, W) output; the model outputs (N, {string.Join(", ", outputShape)})");
        int plane = outputShape[1] * outputShape[2];
        if (_vector!.Length != plane)
            throw new CamEngineException($"the mask has {_vector.Length} values but the output plane is {outputShape[1]}x{outputShape[2]}");
        CheckClass(_class, outputShape[0]);
    }

    /// <summary>The rows (image, class, score function) for <paramref name="batch"/> images whose outputs have
    /// the per-image shape <paramref name="outputShape"/>.</summary>
    internal TargetRow[] Rows(ReadOnlySpan<float> outputs, int batch, int[] outputShape)
    {
        if (batch <= 0 || outputs.Length % batch != 0)
            throw new CamEngineException($"cannot split {outputs.Length} outputs into {batch} images");
        int k = outputs.Length / batch;
        if (_kind == Kind.PerImage && _classes!.Length != batch)
            throw new CamEngineException($"the target names {_classes.Length} classes but the batch has {batch} images");
        var rows = new List<TargetRow>();
        for (int i = 0; i < batch; i++)
        {
            var row = outputs.Slice(i * k, k);
            switch (_kind)
            {
                case Kind.Top1:
                {
                    int c = ArgMax(row);
                    rows.Add(new TargetRow(i, c, ScoreFunction.Logit(c)));
                    break;
                }
                case Kind.Class:
                    rows.Add(new TargetRow(i, _class, ScoreFunction.Logit(CheckClass(_class, k))));
                    break;
                case Kind.PerImage:
                    rows.Add(new TargetRow(i, _classes![i], ScoreFunction.Logit(CheckClass(_classes[i], k))));
                    break;
                case Kind.TopK:
                    if (_class > k)
                        throw new CamEngineException($"top-{_class} asks for more classes than the model's {k} outputs");
                    foreach (int c in Ranked(row).Take(_class))
                        rows.Add(new TargetRow(i, c, ScoreFunction.Logit(c)));
                    break;
                case Kind.Softmax:
                {
                    int c = CheckClass(_class >= 0 ? _class : ArgMax(row), k);
                    rows.Add(new TargetRow(i, c, ScoreFunction.SoftmaxProbability(c)));
                    break;
                }
                case Kind.Similarity:
                    if (_vector!.Length != k)
                        throw new CamEngineException($"the reference embedding has {_vector.Length} values but the model outputs {k} per image");
                    rows.Add(new TargetRow(i, -1, ScoreFunction.Similarity(_vector, _cosine)));
                    break;
                case Kind.Mask:
                    CheckMask(outputShape);
                    rows.Add(new TargetRow(i, _class, ScoreFunction.MaskedSum(_class, _vector!)));
                    break;
            }
        }
        return [.. rows];
    }

    private static int CheckClass(int c, long k) =>
        c < k ? c : throw new CamEngineException($"target class {c} is out of range: the model has {k} outputs");

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++)
        {
            if (row[j] > row[best])
                best = j;
        }
        return best;
    }

    // Stable order: higher score first, then lower index (ties keep the top-1's first-argmax choice).
    private static int[] Ranked(ReadOnlySpan<float> row)
    {
        var values = row.ToArray();
        return Enumerable.Range(0, values.Length).OrderByDescending(j => values[j]).ThenBy(j => j).ToArray();
    }

    /// <inheritdoc/>
    public override string ToString() => _kind switch
    {
        Kind.Top1 => "top1",
        Kind.Class => _class.ToString(CultureInfo.InvariantCulture),
        Kind.TopK => string.Create(CultureInfo.InvariantCulture, $"top{_class}"),
        Kind.Softmax => _class < 0 ? "softmax" : string.Create(CultureInfo.InvariantCulture, $"softmax:{_class}"),
        Kind.Similarity => _cosine ? "cosine" : "similar",
        Kind.Mask => string.Create(CultureInfo.InvariantCulture, $"mask:{_class}"),
        _ => string.Join(",", _classes!),
    };
}

/// <summary>One explained row: the batch image it comes from, its class (-1 for none) and its score function.</summary>
internal readonly record struct TargetRow(int Image, int Class, ScoreFunction Score);
