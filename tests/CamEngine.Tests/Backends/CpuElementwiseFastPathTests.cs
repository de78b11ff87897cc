using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The managed CPU backend's vector paths for the element-wise ops of MobileNet and EfficientNet: clip (ReLU6),
/// exactly <see cref="Clip.Value"/> (bounds, NaN, infinities); sigmoid against the double reference; and broadcasts
/// of one value per (n, c) row (squeeze-excitation gates, both operand orders, all four ops, a batch-broadcast gate,
/// a parallel-sized one) against the reference, with a broadcast outside the fast path for contrast.
/// </summary>
[TestFixture]
internal sealed class CpuElementwiseFastPathTests
{
    private readonly CpuBackend _cpu = new();
    private readonly ReferenceBackend _ref = new();

    [TestCase(1037)]
    [TestCase(70001)]
    public void Clip_is_exactly_the_scalar_rule(int n)
    {
        var rng = new Random(8);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 16 - 5)).ToArray();
        float[] special = [0f, 6f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 5.9999995f, 1e-30f];
        special.CopyTo(data, n - special.Length - 3);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        var clip = new Clip(0f, 6f);
        _cpu.Unary(clip, x, y);
        var actual = _cpu.Download(y);
        var expected = data.Select(clip.Value).ToArray();
        for (int i = 0; i < n; i++)
            Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected[i])),
                $"clip({data[i]}) at {i}: {actual[i]} vs {expected[i]}");
        Assert.That(actual.Count(v => v == 6f), Is.GreaterThan(n / 8), "values clipped at 6");
    }

    [Test]
    public void Sigmoid_matches_reference()
    {
        const int n = 1037;
        var rng = new Random(9);
        var data = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 60 - 30)).ToArray();
        float[] special = [0f, -100f, 100f, -88f, 88f, 1e-7f];
        special.CopyTo(data, 5);
        using var x = _cpu.Upload(data, n);
        using var y = _cpu.Allocate(n);
        using var xr = _ref.Upload(data, n);
        using var yr = _ref.Allocate(n);
        _cpu.Unary(new Sigmoid(), x, y);
        _ref.Unary(new Sigmoid(), xr, yr);
        TensorAssert.Close(_cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-7, 1e-6, "sigmoid");
    }

    public static IEnumerable<TestCaseData> BroadcastCases()
    {
        var shapes = new (int[] A, int[] B, string Name)[]
        {
            ([2, 5, 7, 9], [2, 5, 1, 1], "gate per (n, c)"),
            ([2, 5, 1, 1], [2, 5, 7, 9], "gate on the left"),
            ([3, 4, 5, 5], [1, 4, 1, 1], "gate broadcast over the batch"),
            ([2, 40, 31, 30], [2, 40, 1, 1], "large enough to run in parallel"),
            ([2, 5, 7, 9], [1, 1, 7, 9], "plane broadcast (outside the fast path)"),
        };
        foreach (var (a, b, name) in shapes)
        foreach (var op in Enum.GetValues<BinaryOp>())
            yield return new TestCaseData(a, b, op).SetName($"{op}: {name}");
    }

    [TestCaseSource(nameof(BroadcastCases))]
    public void Row_broadcast_matches_reference(int[] aShape, int[] bShape, BinaryOp op)
    {
        var rng = new Random(10);
        int na = aShape.Aggregate(1, (p, d) => p * d), nb = bShape.Aggregate(1, (p, d) => p * d);
        // Divisors kept away from zero.
        var ad = Enumerable.Range(0, na).Select(_ => (float)(0.5 + rng.NextDouble()) * (rng.Next(2) * 2 - 1)).ToArray();
        var bd = Enumerable.Range(0, nb).Select(_ => (float)(0.5 + rng.NextDouble()) * (rng.Next(2) * 2 - 1)).ToArray();
        var yShape = BroadcastShape.Broadcast(aShape, bShape);
        using var a = _cpu.Upload(ad, aShape);
        using var b = _cpu.Upload(bd, bShape);
        using var y = _cpu.Allocate(yShape);
        using var ar = _ref.Upload(ad, aShape);
        using var br = _ref.Upload(bd, bShape);
        using var yr = _ref.Allocate(yShape);
        _cpu.Binary(op, a, b, y);
        _ref.Binary(op, ar, br, yr);
        TensorAssert.Close(_cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-6, 1e-6, $"{op}");
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        _cpu.Dispose();
        _ref.Dispose();
    }
}
