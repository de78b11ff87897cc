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

    /// <summary>Pixel scale from bytes (0..255) before the mean (see <see cref="CamEngine.Model.Preprocessing.Scale"/>),
    /// or null for the default 1/255.</summary>
    public float? Scale { get; init; }

    /// <summary>Input channel order, "rgb" or "bgr", or null for the default "rgb".</summary>
    public string? ChannelOrder { get; init; }

    /// <summary>
    /// A serialized preprocessing ONNX model (such as ML.NET's <c>ResNetPreprocess.onnx</c>) whose pixel transform
    /// (channel reorder, scale, mean or mean image, std) is recorded instead of <see cref="Mean"/>, <see cref="Std"/>,
    /// <see cref="Scale"/> and <see cref="ChannelOrder"/>, which must then be null. Its input is taken to be planar RGB
    /// bytes 0..255; a per-pixel mean becomes the model file's tensor <see cref="MeanImageTensorName"/>.
    /// </summary>
    public byte[]? PreprocessOnnx { get; init; }

    /// <summary>Name under which a mean image read from <see cref="PreprocessOnnx"/> is stored.</summary>
    public const string MeanImageTensorName = "preprocessing.mean_image";

    /// <summary>
    /// Whether the chains older opsets write for one operator become that operator (default true): LayerNorm's
    /// ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div (with its Mul and Add) becomes <c>layernorm</c>, exact GELU's
    /// Div, Erf, Add, Mul, Mul becomes <c>gelu</c>, and a linear layer's bias Add after a <c>matmul</c> joins it, as
    /// does a per-feature scale after that (ConvNeXt's layer scale, folded into the weight and bias). One
    /// pass over the tensor instead of two to nine; the values inside a chain are then no longer layers. False keeps
    /// every ONNX node.
    /// </summary>
    public bool FuseDecomposedOperators { get; init; } = true;

    /// <summary>Class labels, one per model output, or null for none.</summary>
    public string[]? Labels { get; init; }
}
