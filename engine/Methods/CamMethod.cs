using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>
/// Base of every explanation method. The shared machinery (forward pass, target selection, reverse pass,
/// capture, post-processing) lives in <see cref="Explainer"/> and the intermediate bases; a method overrides
/// only what makes it different (pytorch-grad-cam's <c>get_cam_weights</c> pattern).
/// </summary>
public abstract class CamMethod
{
    /// <summary>Command-line name, e.g. <c>gradcam</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for <c>cam methods</c>.</summary>
    public abstract string Summary { get; }

    /// <summary>The paper that defines it.</summary>
    public abstract string Paper { get; }

    /// <summary>True when the method works at a layer (needs <c>--layer</c>, or the default layer).</summary>
    public abstract bool UsesLayers { get; }

    internal abstract IReadOnlyList<Explanation> Run(ExplainContext context);
}

/// <summary>Everything a method needs about one batch: the model, the forward pass and the targets.</summary>
internal sealed class ExplainContext
{
    public required DeviceModel Model { get; init; }

    public required ForwardPass Forward { get; init; }

    public required int[] Classes { get; init; }

    public required float[] Scores { get; init; }

    public required IReadOnlyList<GraphNode> Layers { get; init; }

    public Convention Convention { get; init; } = Convention.PytorchGradCam;

    /// <summary>Images per masked, ablated or noisy re-run (Score-CAM, Ablation-CAM, SmoothGrad...).</summary>
    public int PerturbationBatch { get; init; } = 32;

    /// <summary>Seed of every random draw (SmoothGrad, SS-CAM noise).</summary>
    public int RandomSeed { get; init; }

    /// <summary>A score other than the target's (Finer-CAM's contrast); null means the target's score.</summary>
    public ScoreObjective? Objective { get; init; }

    public int Batch => Forward.Batch;

    /// <summary>This context with <paramref name="objective"/> as the score to explain.</summary>
    public ExplainContext WithObjective(ScoreObjective objective) => new()
    {
        Model = Model, Forward = Forward, Classes = Classes, Scores = Scores, Layers = Layers,
        Convention = Convention, PerturbationBatch = PerturbationBatch, RandomSeed = RandomSeed, Objective = objective,
    };

    public Backend Backend => Model.Backend;

    /// <summary>The target score of image <paramref name="image"/> given a model output row (for masked or
    /// perturbed re-runs of that image): today the raw logit of its target class.</summary>
    public float Score(int image, ReadOnlySpan<float> outputRow) =>
        Objective != null ? Objective.Score(image, outputRow) : outputRow[Classes[image]];

    /// <summary>d score / d(output row) for image <paramref name="image"/>, written into <paramref name="gradient"/>.</summary>
    public void ScoreGradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient)
    {
        if (Objective != null)
        {
            Objective.Gradient(image, outputRow, gradient);
            return;
        }
        gradient.Clear();
        gradient[Classes[image]] = 1f;
    }

    /// <summary>dL/d(output) for the whole batch, L = sum_i score_i: one row per image.</summary>
    public Tensor Seed()
    {
        var output = Forward.Output;
        var values = Backend.Download(output);
        int k = output.Length / Batch;
        var seed = new float[output.Length];
        for (int i = 0; i < Batch; i++)
            ScoreGradient(i, values.AsSpan(i * k, k), seed.AsSpan(i * k, k));
        return Backend.Upload(seed, output.Shape);
    }
}

/// <summary>A scalar score of one image's model output and its gradient (a method's own objective).</summary>
internal abstract class ScoreObjective
{
    /// <summary>The score of image <paramref name="image"/> from its output row.</summary>
    public abstract float Score(int image, ReadOnlySpan<float> outputRow);

    /// <summary>d score / d(output row), written into <paramref name="gradient"/>.</summary>
    public abstract void Gradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient);
}
