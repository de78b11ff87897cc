using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using CamEngine.Tests.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// What the managed CPU backend keeps only for speed (<see cref="Backend.TrimCaches"/>,
/// <see cref="Backend.WeightFormCacheBytes"/>): weight forms (packed, Winograd-transformed, flipped) dropped by the cap
/// or a trim are rebuilt with bit-identical results, the cap holds the byte count to the form in use, and a trim keeps
/// exactly the forms used since its mark. And the Score-CAM masks and masked batches it computes in place equal the host
/// arithmetic of the reference backend bit for bit.
/// </summary>
[TestFixture]
internal sealed class CpuCacheTests
{
    // A 3x3 stride-1 layer, 64 channels in and out at 16x16: Winograd (today's cost model), its GEMMs with tiles as
    // rows at batch 1 and as columns at batch 8, both reading one packed form; backward-data has its own (flipped).
    private const int C = 64, H = 16;

    private static ConvShape Shape(int n) => new(n, C, H, H, C, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);

    private static int Length(int n) => n * C * H * H;

    /// <summary>Eight images' input and the layer's weights (uploaded), from one seed.</summary>
    private static (float[] X, Tensor W) Layer(CpuBackend cpu, int seed)
    {
        var rng = new Random(seed);
        var x = TensorAssert.Random(rng, Length(8));
        return (x, cpu.Upload(TensorAssert.Random(rng, C * C * 9, 0.1f), C, C, 3, 3));
    }

    private static float[] Forward(CpuBackend cpu, Tensor w, float[] xData, int n)
    {
        var s = Shape(n);
        using var x = cpu.Upload(xData.AsSpan(0, Length(n)), n, C, H, H);
        using var y = cpu.Allocate(n, C, H, H);
        cpu.Conv2d(x, w, null, y, s);
        return cpu.Download(y);
    }

    private static float[] BackwardData(CpuBackend cpu, Tensor w, float[] dyData, int n)
    {
        using var dy = cpu.Upload(dyData.AsSpan(0, Length(n)), n, C, H, H);
        using var dx = cpu.Allocate(n, C, H, H);
        cpu.Conv2dBackwardData(dy, w, dx, Shape(n));
        return cpu.Download(dx);
    }

