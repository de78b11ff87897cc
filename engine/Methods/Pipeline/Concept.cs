using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>One concept of a factorization method (Deep Feature Factorization): where it is in the image, its
/// vector in the layer's channel space, and the classes the model's head scores it highest on.</summary>
public sealed class Concept
{
    /// <summary>The concept's map (H, W) at input resolution, min-max normalized to [0, 1].</summary>
    public required HostTensor Map { get; init; }

    /// <summary>The concept vector (C), in the layer's activation space.</summary>
    public required float[] Vector { get; init; }

    /// <summary>The classes the head scores this concept highest on, best first.</summary>
    public required int[] TopClasses { get; init; }

    /// <summary>The softmax probabilities of <see cref="TopClasses"/> over the head's output on the concept.</summary>
    public required float[] TopProbabilities { get; init; }
}
