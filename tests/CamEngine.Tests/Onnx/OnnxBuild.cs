using System.Buffers.Binary;

namespace CamEngine.Tests.Onnx;

/// <summary>How a synthetic float initializer stores its values.</summary>
internal enum TensorEncoding
{
    Raw,
    FloatDataPacked,
    FloatDataUnpacked,
    DoubleData,
}

/// <summary>Builds ONNX messages (field numbers from onnx/onnx.proto) for synthetic test models.</summary>
internal static class OnnxBuild
{
    public static ProtoWriter Tensor(string name, int[] dims, float[] data, TensorEncoding enc = TensorEncoding.Raw,
        bool packedDims = false)
    {
        var t = new ProtoWriter().Ints(1, dims.Select(d => (long)d), packedDims);
        switch (enc)
        {
            case TensorEncoding.Raw:
            {
                t.Int(2, 1);
                var raw = new byte[data.Length * 4];
                for (int i = 0; i < data.Length; i++)
                    BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), data[i]);
                t.Bytes(9, raw);
                break;
            }
            case TensorEncoding.FloatDataPacked:
                t.Int(2, 1).Floats(4, data, packed: true);
                break;
            case TensorEncoding.FloatDataUnpacked:
                t.Int(2, 1).Floats(4, data, packed: false);
                break;
            case TensorEncoding.DoubleData:
                t.Int(2, 11).Doubles(10, data.Select(v => (double)v));
                break;
        }
        return t.String(8, name);
    }

    public static ProtoWriter Int64Tensor(string name, int[] dims, long[] data) =>
        new ProtoWriter().Ints(1, dims.Select(d => (long)d), false).Int(2, 7).Ints(7, data, true).String(8, name);

    public static ProtoWriter AttrInts(string name, long[] values, bool packed = false) =>
        new ProtoWriter().String(1, name).Ints(8, values, packed).Int(20, 7);

    public static ProtoWriter AttrInt(string name, long value) => new ProtoWriter().String(1, name).Int(3, value).Int(20, 2);

    public static ProtoWriter AttrFloat(string name, float value) =>
        new ProtoWriter().String(1, name).Float(2, value).Int(20, 1);

    public static ProtoWriter AttrString(string name, string value) =>
        new ProtoWriter().String(1, name).String(4, value).Int(20, 3);

    public static ProtoWriter Node(string op, string name, string[] inputs, string[] outputs, params ProtoWriter[] attrs)
    {
        var n = new ProtoWriter();
        foreach (var i in inputs)
            n.String(1, i);
        foreach (var o in outputs)
            n.String(2, o);
        n.String(3, name).String(4, op);
        foreach (var a in attrs)
            n.Message(5, a);
        return n;
    }

    /// <summary>A float tensor value info; a null dimension is written as the symbolic "N".</summary>
    public static ProtoWriter ValueInfo(string name, params long?[] dims)
    {
        var shape = new ProtoWriter();
        foreach (var d in dims)
            shape.Message(1, d is { } v ? new ProtoWriter().Int(1, v) : new ProtoWriter().String(2, "N"));
        var tensorType = new ProtoWriter().Int(1, 1).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensorType));
    }

    public static byte[] Model(IEnumerable<ProtoWriter> nodes, IEnumerable<ProtoWriter> inits, ProtoWriter input,
        ProtoWriter output, long opset = 11)
    {
        var g = new ProtoWriter();
        foreach (var n in nodes)
            g.Message(1, n);
        g.String(2, "test");
        foreach (var t in inits)
            g.Message(5, t);
        g.Message(11, input).Message(12, output);
        return new ProtoWriter().Int(1, 7).String(2, "test").Message(7, g)
            .Message(8, new ProtoWriter().String(1, "").Int(2, opset)).ToArray();
    }

    /// <summary>Seeded values in [-1, 1).</summary>
    public static float[] Values(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}
