using System.IO.Compression;
using CamEngine.IO;
using NUnit.Framework;

namespace CamEngine.Tests.IO;

[TestFixture]
public sealed class IdxTests
{
    private static byte[] Idx(byte type, int[] dims, byte[] data)
    {
        using var ms = new MemoryStream();
        ms.Write([0, 0, type, (byte)dims.Length]);
        foreach (int d in dims)
            ms.Write([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        ms.Write(data);
        return ms.ToArray();
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(raw);
        return ms.ToArray();
    }

    [Test]
    public void Reads_raw_and_gzip_files()
    {
        var data = Enumerable.Range(0, 24).Select(i => (byte)(i * 7)).ToArray();
        var raw = Idx(0x08, [2, 3, 4], data);
        foreach (var bytes in new[] { raw, Gzip(raw) })
        {
            var a = CamEngine.IO.Idx.Read(new MemoryStream(bytes));
            Assert.That(a.Dimensions, Is.EqualTo(new[] { 2, 3, 4 }));
            Assert.That(a.Data, Is.EqualTo(data));
        }
    }

    [Test]
    public void Hostile_files_are_refused_with_a_named_problem()
    {
        var ok = Idx(0x08, [2, 2], [1, 2, 3, 4]);
        var cases = new Dictionary<string, byte[]>
        {
            ["truncated IDX header"] = ok[..3],
            ["bad magic"] = [1, 0, 8, 1, 0, 0, 0, 1, 5],
            ["element type 0x0D"] = Idx(0x0D, [1], [0, 0, 0, 0]),
            ["rank 0"] = [0, 0, 8, 0],
            ["rank 9"] = [0, 0, 8, 9],
            ["dimension 1 is 0"] = Idx(0x08, [2, 0], []),
            ["more than"] = Idx(0x08, [65536, 65536], []),
            ["data truncated"] = ok[..^1],
            ["bytes after"] = [.. ok, 9],
            ["truncated IDX dimensions"] = ok[..6],
        };
        foreach (var (problem, bytes) in cases)
        {
            var e = Assert.Throws<InvalidInputException>(() => CamEngine.IO.Idx.Read(new MemoryStream(bytes), "f.idx"), problem);
            Assert.That(e!.Message, Does.Contain(problem).IgnoreCase, problem);
            Assert.That(e.Message, Does.StartWith("f.idx: "), problem);
        }
        // A damaged gzip stream: either the inflater or the header check refuses it, naming the file.
        var gz = Gzip(ok);
        gz[gz.Length / 2] ^= 0xFF;
        gz[10] ^= 0xFF;
        var g = Assert.Throws<InvalidInputException>(() => CamEngine.IO.Idx.Read(new MemoryStream(gz), "f.idx"));
        Assert.That(g!.Message, Does.StartWith("f.idx: "));
    }

    [Test]
    public void Seeded_mutations_end_in_success_or_a_typed_error()
    {
        var valid = Gzip(Idx(0x08, [3, 5, 5], Enumerable.Range(0, 75).Select(i => (byte)i).ToArray()));
        var rawValid = Idx(0x08, [3, 5, 5], Enumerable.Range(0, 75).Select(i => (byte)i).ToArray());
        var rng = new Random(77);
        for (int i = 0; i < 2000; i++)
        {
            var b = (byte[])(i % 2 == 0 ? valid : rawValid).Clone();
            switch (rng.Next(3))
            {
                case 0:
                    b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1:
                    b = b[..rng.Next(b.Length)];
                    break;
                default:
                    b[rng.Next(b.Length)] = (byte)rng.Next(256);
                    break;
            }
            try
            {
                CamEngine.IO.Idx.Read(new MemoryStream(b));
            }
            catch (InvalidInputException)
            {
            }
        }
        Assert.Pass("2000 mutations ended in success or InvalidInputException");
    }
}
