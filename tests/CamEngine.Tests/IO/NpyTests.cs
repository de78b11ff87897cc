using System.Buffers.Binary;
using System.Text;
using CamEngine.IO;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.IO;

public class NpyTests
{
    private static string Fixture(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "fixtures", .. parts]);

    /// <summary>Builds a version-1.0 .npy image with the given header text and data bytes.</summary>
    private static byte[] Npy1(string header, byte[] data)
    {
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        var len = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        ms.Write(len);
        ms.Write(Encoding.ASCII.GetBytes(header));
        ms.Write(data);
        return ms.ToArray();
    }

    private static byte[] Floats(params float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    [Test]
    public void RoundTrip_KeepsShapeAndValues()
    {
        var t = new HostTensor([2, 3], [1f, -2.5f, 3.25f, float.MaxValue, 0f, 1e-30f]);
        var ms = new MemoryStream();
        Npy.Write(ms, t);
        Assert.That(ms.Length, Is.EqualTo(128 + 24), "header padded to 128 bytes, then 6 floats");
        Assert.That(ms.GetBuffer()[127], Is.EqualTo((byte)'\n'));
        ms.Position = 0;
        var back = Npy.Read(ms);
        Assert.That(back.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(back.Data, Is.EqualTo(t.Data));
    }

    [Test]
    public void Write_HeaderIsNumPyDict()
    {
        var ms = new MemoryStream();
        Npy.Write(ms, new HostTensor([5], new float[5]));
        string header = Encoding.ASCII.GetString(ms.ToArray(), 10, 118);
        Assert.That(header, Does.EndWith(" \n"));
        Assert.That(header.TrimEnd(), Is.EqualTo("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"));
        Assert.That(ms.Length, Is.EqualTo(128 + 20));
    }

    [Test]
    public void Write_ToPath_IsAtomicAndReadable()
    {
        string dir = Path.Combine(Path.GetTempPath(), "camengine-npy-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "a.npy");
            Npy.Write(path, new HostTensor([1], [7f]));
            Npy.Write(path, new HostTensor([2], [8f, 9f]));
            Assert.That(Npy.Read(path).Data, Is.EqualTo(new[] { 8f, 9f }));
            Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1), "no temporary file left behind");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void ZeroDimensionalArray_RoundTrips()
    {
        var ms = new MemoryStream();
        Npy.Write(ms, new HostTensor([], [4.5f]));
        ms.Position = 0;
        var back = Npy.Read(ms);
        Assert.That(back.Shape, Is.Empty);
        Assert.That(back.Data, Is.EqualTo(new[] { 4.5f }));
    }

    [Test]
    public void Fixture_Input_HasNchwShape()
    {
        var t = Npy.Read(Fixture("inputs", "chelsea_32_imagenet.npy"));
        Assert.That(t.Shape, Is.EqualTo(new[] { 1, 3, 32, 32 }));
        // ImageNet-normalised pixels lie within [(0 - 0.485) / 0.229, (1 - 0.406) / 0.225].
        Assert.That(t.Data.Min(), Is.GreaterThanOrEqualTo(-2.118f));
        Assert.That(t.Data.Max(), Is.LessThanOrEqualTo(2.641f));
    }

    [Test]
    public void Float64AndUInt8AndInt64_AreConvertedToFloat32()
    {
        var f8 = new byte[16];
        BinaryPrimitives.WriteDoubleLittleEndian(f8, 0.1);
        BinaryPrimitives.WriteDoubleLittleEndian(f8.AsSpan(8), -3.0);
        var t = Npy.Read(new MemoryStream(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", f8)));
        Assert.That(t.Data, Is.EqualTo(new[] { 0.1f, -3f }));

        var u1 = Npy.Read(new MemoryStream(Npy1("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }\n", [0, 128, 255])));
        Assert.That(u1.Shape, Is.EqualTo(new[] { 1, 3 }));
        Assert.That(u1.Data, Is.EqualTo(new[] { 0f, 128f, 255f }));

        var i8 = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(i8, -9);
        var t8 = Npy.Read(new MemoryStream(Npy1("{\"shape\": (), \"fortran_order\": False, \"descr\": \"<i8\"}\n", i8)));
        Assert.That(t8.Data, Is.EqualTo(new[] { -9f }));
    }

    [Test]
    public void Version2Header_IsRead()
    {
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0]);
        var len = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)header.Length);
        ms.Write(len);
        ms.Write(Encoding.ASCII.GetBytes(header));
        ms.Write(Floats(1.5f, 2.5f));
        ms.Position = 0;
        Assert.That(Npy.Read(ms).Data, Is.EqualTo(new[] { 1.5f, 2.5f }));
    }

    [Test]
    public void UnicodeScalar_IsReadAsString()
    {
        // '<U5' holding "héllo" padded: 5 UTF-32LE code units.
        var data = new UTF32Encoding(false, false).GetBytes("h\u00e9l");
        var padded = new byte[20];
        data.CopyTo(padded, 0);
        var bytes = Npy1("{'descr': '<U5', 'fortran_order': False, 'shape': (), }\n", padded);
        Assert.That(Npy.ReadStrings(new MemoryStream(bytes)), Is.EqualTo(new[] { "h\u00e9l" }));
        Assert.That(() => Npy.Read(new MemoryStream(bytes)),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("strings"));
    }

    private static readonly object[] HostileCases =
    [
        new object[] { "bad magic", new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'X', 1, 0, 0, 0 }, "bad magic" },
        new object[] { "version 4.0", new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 4, 0, 0, 0 }, "version 4.0" },
        new object[] { "empty", Array.Empty<byte>(), "bad magic" },
        new object[] { "fortran order", Npy1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", Floats(1, 2, 3, 4)), "fortran_order" },
        new object[] { "big endian", Npy1("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", Floats(1)), "big-endian" },
        new object[] { "complex dtype", Npy1("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", new byte[8]), "unsupported dtype" },
        new object[] { "object dtype", Npy1("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", new byte[8]), "unsupported dtype" },
        new object[] { "structured dtype", Npy1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", new byte[4]), "structured" },
        new object[] { "shape overflow", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 4), }\n", Floats(1)), "more than" },
        new object[] { "dimension overflow", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }\n", Floats(1)), "exceeds" },
        new object[] { "negative dimension", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", Floats(1)), "integer" },
        new object[] { "truncated data", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", Floats(1, 2)), "truncated" },
        new object[] { "trailing data", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", Floats(1, 2)), "after" },
        new object[] { "missing key", Npy1("{'descr': '<f4', 'shape': (1,), }\n", Floats(1)), "must have" },
        new object[] { "unknown key", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", Floats(1)), "unexpected key" },
        new object[] { "duplicate key", Npy1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", Floats(1)), "duplicate" },
        new object[] { "shape not a tuple", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }\n", Floats(1)), "not a tuple" },
        new object[] { "code after dict", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } ; x\n", Floats(1)), "after the dictionary" },
        new object[] { "truncated header", Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", [])[..30], "truncated .npy header" },
    ];

    [TestCaseSource(nameof(HostileCases))]
    public void Hostile_IsRefusedWithNamedProblem(string what, byte[] file, string expected)
    {
        Assert.That(() => Npy.Read(new MemoryStream(file), what),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains(expected).And.Message.Contains(what));
    }

    [Test]
    public void HugeHeaderLength_IsRefusedBeforeReading()
    {
        var file = new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0, 0xFF, 0xFF, 0xFF, 0x7F };
        Assert.That(() => Npy.Read(new MemoryStream(file)),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("exceeds the limit"));
    }

    [Test]
    public void DeclaredSizeOverLimit_IsRefusedBeforeAllocating()
    {
        var file = Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }\n", Floats(1));
        Assert.That(() => Npy.Read(new MemoryStream(file), "big", maxDataBytes: 1000),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("over the limit"));
    }
}
