using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>One method's explanation of one image.</summary>
public sealed class Explanation
{
    /// <summary>Index of the image in the batch.</summary>
    public required int Image { get; init; }

    /// <summary>The method's command-line name.</summary>
    public required string Method { get; init; }

    /// <summary>The class explained; -1 for targets without a class (embedding similarity).</summary>
    public required int TargetClass { get; init; }

    /// <summary>The explained score on the input (the raw logit of <see cref="TargetClass"/> unless the target says otherwise).</summary>
    public required float Score { get; init; }

    /// <summary>Layers the map was computed at (tensor names); empty for pixel-space methods.</summary>
    public required IReadOnlyList<string> Layers { get; init; }

    /// <summary>The final map (H, W) at input resolution, normalized to [0, 1].</summary>
    public required HostTensor Map { get; init; }

    /// <summary>
    /// The map before ReLU and normalization: (h, w) at the first layer's resolution for CAM methods, or the
    /// signed attribution (C, H, W) for pixel-space methods.
    /// </summary>
    public required HostTensor Raw { get; init; }

    /// <summary>The channel weights (C) at the first layer, for methods that weight channels; otherwise null.</summary>
    public float[]? Weights { get; init; }

    /// <summary>The concepts of a factorization method (Deep Feature Factorization), each with its map and top
    /// classes; null for every other method. <see cref="Imaging.ConceptOverlay"/> draws them one colour each.</summary>
    public IReadOnlyList<Concept>? Concepts { get; init; }
}
