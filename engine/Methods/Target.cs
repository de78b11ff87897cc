using System.Globalization;

namespace CamEngine.Methods;

/// <summary>
/// What score a method explains: the raw logit (before softmax) of a class, chosen per image. Top-1, the
/// default, takes each image's highest logit; <see cref="Class"/> fixes one index for every image.
/// </summary>
public sealed class Target
{
    private readonly int _class;

    private Target(int classIndex) => _class = classIndex;

    /// <summary>Each image's highest-scoring class.</summary>
    public static Target Top1 { get; } = new(-1);

    /// <summary>A fixed class index for every image.</summary>
    public static Target Class(int index) =>
        index >= 0 ? new Target(index) : throw new ArgumentOutOfRangeException(nameof(index), "class index must be >= 0");

    /// <summary>Parses <c>top1</c> or a class index.</summary>
    public static Target Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        if (t is "top1" or "top-1")
            return Top1;
        if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
            return Class(c);
        throw new CamEngineException($"unknown target '{text}': use top1 or a class index");
    }

    /// <summary>The class index per image from the model's outputs, shape (N, classes).</summary>
    public int[] Resolve(ReadOnlySpan<float> outputs, int batch)
    {
        int k = outputs.Length / batch;
        var r = new int[batch];
        for (int i = 0; i < batch; i++)
        {
            var row = outputs.Slice(i * k, k);
            if (_class >= 0)
            {
                if (_class >= k)
                    throw new CamEngineException($"target class {_class} is out of range: the model has {k} outputs");
                r[i] = _class;
                continue;
            }
            int best = 0;
            for (int j = 1; j < k; j++)
            {
                if (row[j] > row[best])
                    best = j;
            }
            r[i] = best;
        }
        return r;
    }

    /// <inheritdoc/>
    public override string ToString() => _class < 0 ? "top1" : _class.ToString(CultureInfo.InvariantCulture);
}
