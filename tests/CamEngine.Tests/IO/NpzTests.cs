using System.IO.Compression;
using CamEngine.IO;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.IO;

public class NpzTests
{
    private static string Fixture(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "fixtures", .. parts]);

    [Test]
    public void FixtureReference_HasLogitsAndMeta()
    {
        var npz = Npz.ReadAll(Fixture("refs", "tiny_gapcnn", "chelsea.npz"));
        var logits = npz.Arrays["logits"];
        Assert.That(logits.Shape, Is.EqualTo(new[] { 1, 10 }));
        // Values printed by NumPy from the same file.
        Assert.That(logits.Data[0], Is.EqualTo(-0.07441208f).Within(1e-7f));
        Assert.That(logits.Data[9], Is.EqualTo(0.12921044f).Within(1e-7f));
        Assert.That(npz.Arrays["target_class"].Data, Is.EqualTo(new[] { 9f }), "int64 scalar converted");
        Assert.That(npz.Arrays["L0.act"].Shape, Is.EqualTo(new[] { 64, 8, 8 }));
        Assert.That(npz.Strings["meta"], Has.Length.EqualTo(1));
        Assert.That(npz.Strings["meta"][0], Does.StartWith("{\"model\": \"tiny_gapcnn\"").And.Contains("\"target_class\""));
        Assert.That(npz.Arrays, Does.Not.ContainKey("meta"));
    }

    [Test]
    public void ReadAndReadStrings_SplitTheEntries()
    {
        string path = Fixture("refs", "tiny_resnet", "coffee.npz");
        Assert.That(Npz.Read(path)["L0.act"].Shape, Is.EqualTo(new[] { 16, 16, 16 }));
        Assert.That(Npz.ReadStrings(path).Keys, Is.EquivalentTo(new[] { "meta" }));
    }

    private static MemoryStream Zip(params (string Name, byte[] Data)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
                s.Write(data);
            }
        }
        ms.Position = 0;
        return ms;
    }

    private static byte[] NpyBytes(HostTensor t)
    {
        var ms = new MemoryStream();
        Npy.Write(ms, t);
        return ms.ToArray();
    }

    [Test]
    public void WrittenArchive_RoundTrips()
    {
        var a = new HostTensor([2, 2], [1, 2, 3, 4]);
        var result = Npz.Read(Zip(("a.npy", NpyBytes(a)), ("b.npy", NpyBytes(new HostTensor([1], [5f])))));
        Assert.That(result.Keys, Is.EquivalentTo(new[] { "a", "b" }));
        Assert.That(result["a"].Data, Is.EqualTo(a.Data));
    }

    [Test]
    public void EntryOverLimit_IsRefused()
    {
        var big = NpyBytes(new HostTensor(100, 100));
        Assert.That(() => Npz.Read(Zip(("x.npy", big)), "z", maxEntryBytes: 1000),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("z[x]").And.Message.Contains("exceeds"));
    }

    [Test]
    public void TruncatedEntry_IsRefused()
    {
        var bytes = NpyBytes(new HostTensor([4], [1, 2, 3, 4]));
        Assert.That(() => Npz.Read(Zip(("x.npy", bytes[..^3]))),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("truncated"));
    }

    [Test]
    public void NotAZip_IsRefused()
    {
        Assert.That(() => Npz.Read(new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("not a valid .npz"));
    }
}
