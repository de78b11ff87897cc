namespace CamEngine.Onnx;

/// <summary>The converter's public front door: ONNX bytes in, CamEngine model file bytes out (what <c>cam convert</c>
/// writes).</summary>
public static class OnnxConversion
{
    /// <summary>Largest ONNX file read (protobuf messages cannot exceed 2 GiB).</summary>
    public const long MaxFileBytes = OnnxConverter.MaxFileBytes;

    /// <summary>The ONNX operators converted into engine operators (or passed through); any other operator is refused,
    /// naming it and its node, unless all its inputs are constant and it is one of <see cref="FoldedOperators"/>.</summary>
    public static IReadOnlyList<string> SupportedOperators => OnnxGraphBuilder.SupportedOperators;

    /// <summary>The ONNX operators evaluated at conversion when all their inputs are constant (the shape arithmetic
    /// exporters emit).</summary>
    public static IReadOnlyList<string> FoldedOperators => OnnxGraphBuilder.FoldedOperators;

    /// <summary>Converts an ONNX model (see <see cref="OnnxConverter"/> for the operators) to a model file's bytes.</summary>
    /// <param name="onnx">The serialized ModelProto.</param>
    /// <param name="options">Preprocessing and labels to record, or null for the defaults.</param>
    /// <returns>The safetensors bytes with the graph in the metadata; <see cref="CamModel.Inspect(ReadOnlyMemory{byte})"/>
    /// describes them.</returns>
    /// <exception cref="InvalidModelFileException">The file is truncated, corrupt or inconsistent.</exception>
    /// <exception cref="UnsupportedModelException">The model uses an operator or attribute the engine lacks.</exception>
    public static byte[] Convert(ReadOnlySpan<byte> onnx, OnnxConvertOptions? options = null)
    {
        var model = OnnxConverter.Convert(onnx, options);
        using var stream = new MemoryStream();
        model.Save(stream);
        return stream.ToArray();
    }
}
