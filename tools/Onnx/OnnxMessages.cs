namespace CamEngine.Onnx;

// The subset of onnx.proto (proto2) the converter reads. Field numbers are given next to each parser case.

/// <summary>ModelProto: the file's root.</summary>
internal sealed record OnnxModel(long IrVersion, string ProducerName, OnnxGraph Graph, IReadOnlyList<OnnxOpset> Opsets);

/// <summary>OperatorSetIdProto: an operator domain ("" or "ai.onnx" is the default one) and its version.</summary>
internal sealed record OnnxOpset(string Domain, long Version);

/// <summary>GraphProto.</summary>
internal sealed record OnnxGraph(
    string Name,
    IReadOnlyList<OnnxNode> Nodes,
    IReadOnlyList<OnnxTensor> Initializers,
    IReadOnlyList<OnnxValueInfo> Inputs,
    IReadOnlyList<OnnxValueInfo> Outputs,
    IReadOnlyList<OnnxValueInfo> ValueInfo);

/// <summary>NodeProto. Absent optional inputs are empty strings, as in ONNX.</summary>
internal sealed record OnnxNode(
    string Name,
    string OpType,
    string Domain,
    IReadOnlyList<string> Inputs,
    IReadOnlyList<string> Outputs,
    IReadOnlyList<OnnxAttribute> Attributes)
{
    /// <summary>The attribute called <paramref name="name"/>, or null.</summary>
    public OnnxAttribute? Attr(string name)
    {
        foreach (var a in Attributes)
        {
            if (a.Name == name)
                return a;
        }
        return null;
    }
}

/// <summary>AttributeProto.Type values used here.</summary>
internal enum OnnxAttributeType
{
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Graph = 5,
    Floats = 6,
    Ints = 7,
    Strings = 8,
}

/// <summary>AttributeProto. <see cref="Type"/> is the declared type, or inferred from the fields present when
/// an old writer left it out.</summary>
internal sealed record OnnxAttribute(
    string Name,
    OnnxAttributeType Type,
    float F,
    long I,
    string S,
    OnnxTensor? T,
    IReadOnlyList<float> Floats,
    IReadOnlyList<long> Ints,
    IReadOnlyList<string> Strings);

/// <summary>TensorProto.DataType values the converter decodes.</summary>
internal enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Double = 11,
}

/// <summary>
/// A decoded TensorProto: FLOAT and DOUBLE become <see cref="Floats"/>, INT32, INT64 and BOOL become <see cref="Ints"/>.
/// Other data types keep neither; using such a tensor is reported as unsupported.
/// </summary>
internal sealed record OnnxTensor(string Name, long[] Dims, int DataType, float[]? Floats, long[]? Ints)
{
    /// <summary>Number of elements (checked when decoded).</summary>
    public long Count { get; init; }
}

/// <summary>ValueInfoProto with its tensor type. <see cref="Dims"/> is null when the shape is unknown;
/// an entry is null when that dimension is symbolic or missing.</summary>
internal sealed record OnnxValueInfo(string Name, int ElemType, long?[]? Dims);