    [Test]
    public void A_capped_cache_holds_only_the_form_in_use_and_rebuilt_forms_give_identical_results()
    {
        var cpu = TestDevice.Cpu;
        var (xData, weights) = Layer(cpu, 5);
        using var w = weights;
        long before = cpu.WeightFormCacheBytes;
        try
        {
            // Each operation's form, measured alone.
            long Alone(Func<float[]> op)
            {
                cpu.TrimCaches(cpu.CacheMark);
                op();
                long bytes = CpuStorage.DerivedBytes;
                cpu.TrimCaches(cpu.CacheMark);
                return bytes;
            }
            long f8 = Alone(() => Forward(cpu, w, xData, 8)), f1 = Alone(() => Forward(cpu, w, xData, 1));
            long b8 = Alone(() => BackwardData(cpu, w, xData, 8));
            Assert.That(CpuStorage.DerivedBytes, Is.Zero);
            Assert.That(new[] { f8, f1, b8 }, Is.All.GreaterThan(0));
            Assert.That(f1, Is.EqualTo(f8), "one Winograd form for both orientations");
            var y8 = Forward(cpu, w, xData, 8);
            var y1 = Forward(cpu, w, xData, 1);
            var dx = BackwardData(cpu, w, xData, 8);
            Assert.That(CpuStorage.DerivedBytes, Is.GreaterThanOrEqualTo(Math.Max(f8, Math.Max(f1, b8))));
            cpu.TrimCaches(cpu.CacheMark);

            cpu.WeightFormCacheBytes = 1; // each form built drops every other
            Assert.That(Forward(cpu, w, xData, 8), Is.EqualTo(y8));
            Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(f8));
            Assert.That(Forward(cpu, w, xData, 1), Is.EqualTo(y1));
            Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(f1));
            Assert.That(BackwardData(cpu, w, xData, 8), Is.EqualTo(dx));
            Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(b8));
            Assert.That(Forward(cpu, w, xData, 8), Is.EqualTo(y8)); // rebuilt after eviction
            Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(f8));
        }
        finally
        {
            cpu.WeightFormCacheBytes = before;
            cpu.TrimCaches(cpu.CacheMark);
        }
    }

    [Test]
    public void Winograd_at_two_batch_sizes_builds_one_form_and_matches_each_batch_alone()
    {
        // Tiles as rows at batch 1, as columns at batch 8: the second reads the form the first built (one transform
        // of the weights, held once), and each result is bit for bit the result of that batch on a fresh cache.
        var cpu = TestDevice.Cpu;
        var (xData, weights) = Layer(cpu, 8);
        using var w = weights;
        Assert.That(WinogradConv.TilesAsRows(Shape(1)), Is.True);
        Assert.That(WinogradConv.TilesAsRows(Shape(8)), Is.False);
        cpu.TrimCaches(cpu.CacheMark);
        var y8Alone = Forward(cpu, w, xData, 8);
        cpu.TrimCaches(cpu.CacheMark);
        var y1Alone = Forward(cpu, w, xData, 1);
        cpu.TrimCaches(cpu.CacheMark);
        long builds = CpuStorage.DerivedBuilds.Count;
        var y1 = Forward(cpu, w, xData, 1);
        long bytes = CpuStorage.DerivedBytes;
        var y8 = Forward(cpu, w, xData, 8);
        Assert.That(CpuStorage.DerivedBuilds.Count - builds, Is.EqualTo(1), "forms built for both batch sizes");
        Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(bytes));
        Assert.That(y1, Is.EqualTo(y1Alone));
        Assert.That(y8, Is.EqualTo(y8Alone));
        cpu.TrimCaches(cpu.CacheMark);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Gemm_weights_packed_once_follow_a_rewrite_of_the_weights(bool transB)
    {
        // A dense layer over many rows (the general path, not the few-rows one): its packed B panels are cached per
        // weight version, so after the weights are written the next call must use the new ones.
        var cpu = TestDevice.Cpu;
        using var reference = new ReferenceBackend();
        const int M = 300, K = 37, N = 70;
        var rng = new Random(21);
        var xData = TensorAssert.Random(rng, M * K);
        var s = new GemmShape(M, K, N, transB, 1f, 1f);
        int[] wShape = transB ? [N, K] : [K, N];
        using var x = cpu.Upload(xData, M, K);
        using var xr = reference.Upload(xData, M, K);
        using var w = cpu.Allocate(wShape);
        foreach (int version in new[] { 0, 1 })
        {
            var wData = TensorAssert.Random(new Random(30 + version), K * N);
            cpu.CopyFromHost(w, wData);
            using var wr = reference.Upload(wData, wShape);
            using var y = cpu.Allocate(M, N);
            using var yr = reference.Allocate(M, N);
            cpu.Gemm(x, w, null, y, s);
            reference.Gemm(xr, wr, null, yr, s);
            TensorAssert.Close(cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-5, 1e-5, $"weights version {version}");
        }
    }

    [Test]
    public void A_trim_keeps_exactly_the_forms_used_since_its_mark()
    {
        var cpu = TestDevice.Cpu;
        var (xData, weights) = Layer(cpu, 6);
        using var w = weights;
        cpu.TrimCaches(cpu.CacheMark);
        var y = Forward(cpu, w, xData, 8);
        long forward = CpuStorage.DerivedBytes;
        long mark = cpu.CacheMark;
        var dx = BackwardData(cpu, w, xData, 8);
        long backward = CpuStorage.DerivedBytes - forward;
        Assert.That(forward, Is.GreaterThan(0));
        Assert.That(backward, Is.GreaterThan(0));
        cpu.TrimCaches(mark); // the forward form was last used before the mark
        Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(backward));
        Assert.That(CpuStorage.PooledBytes, Is.Zero);
        Assert.That(Forward(cpu, w, xData, 8), Is.EqualTo(y));
        Assert.That(BackwardData(cpu, w, xData, 8), Is.EqualTo(dx));
        Assert.That(CpuStorage.DerivedBytes, Is.EqualTo(forward + backward));
        cpu.TrimCaches(cpu.CacheMark);
        Assert.That(CpuStorage.DerivedBytes, Is.Zero);
    }

    [TestCase(false, true, 1e-8f)]
    [TestCase(true, false, 0f)]
    public void Masks_and_masked_batches_in_place_equal_the_host_arithmetic(bool normalizeFirst, bool alignCorners, float eps)
    {
        var cpu = TestDevice.Cpu;
        var reference = new ReferenceBackend();
        var rng = new Random(11);
        // a: (2, 5, 3, 4) activations, one channel constant (an all-zero mask); masks at 10x9; x: (2, 3, 10, 9).
        var aData = TensorAssert.Random(rng, 2 * 5 * 12);
        aData.AsSpan(12, 12).Fill(0.5f);
        var xData = TensorAssert.Random(rng, 2 * 3 * 90);
        var noiseData = TensorAssert.Random(rng, 4 * 90, 0.3f);
        var rows = new MaskedRow[] { new(0, 0, -1, 1f), new(1, 7, 2, 0.5f), new(0, 1, 3, 1f), new(1, 9, -1, 0.3f), new(0, 4, 0, 2f) };
        float[] Run(Backend b)
        {
            using var a = b.Upload(aData, 2, 5, 3, 4);
            using var masks = b.Allocate(2, 5, 10, 9);
            b.ActivationMasks(a, masks, normalizeFirst, alignCorners, eps);
            using var flat = masks.Reshape(10, 10, 9);
            using var x = b.Upload(xData, 2, 3, 10, 9);
            using var noise = b.Upload(noiseData, 4, 10, 9);
            using var y = b.Allocate(rows.Length, 3, 10, 9);
            b.MaskedInputs(x, flat, noise, rows, y);
            return [.. b.Download(masks), .. b.Download(y)];
        }
        var expected = Run(reference);
        Assert.That(expected.AsSpan(90, 90).ContainsAnyExcept(0f), Is.False, "the constant channel's mask is zero");
        Assert.That(Run(cpu), Is.EqualTo(expected));
    }
    [Test]
    public unsafe void Tensors_start_on_64_byte_boundaries_fresh_and_pooled_and_hold_their_values()
    {
        // Small (garbage-collected) and pooled lengths, odd ones included; each allocated twice, the second time from
        // the pool where pooled. The garbage collector aligns arrays to 8 bytes only, so without the storage's own
        // offset about one tensor in eight would start on a line boundary.
        var cpu = TestDevice.Cpu;
        int[] lengths = [1, 17, 1000, 16_383, 16_384, 16_385, 50_001, 200_704, 802_816];
        for (int round = 0; round < 2; round++)
        {
            foreach (int n in lengths)
            {
                var data = Enumerable.Range(0, n).Select(i => (float)(i % 251) - 125f).ToArray();
                using var t = cpu.Upload(data, n);
                using (var pin = cpu.HostMemory(t)!.Value.Pin())
                {
                    long address = (long)pin.Pointer;
                    Assert.That(address % 64, Is.Zero, $"tensor of {n} floats (round {round}) starts at {address:x}");
                }
                Assert.That(cpu.Download(t), Is.EqualTo(data), $"tensor of {n} floats (round {round})");
                // A fresh tensor reads as zeros, also where its pooled array held the last tensor's values.
                using var u = cpu.Allocate(n);
                Assert.That(cpu.Download(u), Is.All.Zero, $"fresh tensor of {n} floats (round {round})");
            }
        }
    }
}
