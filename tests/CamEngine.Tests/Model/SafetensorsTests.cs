using System.Buffers.Binary;
using System.Text;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Model;

public class SafetensorsTests
{
    private static byte[] Write(IReadOnlyDictionary<string, string> meta, IReadOnlyDictionary<string, HostTensor> tensors)
    {
        using var ms = new MemoryStream();
        Safetensors.Write(ms, meta, tensors);
        return ms.ToArray();
    }

    private static InvalidModelFileException Rejects(byte[] file) =>
        Assert.Throws<InvalidModelFileException>(() => Safetensors.Read(file))!;

    private static void RejectsWith(string header, int bufferBytes, string expected)
    {
        var e = Rejects(TinyModel.Raw(header, bufferBytes));
        Assert.That(e.Message, Does.Contain(expected));
    }

    [Test]
    public void RoundTripKeepsMetadataShapesAndBits()
    {
        var tensors = TinyModel.Weights();
        tensors["special"] = new HostTensor([5], [float.NaN, float.NegativeInfinity, -0f, float.Epsilon, 3.5f]);
        tensors["empty"] = new HostTensor([0, 3], []);
        var meta = new Dictionary<string, string> { ["k"] = "v \"quoted\" \u00e9\n", ["z"] = "" };

        var back = Safetensors.Read(Write(meta, tensors));

        Assert.That(back.Metadata, Is.EquivalentTo(meta));
        Assert.That(back.Tensors.Keys, Is.EquivalentTo(tensors.Keys));
        foreach (var (name, t) in tensors)
        {
            Assert.That(back.Tensors[name].Shape, Is.EqualTo(t.Shape), name);
            var bits = back.Tensors[name].Data.Select(BitConverter.SingleToInt32Bits);
            Assert.That(bits, Is.EqualTo(t.Data.Select(BitConverter.SingleToInt32Bits)), name);
        }
    }

    [Test]
    public void WriteIsDeterministicPaddedAndOrdered()
    {
        var a = TinyModel.Weights();
        var b = a.Reverse().ToDictionary(p => p.Key, p => p.Value);
        var meta = new Dictionary<string, string> { ["x"] = "1" };
        var fa = Write(meta, a);
        var fb = Write(meta, b);

        Assert.That(fb, Is.EqualTo(fa));
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(fa);
        Assert.That(n % 8, Is.Zero);
        string header = Encoding.UTF8.GetString(fa, 8, (int)n);
        Assert.That(header, Does.StartWith("{\"__metadata__\":{\"x\":\"1\"}"));
        Assert.That(header.IndexOf("conv.bias", StringComparison.Ordinal),
            Is.LessThan(header.IndexOf("conv.weight", StringComparison.Ordinal)));
        Assert.That(header.IndexOf("conv.weight", StringComparison.Ordinal),
            Is.LessThan(header.IndexOf("fc.bias", StringComparison.Ordinal)));
        // conv.bias is first in the buffer: its float32 bits follow the header.
        float first = BinaryPrimitives.ReadSingleLittleEndian(fa.AsSpan(8 + (int)n));
        Assert.That(first, Is.EqualTo(a["conv.bias"].Data[0]));
    }

    [Test]
    public void WriteRejectsReservedTensorNames()
    {
        var meta = new Dictionary<string, string>();
        Assert.Throws<ArgumentException>(() => Write(meta, new Dictionary<string, HostTensor> { [""] = new(1) }));
        Assert.Throws<ArgumentException>(() => Write(meta, new Dictionary<string, HostTensor> { ["__metadata__"] = new(1) }));
    }

    [Test]
    public void WriteRefusesHeaderItCouldNotReadBack()
    {
        var meta = new Dictionary<string, string> { ["big"] = new string('x', (int)Safetensors.DefaultMaxHeaderBytes) };
        var e = Assert.Throws<ArgumentException>(() => Write(meta, new Dictionary<string, HostTensor>()))!;
        Assert.That(e.Message, Does.Contain("header would be"));
    }

