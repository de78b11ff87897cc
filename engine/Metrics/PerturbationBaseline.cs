namespace CamEngine.Metrics;

/// <summary>What a deleted pixel becomes (deletion), or the canvas pixels are inserted into (insertion), in the
/// preprocessed input space.</summary>
public enum PerturbationBaseline
{
    /// <summary>Zero in every channel: the dataset mean colour after normalization (TorchCAM's default).</summary>
    Zeros,

    /// <summary>The input blurred by a Gaussian of <see cref="DeletionInsertionOptions.BlurSigma"/> pixels (the
    /// RISE paper's insertion canvas): separable, kernel radius ceil(3 sigma), weights normalized to sum 1,
    /// borders replicated, each channel separately.</summary>
    Blur,

    /// <summary>Each channel's mean over the image's pixels.</summary>
    Mean,
}
