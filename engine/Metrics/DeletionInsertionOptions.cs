namespace CamEngine.Metrics;

/// <summary>Options of <see cref="CamModel.EvaluateDeletion(IReadOnlyList{CamResult}, DeletionInsertionOptions?, IProgress{MetricProgress}?, CancellationToken)"/> and <see cref="CamModel.EvaluateInsertion(IReadOnlyList{CamResult}, DeletionInsertionOptions?, IProgress{MetricProgress}?, CancellationToken)"/>.</summary>
public sealed class DeletionInsertionOptions : MetricOptions
{
    /// <summary>Intervals of the curve (default 20, as TorchCAM): each step moves ceil(H W / steps) pixels, and the
    /// curve has a point at 0 and at every step up to all pixels.</summary>
    public int Steps { get; init; } = 20;

    /// <summary>The baseline (default <see cref="PerturbationBaseline.Zeros"/>).</summary>
    public PerturbationBaseline Baseline { get; init; } = PerturbationBaseline.Zeros;

    /// <summary>Standard deviation in input pixels of the <see cref="PerturbationBaseline.Blur"/> baseline
    /// (default 5, the sigma of RISE's <c>gkern(11, 5)</c>; RISE also truncates the kernel to 11 x 11 and pads with
    /// zeros, we use radius ceil(3 sigma) and replicate the border).</summary>
    public double BlurSigma { get; init; } = 5;

    internal void ValidateCurve()
    {
        Validate();
        if (Steps < 1)
            throw new CamEngineException($"the number of steps must be at least 1, got {Steps}");
        if (Baseline == PerturbationBaseline.Blur && !(BlurSigma > 0 && BlurSigma <= 1000))
            throw new CamEngineException($"the blur sigma must be in (0, 1000] pixels, got {BlurSigma}");
    }
}
