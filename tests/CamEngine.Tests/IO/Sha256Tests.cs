using System.Text;
using CamEngine.IO;
using CamEngine.Reporting;
using NUnit.Framework;

namespace CamEngine.Tests.IO;

/// <summary>The managed SHA-256 behind the manifest's model hash, against the FIPS 180-2 / NIST example vectors
/// and against the platform implementation on every length around the block and padding boundaries.</summary>
public sealed class Sha256Tests
{
    [TestCase("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [TestCase("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [TestCase("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    [TestCase("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")]
    public void Known_vectors(string message, string hex) =>
        Assert.That(Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes(message))), Is.EqualTo(hex));

    [Test]
    public void One_million_a_in_uneven_pieces()
    {
        var sha = new Sha256();
        var a = Enumerable.Repeat((byte)'a', 1_000_000).ToArray();
        var rng = new Random(18);
        for (int at = 0; at < a.Length;)
        {
            int n = Math.Min(a.Length - at, rng.Next(1, 200));
            sha.Append(a.AsSpan(at, n));
            at += n;
        }
        Assert.That(Convert.ToHexStringLower(sha.Finish()), Is.EqualTo("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
        Assert.That(() => sha.Finish(), Throws.InvalidOperationException);
    }

    [Test]
    public void Every_length_to_300_bytes_matches_the_platform_hash()
    {
        var rng = new Random(180);
        for (int n = 0; n <= 300; n++)
        {
            var data = new byte[n];
            rng.NextBytes(data);
            Assert.That(Sha256.Hash(data), Is.EqualTo(System.Security.Cryptography.SHA256.HashData(data)), $"{n} bytes");
        }
    }

    [Test]
    public void The_manifest_hashes_a_file_without_the_platform_crypto()
    {
        string path = Path.Combine(Path.GetTempPath(), "camengine-sha-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("abc"));
            Assert.That(RunManifest.Sha256Of(path), Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.That(() => RunManifest.Sha256Of(path), Throws.TypeOf<CamEngineException>().With.Message.StartsWith("cannot hash"));
        // The engine assembly holds no reference to System.Security.Cryptography's hashing: nothing in a run loads libssl.
        var refs = typeof(RunManifest).Assembly.GetReferencedAssemblies().Select(r => r.Name);
        Assert.That(refs, Has.None.EqualTo("System.Security.Cryptography"));
    }
}
