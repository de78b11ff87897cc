using NUnit.Framework;
using CamEngine.Onnx;

namespace CamEngine.Tests.Onnx;

[TestFixture]
public class ProtoReaderTests
{
    private static ulong ReadOneVarint(byte[] bytes)
    {
        var r = new ProtoReader(bytes);
        return r.ReadVarint();
    }

    [Test]
    public void Varint_DecodesUpToTenBytes()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ReadOneVarint([0x96, 0x01]), Is.EqualTo(150UL));
            Assert.That(ReadOneVarint([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), Is.EqualTo(ulong.MaxValue));
        }
    }

    [Test]
    public void Varint_OfElevenBytes_IsInvalid()
    {
        byte[] eleven = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        var e = Assert.Throws<InvalidModelFileException>(() => ReadOneVarint(eleven));
        Assert.That(e.Message, Does.StartWith("ONNX file is truncated or corrupt").And.Contain("at byte 0"));
        // The same inside a model: field 1 (ir_version) with an 11-byte varint.
        Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert([0x08, .. eleven]));
        // Ten bytes whose last byte carries bits past 64.
        Assert.Throws<InvalidModelFileException>(() =>
            ReadOneVarint([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]));
    }

    [Test]
    public void LengthBeyondTheBuffer_IsInvalid()
    {
        // Field 7 (graph), length 16, but only 3 bytes follow.
        var e = Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert([0x3A, 0x10, 0x0A, 0x00, 0x00]));
        Assert.That(e.Message, Does.Contain("length 16 exceeds the 3 bytes left").And.Contain("at byte 1"));
        // A huge length that would overflow an int.
        Assert.Throws<InvalidModelFileException>(() =>
            OnnxConverter.Convert([0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
    }

    [Test]
    public void NestedLengthBeyondItsParent_IsInvalid()
    {
        // Graph of 4 bytes holding a node whose length (10) passes the graph's end though not the file's.
        byte[] bytes = [0x3A, 0x04, 0x0A, 0x0A, 0x00, 0x00, .. new byte[12]];
        Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(bytes));
    }

    [TestCase(3)]
    [TestCase(4)]
    [TestCase(6)]
    [TestCase(7)]
    public void GroupsAndUnknownWireTypes_AreInvalid(int wireType)
    {
        byte[] bytes = [(byte)((9 << 3) | wireType), 0x00];
        Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(bytes));
    }

    [Test]
    public void UnknownFields_AreSkippedByWireType()
    {
        var w = new ProtoWriter().Int(100, 5).Tag(101, 1).Raw(new byte[8]).Bytes(102, [1, 2, 3]).Tag(103, 5).Raw(new byte[4])
            .Int(1, 42);
        var r = new ProtoReader(w.ToArray());
        long ir = -1;
        while (r.NextField(out int f, out int wt))
        {
            if (f == 1)
                ir = r.ReadInt64();
            else
                r.Skip(wt);
        }
        Assert.That(ir, Is.EqualTo(42));
    }

    [Test]
    public void WrongWireTypeForAKnownField_IsInvalid()
    {
        // ir_version (1) written as a length-delimited field.
        Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(new ProtoWriter().String(1, "x").ToArray()));
    }

    [Test]
    public void DepthLimit_IsEnforced()
    {
        var bytes = OnnxConverterTests.ConvModel(false, TensorEncoding.Raw);
        // Model (0) > graph (1) > node (2) > attribute (3) and > value info (2) > type > tensor type > shape > dim (6).
        var e = Assert.Throws<InvalidModelFileException>(() =>
            OnnxConverter.Convert(bytes, null, new ProtoLimits { MaxDepth = 2 }));
        Assert.That(e.Message, Does.Contain("nested deeper than 2"));
        Assert.That(OnnxConverter.Convert(bytes, null, new ProtoLimits { MaxDepth = 6 }).Graph.Nodes, Has.Count.EqualTo(5));
    }

    [Test]
    public void ElementBudget_IsEnforced()
    {
        var bytes = OnnxConverterTests.ConvModel(false, TensorEncoding.FloatDataUnpacked);
        var e = Assert.Throws<InvalidModelFileException>(() =>
            OnnxConverter.Convert(bytes, null, new ProtoLimits { MaxElements = 50 }));
        Assert.That(e.Message, Does.Contain("more than 50 fields"));
    }

    [Test]
    public void InvalidUtf8String_IsInvalid()
    {
        var bytes = new ProtoWriter().Bytes(2, [0xC3, 0x28]).ToArray();
        var e = Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(bytes));
        Assert.That(e.Message, Does.Contain("UTF-8"));
    }
}
