using System.Buffers.Binary;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// Decodes the ONNX messages the converter needs from protobuf bytes, one method per message, each a switch
/// over field numbers (onnx/onnx.proto). Unknown fields are skipped; known fields with the wrong wire type,
/// tensors whose data disagree with their dims, and subgraph attributes are refused.
/// </summary>
internal static class OnnxParser
{
    /// <summary>Parses a ModelProto.</summary>
    public static OnnxModel ParseModel(ReadOnlySpan<byte> bytes, ProtoLimits? limits = null)
    {
        var r = new ProtoReader(bytes, limits);
        long ir = 0;
        string producer = "";
        OnnxGraph? graph = null;
        var opsets = new List<OnnxOpset>();
        while (r.NextField(out int f, out int wt))
        {
            switch (f)
            {
                case 1:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    ir = r.ReadInt64();
                    break;
                case 2:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    producer = r.ReadString();
                    break;
                case 7:
                {
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    if (graph != null)
                        throw r.Error("the model has two graphs");
                    var sub = r.ReadMessage();
                    graph = ParseGraph(ref sub);
                    break;
                }
                case 8:
                {
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    var sub = r.ReadMessage();
                    opsets.Add(ParseOpset(ref sub));
                    break;
                }
                default:
                    r.Skip(wt);
                    break;
            }
        }
        if (graph == null)
            throw new InvalidModelFileException("ONNX file has no graph (is it an ONNX model?)");
        return new OnnxModel(ir, producer, graph, opsets);
    }

    private static OnnxOpset ParseOpset(ref ProtoReader r)
    {
        string domain = "";
        long version = 0;
        while (r.NextField(out int f, out int wt))
        {
            switch (f)
            {
                case 1:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    domain = r.ReadString();
                    break;
                case 2:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    version = r.ReadInt64();
                    break;
                default:
                    r.Skip(wt);
                    break;
            }
        }
        return new OnnxOpset(domain, version);
    }

    private static OnnxGraph ParseGraph(ref ProtoReader r)
    {
        string name = "";
        var nodes = new List<OnnxNode>();
        var inits = new List<OnnxTensor>();
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        var infos = new List<OnnxValueInfo>();
        while (r.NextField(out int f, out int wt))
        {
            if (f is 1 or 2 or 5 or 11 or 12 or 13)
                r.Expect(f, wt, ProtoReader.WireLengthDelimited);
            switch (f)
            {
                case 1:
                {
                    var sub = r.ReadMessage();
                    nodes.Add(ParseNode(ref sub));
                    break;
                }
                case 2:
                    name = r.ReadString();
                    break;
                case 5:
                {
                    var sub = r.ReadMessage();
                    inits.Add(ParseTensor(ref sub));
                    break;
                }
                case 11 or 12 or 13:
                {
                    var sub = r.ReadMessage();
                    var vi = ParseValueInfo(ref sub);
                    (f == 11 ? inputs : f == 12 ? outputs : infos).Add(vi);
                    break;
                }
                default:
                    r.Skip(wt);
                    break;
            }
        }
        return new OnnxGraph(name, nodes, inits, inputs, outputs, infos);
    }

    private static OnnxNode ParseNode(ref ProtoReader r)
    {
        string name = "", op = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attrs = new List<OnnxAttribute>();
        while (r.NextField(out int f, out int wt))
        {
            if (f is 1 or 2 or 3 or 4 or 5 or 7)
                r.Expect(f, wt, ProtoReader.WireLengthDelimited);
            switch (f)
            {
                case 1:
                    inputs.Add(r.ReadString());
                    break;
                case 2:
                    outputs.Add(r.ReadString());
                    break;
                case 3:
                    name = r.ReadString();
                    break;
                case 4:
                    op = r.ReadString();
                    break;
                case 5:
                {
                    var sub = r.ReadMessage();
                    attrs.Add(ParseAttribute(ref sub));
                    break;
                }
                case 7:
                    domain = r.ReadString();
                    break;
                default:
                    r.Skip(wt);
                    break;
            }
        }
        return new OnnxNode(name, op, domain, inputs, outputs, attrs);
    }

