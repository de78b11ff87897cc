using CamEngine.Tensors;

namespace CamEngine;

/// <summary>One class of a model's output for one image, as <see cref="CamModel.Predict(string, int)"/> ranks them.</summary>
/// <param name="ClassIndex">The output index.</param>
/// <param name="Label">The class label stored in the model, or null when it has none.</param>
/// <param name="Logit">The raw output (logit).</param>
/// <param name="Probability">The softmax probability over every output of the image.</param>
public sealed record Prediction(int ClassIndex, string? Label, float Logit, float Probability)
{
    /// <summary>The <paramref name="top"/> highest outputs of one image, highest first (ties: lower index first),
    /// with softmax probabilities computed in double with the maximum subtracted.</summary>
    internal static IReadOnlyList<Prediction> Rank(ReadOnlySpan<float> row, IReadOnlyList<string>? labels, int top)
    {
        var values = row.ToArray();
        var p = StableSoftmax.Probabilities(row);
        return Enumerable.Range(0, values.Length)
            .OrderByDescending(c => values[c]).ThenBy(c => c)
            .Take(top)
            .Select(c => new Prediction(c, labels != null && c < labels.Count ? labels[c] : null, values[c],
                (float)p[c]))
            .ToList();
    }
}