    [Test]
    public void ReadsF16()
    {
        // 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), -inf
        ushort[] bits = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0xFC00];
        var buf = new byte[12];
        for (int i = 0; i < bits.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * i), bits[i]);
        var file = TinyModel.Raw(Encoding.UTF8.GetBytes("{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}"), buf);

        var t = Safetensors.Read(file).Tensors["h"];

        Assert.That(t.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(t.Data, Is.EqualTo(new[] { 1f, -2f, 0.5f, 65504f, MathF.Pow(2, -24), float.NegativeInfinity }));
    }

    [Test]
    public void ReadsBF16()
    {
        // 1, -2, 3.140625 (0x40490000), 0.15625 (0x3E200000)
        ushort[] bits = [0x3F80, 0xC000, 0x4049, 0x3E20];
        var buf = new byte[8];
        for (int i = 0; i < bits.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(2 * i), bits[i]);
        var file = TinyModel.Raw(Encoding.UTF8.GetBytes("{\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}"), buf);

        var t = Safetensors.Read(file).Tensors["b"];

        Assert.That(t.Data, Is.EqualTo(new[] { 1f, -2f, 3.140625f, 0.15625f }));
    }

    [Test]
    public void ReadsMixedDtypesInAnyHeaderOrderAndEmptyMetadata()
    {
        var buf = new byte[6];
        BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(2), 7.25f);
        BinaryPrimitives.WriteUInt16LittleEndian(buf, 0x3F80);
        string header = "{\"f\":{\"shape\":[1],\"dtype\":\"F32\",\"data_offsets\":[2,6]},"
                        + "\"b\":{\"data_offsets\":[0,2],\"dtype\":\"BF16\",\"shape\":[]},\"__metadata__\":{}}   ";
        var c = Safetensors.Read(TinyModel.Raw(Encoding.UTF8.GetBytes(header), buf));

        Assert.That(c.Metadata, Is.Empty);
        Assert.That(c.Tensors["f"].Data, Is.EqualTo(new[] { 7.25f }));
        Assert.That(c.Tensors["b"].Shape, Is.Empty);
        Assert.That(c.Tensors["b"].Data, Is.EqualTo(new[] { 1f }));
    }

    [Test]
    public void RejectsEveryTruncation()
    {
        var file = Write(new Dictionary<string, string> { ["m"] = "x" },
            new Dictionary<string, HostTensor> { ["t"] = new([3], [1f, 2f, 3f]) });
        Assert.That(Safetensors.Read(file).Tensors["t"].Data, Is.EqualTo(new[] { 1f, 2f, 3f }));
        for (int len = 0; len < file.Length; len++)
            Assert.Throws<InvalidModelFileException>(() => Safetensors.Read(file.AsSpan(0, len)), $"prefix {len}");
    }

    [Test]
    public void RejectsFileShorterThanLengthField() =>
        Assert.That(Rejects([1, 0, 0]).Message, Does.Contain("at least 8"));

    [Test]
    public void RejectsHeaderLongerThanFile()
    {
        var file = TinyModel.Raw("{}", 0);
        BinaryPrimitives.WriteUInt64LittleEndian(file, 3);
        Assert.That(Rejects(file).Message, Does.Contain("past the end of the file"));
    }

    [TestCase(16UL * 1024 * 1024 + 1)]
    [TestCase((ulong)long.MaxValue)]
    [TestCase(ulong.MaxValue - 7)]
    [TestCase(ulong.MaxValue)]
    public void RejectsHugeHeaderLength(ulong n)
    {
        var file = TinyModel.Raw("{}      ", 0);
        BinaryPrimitives.WriteUInt64LittleEndian(file, n);
        Assert.That(Rejects(file).Message, Does.Contain("exceeds the limit"));
    }

    [Test]
    public void HonoursCustomHeaderCap()
    {
        var file = TinyModel.Raw("{\"__metadata__\":{\"a\":\"b\"}}", 0);
        Assert.That(Safetensors.Read(file).Metadata["a"], Is.EqualTo("b"));
        var e = Assert.Throws<InvalidModelFileException>(() => Safetensors.Read(file, maxHeaderBytes: 8))!;
        Assert.That(e.Message, Does.Contain("exceeds the limit"));
    }

    [TestCase("")]
    [TestCase(" {}")]
    [TestCase("[]")]
    [TestCase("\uFEFF{}")]
    public void RejectsHeaderNotStartingWithBrace(string header) =>
        RejectsWith(header, 0, "does not begin with '{'");

    [Test]
    public void RejectsInvalidUtf8()
    {
        var header = Encoding.UTF8.GetBytes("{\"__metadata__\":{\"a\":\"xx\"}}");
        header[22] = 0xFF;
        Assert.That(Rejects(TinyModel.Raw(header, [])).Message, Does.Contain("UTF-8"));
    }

    [Test]
    public void RejectsOverlongUtf8()
    {
        // 0xC0 0xAF is an overlong encoding of '/'.
        var header = Encoding.UTF8.GetBytes("{\"__metadata__\":{\"a\":\"xx\"}}");
        header[22] = 0xC0;
        header[23] = 0xAF;
        Assert.That(Rejects(TinyModel.Raw(header, [])).Message, Does.Contain("UTF-8"));
    }

    [TestCase("{")]
    [TestCase("{\"a\":}")]
    [TestCase("{} {}")]
    [TestCase("{\"__metadata__\":{\"a\":\"b\",}}")]
    [TestCase("{/*c*/}")]
    public void RejectsMalformedJson(string header) => RejectsWith(header, 0, "not valid JSON");

    [Test]
    public void AllowsTrailingSpacesButNotTrailingText()
    {
        Assert.That(Safetensors.Read(TinyModel.Raw("{}      ", 0)).Tensors, Is.Empty);
        RejectsWith("{}     x", 0, "not valid JSON");
    }

    [Test]
    public void RejectsDuplicateTensorNames() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    + "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "Duplicate");

    [Test]
    public void RejectsDuplicateMetadataKeys() =>
        RejectsWith("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "Duplicate");

    [Test]
    public void RejectsDuplicateFieldInEntry() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "Duplicate");

    [Test]
    public void RejectsExcessiveDepth()
    {
        string deep = new string('[', 20) + new string(']', 20);
        RejectsWith("{\"__metadata__\":{\"a\":" + deep + "}}", 0, "depth");
    }

    [TestCase("{\"__metadata__\":{\"a\":1}}", "must be a string")]
    [TestCase("{\"__metadata__\":{\"a\":null}}", "must be a string")]
    [TestCase("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", "must be a string")]
    [TestCase("{\"__metadata__\":[]}", "__metadata__ must be an object")]
    [TestCase("{\"__metadata__\":\"x\"}", "__metadata__ must be an object")]
    public void RejectsBadMetadata(string header, string expected) => RejectsWith(header, 0, expected);

    [TestCase("I64")]
    [TestCase("F64")]
    [TestCase("U8")]
    [TestCase("f32")]
    [TestCase("")]
    public void RejectsUnknownDtype(string dtype) =>
        RejectsWith("{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "is not supported");

    [Test]
    public void RejectsNonStringDtype() =>
        RejectsWith("{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype must be a string");

    [TestCase("[-1]")]
    [TestCase("[2.5]")]
    [TestCase("[1e2]")]
    [TestCase("[\"4\"]")]
    [TestCase("[null]")]
    [TestCase("[[1]]")]
    [TestCase("[99999999999999999999999]")]
    public void RejectsBadDimensions(string shape) =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,4]}}", 4, "non-negative integer");

    [Test]
    public void RejectsShapeThatIsNotAnArray() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, "shape must be an array");

    [Test]
    public void RejectsDimensionAboveIntRange() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,4]}}", 4, "too large");

    [TestCase("[65536,65536]")]
    [TestCase("[2147483647,2]")]
    [TestCase("[46341,46341]")]
    public void RejectsElementCountOverflow(string shape) =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,4]}}", 4, "more than 2147483647 elements");

    [Test]
    public void AcceptsShapeWithZeroAfterLargeDimensions()
    {
        var c = Safetensors.Read(TinyModel.Raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[2147483647,0],\"data_offsets\":[0,0]}}", 0));
        Assert.That(c.Tensors["t"].Length, Is.Zero);
    }

    [Test]
    public void RejectsOffsetsPastBuffer() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the data buffer");

    [Test]
    public void RejectsHugeOffsets() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551610,18446744073709551614]}}", 4,
            "leaves a gap");

    [TestCase("[0]")]
    [TestCase("[0,4,8]")]
    [TestCase("{\"begin\":0}")]
    [TestCase("[-4,0]")]
    [TestCase("[0,4.0]")]
    [TestCase("[0,18446744073709551616]")]
    public void RejectsMalformedOffsets(string offsets) =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", 4, "data_offsets must be");

    [Test]
    public void RejectsEndBeforeBegin() =>
        RejectsWith("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "before begin");

    [Test]
    public void RejectsOverlappingTensors() =>
        RejectsWith("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps the previous tensor");

    [Test]
    public void RejectsAliasedTensors() =>
        RejectsWith("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlaps the previous tensor");

    [Test]
    public void RejectsGapBetweenTensors() =>
        RejectsWith("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "leaves a gap");

    [Test]
    public void RejectsGapAtStart() =>
        RejectsWith("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "leaves a gap");

    [TestCase(1)]
    [TestCase(8)]
    public void RejectsTrailingBytes(int extra) =>
        RejectsWith("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8 + extra, "trailing bytes");

    [Test]
    public void RejectsBufferWithoutTensors() => RejectsWith("{}", 4, "trailing bytes");

    [TestCase("F32", "[3]", "[0,8]")]
    [TestCase("F16", "[3]", "[0,12]")]
    [TestCase("BF16", "[2,2]", "[0,16]")]
    public void RejectsOffsetsThatMismatchSize(string dtype, string shape, string offsets) =>
        RejectsWith("{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}", 16, "needs");

    [TestCase("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", "needs exactly the fields")]
    [TestCase("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "needs exactly the fields")]
    [TestCase("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", "unexpected field 'extra'")]
    [TestCase("{\"t\":[1]}", "entry must be an object")]
    [TestCase("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "empty name")]
    public void RejectsMalformedEntries(string header, string expected) => RejectsWith(header, 4, expected);

    [Test]
    public void MessageNamesTheTensor() =>
        RejectsWith("{\"layer4.0.conv1.weight\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
            "'layer4.0.conv1.weight'");

    [Test]
    public void RejectsLoneSurrogateEscapes()
    {
        RejectsWith("{\"__metadata__\":{\"a\":\"\\ud800\"}}", 0, "safetensors header is");
        RejectsWith("{\"\\udc00\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "safetensors header is");
        RejectsWith("{\"__metadata__\":{\"\\ud800x\":\"a\"}}", 0, "safetensors header is");
    }

    [Test]
    public void MessagesStayOnOneLine()
    {
        var e = Rejects(TinyModel.Raw("{\"a\\nb\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1));
        Assert.That(e.Message, Does.Not.Contain('\n'));
        Assert.That(e.Message, Does.Contain("a\\u000ab"));
    }
}
