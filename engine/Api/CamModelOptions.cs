using CamEngine.Backends;

namespace CamEngine;

/// <summary>How <see cref="CamModel.Load(string, CamModelOptions?)"/> opens a model: the device and the batch size.</summary>
public sealed class CamModelOptions
{
    /// <summary>
    /// The device: <c>auto</c> (CUDA, then OpenCL, then the managed CPU backend), <c>cpu</c> (the managed SIMD CPU
    /// backend), <c>cuda</c>, <c>opencl</c>, <c>ilgpu-cpu</c> (ILGPU's CPU accelerator, slow: for testing kernels)
    /// or <c>reference</c> (the double-precision oracle, very slow). Null, the default: the
    /// <c>CAMENGINE_DEVICE</c> environment variable, then <c>auto</c>.
    /// </summary>
    public string? Device { get; init; }

    /// <summary>Images per forward (and reverse) pass when a call explains or classifies several images; progress
    /// is reported and cancellation checked between batches. Default 8.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Class labels that replace the ones stored in the model (one per output, in order), e.g. from
    /// <see cref="CamModel.ReadLabels(string)"/>; null keeps the model's own.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
}
