using System.Buffers.Binary;
using System.Text;

namespace CamEngine.Tests.Onnx;

/// <summary>A minimal protobuf writer for building synthetic ONNX files in tests.</summary>
internal sealed class ProtoWriter
{
    private readonly List<byte> _bytes = [];

    public byte[] ToArray() => [.. _bytes];

    public ProtoWriter Tag(int field, int wireType)
    {
        Varint(((ulong)field << 3) | (uint)wireType);
        return this;
    }

    public ProtoWriter Varint(ulong v)
    {
        while (v >= 0x80)
        {
            _bytes.Add((byte)(v | 0x80));
            v >>= 7;
        }
        _bytes.Add((byte)v);
        return this;
    }

    public ProtoWriter Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public ProtoWriter Int(int field, long v) => Tag(field, 0).Varint(unchecked((ulong)v));

    public ProtoWriter Float(int field, float v)
    {
        Tag(field, 5);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, v);
        return Raw(b.ToArray());
    }

    public ProtoWriter Bytes(int field, byte[] v)
    {
        Tag(field, 2).Varint((ulong)v.Length);
        return Raw(v);
    }

    public ProtoWriter String(int field, string v) => Bytes(field, Encoding.UTF8.GetBytes(v));

    public ProtoWriter Message(int field, ProtoWriter m) => Bytes(field, m.ToArray());

    /// <summary>Repeated varints, packed into one length-delimited field or one field per value.</summary>
    public ProtoWriter Ints(int field, IEnumerable<long> values, bool packed)
    {
        if (!packed)
        {
            foreach (long v in values)
                Int(field, v);
            return this;
        }
        var inner = new ProtoWriter();
        foreach (long v in values)
            inner.Varint(unchecked((ulong)v));
        return Bytes(field, inner.ToArray());
    }

    /// <summary>Repeated fixed32 floats, packed or one field per value.</summary>
    public ProtoWriter Floats(int field, IEnumerable<float> values, bool packed)
    {
        if (!packed)
        {
            foreach (float v in values)
                Float(field, v);
            return this;
        }
        var bytes = new List<byte>();
        foreach (float v in values)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, v);
            bytes.AddRange(b);
        }
        return Bytes(field, [.. bytes]);
    }

    /// <summary>Repeated fixed64 doubles, packed.</summary>
    public ProtoWriter Doubles(int field, IEnumerable<double> values)
    {
        var bytes = new List<byte>();
        foreach (double v in values)
        {
            var b = new byte[8];
            BinaryPrimitives.WriteDoubleLittleEndian(b, v);
            bytes.AddRange(b);
        }
        return Bytes(field, [.. bytes]);
    }
}
