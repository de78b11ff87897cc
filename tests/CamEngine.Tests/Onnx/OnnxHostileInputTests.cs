using NUnit.Framework;
using CamEngine.Onnx;

namespace CamEngine.Tests.Onnx;

/// <summary>Truncated and mutated ONNX files must fail with a <see cref="CamEngineException"/>, never anything else.</summary>
[TestFixture]
public class OnnxHostileInputTests
{
    [Test]
    public void EveryPrefixOfAFixture_IsInvalid()
    {
        var bytes = OnnxConverterTests.Fixture("tiny_gapcnn.onnx");
        var rng = new Random(7);
        // The first bytes, the last bytes (value infos and opset) and a random sample in between: about 200 lengths.
        var lengths = Enumerable.Range(0, 40).Concat(Enumerable.Range(bytes.Length - 60, 60))
            .Concat(Enumerable.Range(0, 100).Select(_ => rng.Next(bytes.Length))).Distinct().ToList();
        Assert.That(lengths, Has.Count.GreaterThanOrEqualTo(180));
        foreach (int n in lengths)
        {
            Assert.Throws<InvalidModelFileException>(() => OnnxConverter.Convert(bytes.AsSpan(0, n)), $"prefix of {n} bytes");
        }
    }

    private static byte[] Mutate(byte[] src, Random rng)
    {
        var b = (byte[])src.Clone();
        // Most of a fixture is raw weights; aim most mutations at the structure (the first 1.5 kB and the tail).
        int Pos(int len) => rng.Next(3) switch
        {
            0 => rng.Next(Math.Min(len, 1500)),
            1 => Math.Max(0, len - 1 - rng.Next(Math.Min(len, 200))),
            _ => rng.Next(len),
        };
        switch (rng.Next(5))
        {
            case 0:
                for (int i = rng.Next(1, 4); i > 0; i--)
                    b[Pos(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1:
                return b[..rng.Next(b.Length)];
            case 2:
            {
                int at = Pos(b.Length), n = Math.Min(rng.Next(1, 9), b.Length - at);
                for (int i = 0; i < n; i++)
                    b[at + i] = (byte)rng.Next(256);
                return b;
            }
            case 3:
            {
                int from = Pos(b.Length), n = Math.Min(rng.Next(1, 64), b.Length - from), to = Pos(b.Length);
                return [.. b[..to], .. b.AsSpan(from, n), .. b[to..]];
            }
            default:
            {
                // Overwrite a byte with a value that often matters: a varint continuation, zero or a big length.
                byte[] special = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x3A];
                b[Pos(b.Length)] = special[rng.Next(special.Length)];
                return b;
            }
        }
    }

    private static void FuzzOne(byte[] source, int seed, int count, out int converted, out int rejected)
    {
        var rng = new Random(seed);
        converted = 0;
        rejected = 0;
        var failures = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var m = Mutate(source, rng);
            try
            {
                var model = OnnxConverter.Convert(m);
                Assert.That(model.Graph.Nodes, Is.Not.Empty);
                converted++;
            }
            catch (CamEngineException)
            {
                rejected++;
            }
            catch (Exception e) when (e is not AssertionException)
            {
                failures.Add($"mutation {i}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures.Take(5)));
    }

    [Test]
    public void MutatedFixture_ConvertsOrThrowsCamEngineException()
    {
        FuzzOne(OnnxConverterTests.Fixture("tiny_gapcnn.onnx"), 12345, 600, out int converted, out int rejected);
        Assert.That(converted + rejected, Is.EqualTo(600));
        Assert.That(rejected, Is.GreaterThan(100), "the mutations should mostly break the file");
        TestContext.Out.WriteLine($"tiny_gapcnn: {converted} converted, {rejected} rejected");
    }

    [Test]
    public void MutatedSyntheticModel_ConvertsOrThrowsCamEngineException()
    {
        // A small model: every mutation lands in structure rather than in weights.
        var bytes = OnnxConverterTests.ConvModel(true, TensorEncoding.FloatDataPacked);
        FuzzOne(bytes, 777, 1000, out int converted, out int rejected);
        Assert.That(converted + rejected, Is.EqualTo(1000));
        TestContext.Out.WriteLine($"synthetic: {converted} converted, {rejected} rejected");
    }
}
