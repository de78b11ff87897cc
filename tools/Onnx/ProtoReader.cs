using System.Buffers.Binary;
using System.Text;

namespace CamEngine.Onnx;

/// <summary>Limits a <see cref="ProtoReader"/> enforces on untrusted input, shared by a reader and its sub-readers.</summary>
internal sealed class ProtoLimits
{
    /// <summary>Deepest message nesting accepted (the top-level message is depth 0).</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Most fields plus packed elements one parse may decode in total.</summary>
    public long MaxElements { get; init; } = 1L << 28;

    /// <summary>Elements decoded so far.</summary>
    public long Used { get; private set; }

    /// <summary>Counts <paramref name="n"/> more elements; false once the budget is exceeded.</summary>
    public bool Take(long n)
    {
        Used += n;
        return Used <= MaxElements;
    }
}

/// <summary>
/// Protobuf wire-format reader over one message's bytes. Every length is bounded by the bytes left, varints
/// are capped at 10 bytes, groups (wire types 3/4) are refused, nesting depth and the total number of decoded
/// elements are limited. Every failure is an <see cref="InvalidModelFileException"/> naming the absolute byte
/// offset in the file.
/// </summary>
internal ref struct ProtoReader
{
    public const int WireVarint = 0;
    public const int WireFixed64 = 1;
    public const int WireLengthDelimited = 2;
    public const int WireFixed32 = 5;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly ReadOnlySpan<byte> _buf;
    private readonly long _base;
    private readonly int _depth;
    private readonly ProtoLimits _limits;
    private int _pos;

    /// <summary>Reads a top-level message.</summary>
    public ProtoReader(ReadOnlySpan<byte> buffer, ProtoLimits? limits = null)
        : this(buffer, 0, 0, limits ?? new ProtoLimits())
    {
    }

    private ProtoReader(ReadOnlySpan<byte> buffer, long baseOffset, int depth, ProtoLimits limits)
    {
        _buf = buffer;
        _base = baseOffset;
        _depth = depth;
        _limits = limits;
        _pos = 0;
    }

    /// <summary>Absolute offset of the next byte in the file.</summary>
    public readonly long Offset => _base + _pos;

    /// <summary>True when the message has no bytes left.</summary>
    public readonly bool AtEnd => _pos >= _buf.Length;

    /// <summary>An error at the current offset.</summary>
    public readonly InvalidModelFileException Error(string what) => Error(what, Offset);

    private static InvalidModelFileException Error(string what, long at) =>
        new($"ONNX file is truncated or corrupt: {what} at byte {at}");

    /// <summary>Reads the next field's tag; false at the end of the message.</summary>
    public bool NextField(out int field, out int wireType)
    {
        field = 0;
        wireType = 0;
        if (AtEnd)
            return false;
        long at = Offset;
        ulong tag = ReadVarint();
        wireType = (int)(tag & 7);
        ulong number = tag >> 3;
        if (number == 0 || number > 536_870_911)
            throw Error($"invalid field number {number}", at);
        field = (int)number;
        if (wireType is 3 or 4)
            throw Error($"field {field} uses protobuf groups (wire type {wireType}), which ONNX never writes", at);
        if (wireType is not (WireVarint or WireFixed64 or WireLengthDelimited or WireFixed32))
            throw Error($"field {field} has unknown wire type {wireType}", at);
        Count(1);
        return true;
    }

    private readonly void Count(long n)
    {
        if (!_limits.Take(n))
            throw Error($"more than {_limits.MaxElements} fields and elements");
    }

    /// <summary>Reads a base-128 varint of at most 10 bytes.</summary>
    public ulong ReadVarint()
    {
        long start = Offset;
        ulong result = 0;
        for (int i = 0; i < 10; i++)
        {
            if (_pos >= _buf.Length)
                throw Error("varint runs past the end of its message", start);
            byte b = _buf[_pos++];
            if (i == 9 && b > 1)
                throw Error("varint overflows 64 bits", start);
            result |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
                return result;
        }
        throw Error("varint longer than 10 bytes", start);
    }

    /// <summary>Reads a varint as a signed 64-bit integer (protobuf int64).</summary>
    public long ReadInt64() => unchecked((long)ReadVarint());

    /// <summary>Reads a varint that must fit a signed 32-bit integer (protobuf int32, enums).</summary>
    public int ReadInt32()
    {
        long at = Offset;
        long v = ReadInt64();
        if (v is < int.MinValue or > int.MaxValue)
            throw Error($"value {v} does not fit a 32-bit field", at);
        return (int)v;
    }

    /// <summary>Reads a little-endian fixed32 float.</summary>
    public float ReadFloat() => BinaryPrimitives.ReadSingleLittleEndian(Take(4, "fixed32 value"));

    /// <summary>Reads a little-endian fixed64 double.</summary>
    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, "fixed64 value"));

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (_buf.Length - _pos < n)
            throw Error($"{what} runs past the end of its message");
        var s = _buf.Slice(_pos, n);
        _pos += n;
        return s;
    }

    /// <summary>Reads a length-delimited payload; the length is bounded by the bytes left.</summary>
    public ReadOnlySpan<byte> ReadBytes() => ReadBytes(out _);

    private ReadOnlySpan<byte> ReadBytes(out long start)
    {
        long at = Offset;
        ulong len = ReadVarint();
        if (len > (ulong)(_buf.Length - _pos))
            throw Error($"length {len} exceeds the {_buf.Length - _pos} bytes left in its message", at);
        start = Offset;
        var s = _buf.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    /// <summary>Reads a length-delimited UTF-8 string (invalid UTF-8 is an error).</summary>
    public string ReadString()
    {
        var bytes = ReadBytes(out long start);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error("string is not valid UTF-8", start);
        }
    }

    /// <summary>Reads a length-delimited embedded message, one level deeper.</summary>
    public ProtoReader ReadMessage()
    {
        var bytes = ReadBytes(out long start);
        if (_depth + 1 > _limits.MaxDepth)
            throw Error($"messages nested deeper than {_limits.MaxDepth}", start);
        return new ProtoReader(bytes, start, _depth + 1, _limits);
    }

    /// <summary>Skips a field's value by its wire type.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case WireVarint:
                ReadVarint();
                break;
            case WireFixed64:
                Take(8, "fixed64 value");
                break;
            case WireLengthDelimited:
                ReadBytes();
                break;
            case WireFixed32:
                Take(4, "fixed32 value");
                break;
            default:
                throw Error($"cannot skip wire type {wireType}");
        }
    }

    /// <summary>Checks a known field's wire type.</summary>
    public readonly void Expect(int field, int wireType, int expected)
    {
        if (wireType != expected)
            throw Error($"field {field} has wire type {wireType}, expected {expected}");
    }

    /// <summary>Appends a repeated varint field's values, packed (wire type 2) or one unpacked value (wire type 0).</summary>
    public void ReadRepeatedInt64(int field, int wireType, List<long> into)
    {
        if (wireType == WireVarint)
        {
            into.Add(ReadInt64());
            return;
        }
        Expect(field, wireType, WireLengthDelimited);
        var bytes = ReadBytes(out long start);
        int n = 0;
        foreach (byte b in bytes)
        {
            if ((b & 0x80) == 0)
                n++;
        }
        Count(n);
        var inner = new ProtoReader(bytes, start, _depth, _limits);
        into.EnsureCapacity(into.Count + n);
        while (!inner.AtEnd)
            into.Add(inner.ReadInt64());
    }

    /// <summary>Appends a repeated float field's values, packed (wire type 2) or one unpacked value (wire type 5).</summary>
    public void ReadRepeatedFloat(int field, int wireType, List<float> into)
    {
        if (wireType == WireFixed32)
        {
            into.Add(ReadFloat());
            return;
        }
        Expect(field, wireType, WireLengthDelimited);
        long at = Offset;
        var bytes = ReadBytes();
        if (bytes.Length % 4 != 0)
            throw Error($"packed float field {field} has {bytes.Length} bytes, not a multiple of 4", at);
        Count(bytes.Length / 4);
        into.EnsureCapacity(into.Count + bytes.Length / 4);
        for (int i = 0; i < bytes.Length; i += 4)
            into.Add(BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i, 4)));
    }

    /// <summary>Appends a repeated double field's values, packed (wire type 2) or one unpacked value (wire type 1).</summary>
    public void ReadRepeatedDouble(int field, int wireType, List<double> into)
    {
        if (wireType == WireFixed64)
        {
            into.Add(ReadDouble());
            return;
        }
        Expect(field, wireType, WireLengthDelimited);
        long at = Offset;
        var bytes = ReadBytes();
        if (bytes.Length % 8 != 0)
            throw Error($"packed double field {field} has {bytes.Length} bytes, not a multiple of 8", at);
        Count(bytes.Length / 8);
        into.EnsureCapacity(into.Count + bytes.Length / 8);
        for (int i = 0; i < bytes.Length; i += 8)
            into.Add(BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i, 8)));
    }
}
