using CamEngine.IO;
using CamEngine.Model;

namespace CamEngine.Onnx;

/// <summary>
/// Converts an ONNX CNN (Conv, BatchNormalization after a Conv, Relu, MaxPool, AveragePool, GlobalAveragePool,
/// Flatten, Gemm, Add, Identity, Dropout, Constant) into an engine <see cref="ModelFile"/>. Node and tensor names
/// stay the ONNX ones. BatchNormalization is folded into the preceding Conv, padding (auto_pad included) becomes
/// explicit [top, left, bottom, right], and an AveragePool over the whole input becomes global average pooling.
/// The file is treated as hostile: the protobuf reader is bounded, and the resulting graph is validated.
/// </summary>
internal static class OnnxConverter
{
    /// <summary>Largest ONNX file read (protobuf messages cannot exceed 2 GiB).</summary>
    public const long MaxFileBytes = int.MaxValue;

    /// <summary>
    /// Converts ONNX model bytes.
    /// </summary>
    /// <param name="onnx">The serialized ModelProto.</param>
    /// <param name="options">Preprocessing and labels to record, or null for the defaults.</param>
    /// <returns>The validated model.</returns>
    /// <exception cref="InvalidModelFileException">The file is truncated, corrupt or inconsistent.</exception>
    /// <exception cref="UnsupportedModelException">The model uses an operator or attribute the engine lacks, or
    /// <see cref="OnnxConvertOptions.PreprocessOnnx"/> is not a recognised preprocessing graph.</exception>
    /// <exception cref="ArgumentException"><see cref="OnnxConvertOptions.PreprocessOnnx"/> is combined with explicit
    /// mean, std, scale or channel order.</exception>
    public static ModelFile Convert(ReadOnlySpan<byte> onnx, OnnxConvertOptions? options = null) =>
        Convert(onnx, options, null);

    internal static ModelFile Convert(ReadOnlySpan<byte> onnx, OnnxConvertOptions? options, ProtoLimits? limits)
    {
        if (options is { PreprocessOnnx: not null } && (options.Mean != null || options.Std != null || options.Scale != null
                                                         || options.ChannelOrder != null))
            throw new ArgumentException("a preprocessing ONNX model sets the mean, std, scale and channel order; do not set them as well",
                nameof(options));
        var model = OnnxParser.ParseModel(onnx, limits);
        try
        {
            return new OnnxGraphBuilder(model, options ?? new OnnxConvertOptions()).Build();
        }
        catch (Exception e) when (e is ArgumentException or OverflowException or InvalidCastException)
        {
            // Anything the builder or the engine types reject by argument checks is an inconsistent file.
            throw new InvalidModelFileException($"ONNX model is inconsistent: {e.Message}", e);
        }
    }

    /// <summary>Reads the ONNX file at <paramref name="path"/> through <see cref="BoundedReader"/> (at most
    /// <see cref="MaxFileBytes"/>, counted as read, so devices and pipes are bounded too) and converts it.</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="options">Preprocessing and labels to record, or null for the defaults.</param>
    /// <returns>The validated model; the caller writes it.</returns>
    /// <exception cref="InvalidInputException">The file is missing, unreadable or larger than <see cref="MaxFileBytes"/>.</exception>
    /// <exception cref="InvalidModelFileException">The file is truncated, corrupt or inconsistent.</exception>
    /// <exception cref="UnsupportedModelException">The model uses an operator or attribute the engine lacks.</exception>
    public static ModelFile ConvertFile(string path, OnnxConvertOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Convert(BoundedReader.ReadAllBytes(path, MaxFileBytes), options);
    }
}
