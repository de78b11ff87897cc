namespace CamEngine.Onnx;

/// <summary>
/// Choices the ONNX file does not record: how images are preprocessed and what the outputs are called.
/// Unset values fall back to <see cref="CamEngine.Model.Preprocessing.ImageNet"/> for the model's input size
/// (for inputs that do not have 3 channels: mean 0 and standard deviation 1 per channel).
/// </summary>
public sealed class OnnxConvertOptions
{
    /// <summary>Per-channel mean subtracted after scaling pixels to [0, 1], or null for the default.</summary>
    public float[]? Mean { get; init; }

    /// <summary>Per-channel standard deviation divided by, or null for the default.</summary>
    public float[]? Std { get; init; }

    /// <summary>Shorter image side after the first resize (before the centre crop), or null for the default.</summary>
    public int? ResizeShorter { get; init; }

    /// <summary>Class labels, one per model output, or null for none.</summary>
    public string[]? Labels { get; init; }
}