    private static OnnxAttribute ParseAttribute(ref ProtoReader r)
    {
        string name = "", s = "";
        float fv = 0;
        long iv = 0;
        OnnxTensor? t = null;
        int type = 0;
        bool hasF = false, hasI = false, hasS = false;
        var floats = new List<float>();
        var ints = new List<long>();
        var strings = new List<string>();
        while (r.NextField(out int f, out int wt))
        {
            switch (f)
            {
                case 1:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    name = r.ReadString();
                    break;
                case 2:
                    r.Expect(f, wt, ProtoReader.WireFixed32);
                    fv = r.ReadFloat();
                    hasF = true;
                    break;
                case 3:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    iv = r.ReadInt64();
                    hasI = true;
                    break;
                case 4:
                {
                    // Attribute strings are bytes in onnx.proto; the values used here (auto_pad) are ASCII.
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    s = r.ReadString();
                    hasS = true;
                    break;
                }
                case 5:
                {
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    var sub = r.ReadMessage();
                    t = ParseTensor(ref sub);
                    break;
                }
                case 6 or 10:
                    throw new UnsupportedModelException(
                        $"attribute '{name}' holds a subgraph (control flow such as If/Loop/Scan); not supported");
                case 7:
                    r.ReadRepeatedFloat(f, wt, floats);
                    break;
                case 8:
                    r.ReadRepeatedInt64(f, wt, ints);
                    break;
                case 9:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    strings.Add(r.ReadString());
                    break;
                case 20:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    type = r.ReadInt32();
                    break;
                default:
                    r.Skip(wt);
                    break;
            }
        }
        var kind = (OnnxAttributeType)type;
        if (type == 0)
        {
            // ir_version < 2 writers omit the type; infer it from the field present.
            kind = hasF ? OnnxAttributeType.Float : hasI ? OnnxAttributeType.Int : hasS ? OnnxAttributeType.String
                : t != null ? OnnxAttributeType.Tensor : floats.Count > 0 ? OnnxAttributeType.Floats
                : ints.Count > 0 ? OnnxAttributeType.Ints : strings.Count > 0 ? OnnxAttributeType.Strings
                : OnnxAttributeType.Undefined;
        }
        return new OnnxAttribute(name, kind, fv, iv, s, t, floats, ints, strings);
    }

    private static OnnxValueInfo ParseValueInfo(ref ProtoReader r)
    {
        string name = "";
        int elem = 0;
        long?[]? dims = null;
        while (r.NextField(out int f, out int wt))
        {
            switch (f)
            {
                case 1:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    name = r.ReadString();
                    break;
                case 2:
                {
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    var sub = r.ReadMessage();
                    ParseType(ref sub, ref elem, ref dims);
                    break;
                }
                default:
                    r.Skip(wt);
                    break;
            }
        }
        return new OnnxValueInfo(name, elem, dims);
    }

    // TypeProto: tensor_type 1 -> TypeProto.Tensor (elem_type 1, shape 2). Other kinds (sequence, map) are skipped
    // and leave elem_type 0, which the converter refuses for the input.
    private static void ParseType(ref ProtoReader r, ref int elem, ref long?[]? dims)
    {
        while (r.NextField(out int f, out int wt))
        {
            if (f != 1)
            {
                r.Skip(wt);
                continue;
            }
            r.Expect(f, wt, ProtoReader.WireLengthDelimited);
            var tensor = r.ReadMessage();
            while (tensor.NextField(out int tf, out int twt))
            {
                switch (tf)
                {
                    case 1:
                        tensor.Expect(tf, twt, ProtoReader.WireVarint);
                        elem = tensor.ReadInt32();
                        break;
                    case 2:
                    {
                        tensor.Expect(tf, twt, ProtoReader.WireLengthDelimited);
                        var shape = tensor.ReadMessage();
                        dims = ParseShape(ref shape);
                        break;
                    }
                    default:
                        tensor.Skip(twt);
                        break;
                }
            }
        }
    }

    // TensorShapeProto: dim 1 -> Dimension (dim_value 1, dim_param 2).
    private static long?[] ParseShape(ref ProtoReader r)
    {
        var dims = new List<long?>();
        while (r.NextField(out int f, out int wt))
        {
            if (f != 1)
            {
                r.Skip(wt);
                continue;
            }
            r.Expect(f, wt, ProtoReader.WireLengthDelimited);
            var dim = r.ReadMessage();
            long? value = null;
            while (dim.NextField(out int df, out int dwt))
            {
                if (df == 1)
                {
                    dim.Expect(df, dwt, ProtoReader.WireVarint);
                    value = dim.ReadInt64();
                }
                else
                {
                    dim.Skip(dwt);
                }
            }
            dims.Add(value);
        }
        return dims.ToArray();
    }

