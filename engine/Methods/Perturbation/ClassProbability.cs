using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>The softmax probability of each row's class, <c>softmax(y)[c]</c>, as a score of a re-run's output row
/// (RISE and Recipro-CAM score masked inputs by it, as their papers do).</summary>
internal sealed class ClassProbabilityObjective : ScoreObjective
{
    private readonly int[] _classes;

    private ClassProbabilityObjective(int[] classes) => _classes = classes;

    /// <summary>The objective for the context's rows; every row must have a class.</summary>
    public static ClassProbabilityObjective For(ExplainContext context, string method)
    {
        for (int i = 0; i < context.Classes.Length; i++)
        {
            if (context.Classes[i] < 0)
                throw new CamEngineException($"{method} with score=probability explains a class; row {i}'s target has none (use score=target)");
        }
        return new ClassProbabilityObjective(context.Classes);
    }

    public override float Score(int image, ReadOnlySpan<float> outputRow) =>
        (float)StableSoftmax.Probabilities(outputRow)[_classes[image]];

    public override void Gradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient)
    {
        // d p_c / d y_m = p_c (delta_cm - p_m)
        var p = StableSoftmax.Probabilities(outputRow);
        int c = _classes[image];
        for (int m = 0; m < outputRow.Length; m++)
            gradient[m] = (float)(p[c] * ((m == c ? 1 : 0) - p[m]));
    }
}

/// <summary>What a black-box method scores its masked inputs by.</summary>
public enum MaskedScore
{
    /// <summary>The softmax probability of the target's class (the papers' choice).</summary>
    Probability,

    /// <summary>The target's own score (the raw logit unless the target says otherwise).</summary>
    Target,
}