    private static OnnxTensor ParseTensor(ref ProtoReader r)
    {
        long start = r.Offset;
        string name = "";
        int dataType = 0;
        var dims = new List<long>();
        var floatData = new List<float>();
        var int32Data = new List<long>();
        var int64Data = new List<long>();
        var doubleData = new List<double>();
        ReadOnlySpan<byte> raw = default;
        bool hasRaw = false, external = false;
        while (r.NextField(out int f, out int wt))
        {
            switch (f)
            {
                case 1:
                    r.ReadRepeatedInt64(f, wt, dims);
                    break;
                case 2:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    dataType = r.ReadInt32();
                    break;
                case 4:
                    r.ReadRepeatedFloat(f, wt, floatData);
                    break;
                case 5:
                    r.ReadRepeatedInt64(f, wt, int32Data);
                    break;
                case 7:
                    r.ReadRepeatedInt64(f, wt, int64Data);
                    break;
                case 8:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    name = r.ReadString();
                    break;
                case 9:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    raw = r.ReadBytes();
                    hasRaw = true;
                    break;
                case 10:
                    r.ReadRepeatedDouble(f, wt, doubleData);
                    break;
                case 13:
                    r.Expect(f, wt, ProtoReader.WireLengthDelimited);
                    r.Skip(wt);
                    external = true;
                    break;
                case 14:
                    r.Expect(f, wt, ProtoReader.WireVarint);
                    external |= r.ReadInt64() == 1;
                    break;
                default:
                    r.Skip(wt);
                    break;
            }
        }
        if (external)
            throw new UnsupportedModelException(
                $"tensor '{name}' keeps its data in an external file; re-export the model with the weights embedded "
                + "(onnx.save_model(..., save_as_external_data=False))");
        var shape = dims.ToArray();
        long count = shape.Contains(0) ? 0 : 1;
        foreach (long d in shape)
        {
            if (d < 0)
                throw new InvalidModelFileException($"ONNX file is truncated or corrupt: tensor '{name}' has negative dimension {d} at byte {start}");
            if (count != 0 && d > TensorShape.MaxElements / count)
                throw new InvalidModelFileException($"ONNX file is truncated or corrupt: tensor '{name}' has more than {TensorShape.MaxElements} elements at byte {start}");
            count *= d;
        }
        float[]? floats = null;
        long[]? ints = null;
        string Bad(string what) =>
            $"ONNX file is truncated or corrupt: tensor '{name}' {what} for dims [{string.Join(",", shape)}] at byte {start}";
        switch ((OnnxDataType)dataType)
        {
            case OnnxDataType.Float:
                floats = hasRaw ? DecodeRaw(raw, count, 4, Bad, static (s, i) => BinaryPrimitives.ReadSingleLittleEndian(s[(4 * i)..]))
                    : Exact(floatData, count, Bad).ToArray();
                break;
            case OnnxDataType.Double:
            {
                var d = hasRaw ? DecodeRaw(raw, count, 8, Bad, static (s, i) => BinaryPrimitives.ReadDoubleLittleEndian(s[(8 * i)..]))
                    : Exact(doubleData, count, Bad).ToArray();
                floats = new float[d.Length];
                for (int i = 0; i < d.Length; i++)
                    floats[i] = (float)d[i];
                break;
            }
            case OnnxDataType.Int64:
                ints = hasRaw ? DecodeRaw(raw, count, 8, Bad, static (s, i) => BinaryPrimitives.ReadInt64LittleEndian(s[(8 * i)..]))
                    : Exact(int64Data, count, Bad).ToArray();
                break;
            case OnnxDataType.Int32:
                // int32_data holds int32 values as (sign-extended) varints.
                ints = hasRaw ? DecodeRaw(raw, count, 4, Bad, static (s, i) => (long)BinaryPrimitives.ReadInt32LittleEndian(s[(4 * i)..]))
                    : Exact(int32Data, count, Bad).Select(v => (long)unchecked((int)v)).ToArray();
                break;
            case OnnxDataType.Bool:
                // One byte per value in raw_data; int32_data otherwise.
                ints = hasRaw ? DecodeRaw(raw, count, 1, Bad, static (s, i) => (long)(s[i] != 0 ? 1 : 0))
                    : Exact(int32Data, count, Bad).Select(v => v != 0 ? 1L : 0L).ToArray();
                break;
        }
        return new OnnxTensor(name, shape, dataType, floats, ints) { Count = count };
    }

    private delegate T ElementReader<T>(ReadOnlySpan<byte> raw, int index);

    private static T[] DecodeRaw<T>(ReadOnlySpan<byte> raw, long count, int size, Func<string, string> bad, ElementReader<T> read)
    {
        if (raw.Length != count * size)
            throw new InvalidModelFileException(bad($"has {raw.Length} bytes of raw_data, expected {count * size}"));
        var r = new T[count];
        for (int i = 0; i < r.Length; i++)
            r[i] = read(raw, i);
        return r;
    }

    private static List<T> Exact<T>(List<T> data, long count, Func<string, string> bad) =>
        data.Count == count ? data : throw new InvalidModelFileException(bad($"has {data.Count} values"));
}
