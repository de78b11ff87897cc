using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using CamEngine.Tests.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The Winograd F(4x4, 3x3) form of the CPU convolution (<see cref="WinogradConv"/>), forced, at 512- and 256-bit
/// widths, against the double-precision reference: forward (with and without bias, fused ReLU, the fused epilogue of
/// <see cref="FusedEpilogueCheck"/>: residual, ReLU, clip) and backward-data
/// (the flipped kernel through the same form), with its GEMMs taking tiles as columns and as rows, on geometries
/// that hit its edges: one channel, odd channel counts,
/// output planes that are not a multiple of the 4x4 tile or of the 8-tile vectors, asymmetric pads 0/1/2, batch 1
/// and 3, a chunk of tile rows that ends inside an image, and a few hundred channels.
/// Winograd's rounding error scales with the layer's outputs, not with each output (the transforms mix values up to
/// 100x larger than the result), so an output near zero carries the error of its neighbours: the tolerance is
/// <see cref="Rel"/> of the largest reference output plus 1e-4 of each (F(4x4, 3x3) measured at most 1.2e-5 of the
/// largest output here; a wrong tap, tile or pad gives errors of the outputs' own size).
/// </summary>
[TestFixture]
internal sealed class WinogradTests
{
    private readonly ReferenceBackend _ref = new();
    private readonly Dictionary<CpuSimd, CpuBackend> _cpu = new()
    {
        [CpuSimd.Vector512] = new CpuBackend(CpuSimd.Vector512),
        [CpuSimd.Vector256] = new CpuBackend(CpuSimd.Vector256),
    };

    /// <summary>Allowed error as a fraction of the largest reference output.</summary>
    private const double Rel = 3e-5;

    private static ConvShape Conv3(int n, int c, int h, int w, int k, int pt, int pl, int pb, int pr) =>
        new(n, c, h, w, k, 3, 3, 1, 1, pt, pl, pb, pr, 1, 1, 1);

    public static IEnumerable<TestCaseData> Cases()
    {
        var shapes = new (ConvShape S, string Name)[]
        {
            (Conv3(1, 1, 5, 5, 1, 1, 1, 1, 1), "1 channel, 1 output, one tile with a tail"),
            (Conv3(3, 3, 7, 9, 5, 0, 2, 1, 0), "3->5 batch 3, pads (0,2,1,0)"),
            (Conv3(1, 17, 13, 11, 19, 2, 1, 0, 2), "17->19, pads (2,1,0,2), 12x12 output"),
            (Conv3(3, 33, 10, 37, 40, 1, 1, 1, 1), "33->40 batch 3, 37 columns: a full and a partial 8-tile vector"),
            (Conv3(1, 8, 4, 70, 8, 1, 0, 2, 1), "rows of 70, pads (1,0,2,1)"),
            (Conv3(2, 130, 9, 8, 36, 0, 0, 0, 0), "130->36 unpadded, 7x6 output"),
            (Conv3(1, 64, 18, 18, 70, 1, 1, 1, 1), "64->70 18x18, parallel"),
            (Conv3(1, 300, 6, 6, 64, 1, 1, 1, 1), "300 channels: two GEMM depth blocks"),
            (Conv3(2, 4, 3, 3, 6, 2, 2, 2, 2), "3x3 input, pads 2: a 5x5 output"),
        };
        foreach (var (s, name) in shapes)
        foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256 })
        foreach (var orientation in new[] { "tiles as rows", "tiles as columns", "blocks of tile rows" })
            yield return new TestCaseData(s, simd, orientation).SetName($"Winograd {simd} {orientation}: {name}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Forced_winograd_matches_reference_forward_and_backward_data(ConvShape s, CpuSimd simd, string orientation)
    {
        Assume.That(WinogradConv.Supports(s, simd), "needs AVX");
        int below = WinogradConv.TilesAsRowsBelow;
        bool tilesAsRows = orientation == "tiles as rows";
        CpuConv.FormOverride = ConvForm.Winograd;
        WinogradConv.TilesAsRowsBelow = tilesAsRows ? int.MaxValue : 0;
        WinogradConv.InBlocksOverride = orientation == "blocks of tile rows";
        try
        {
            Assert.That(WinogradConv.TilesAsRows(s), Is.EqualTo(tilesAsRows));
            Assert.That(WinogradConv.InBlocks(s), Is.EqualTo(orientation == "blocks of tile rows"));
            Assert.That(CpuConv.ChooseForm(s, simd), Is.EqualTo(ConvForm.Winograd), "forward form");
            Assert.That(CpuConv.ChooseForm(CpuConv.FlippedShape(s)!.Value, simd), Is.EqualTo(ConvForm.Winograd),
                "backward-data form");
            Compare(_cpu[simd], _ref, s);
            FusedRelu(_cpu[simd], s);
            FusedEpilogueCheck.Run(_cpu[simd], _ref, s,
                (actual, expected, scale, what) => TensorAssert.Close(actual, expected, Rel * scale, 1e-4, what));
        }
        finally
        {
            CpuConv.FormOverride = null;
            WinogradConv.TilesAsRowsBelow = below;
            WinogradConv.InBlocksOverride = null;
        }
    }

    /// <summary>
    /// The row ends (<see cref="WinogradConv.MaskedRowEnds"/>: the input's split into column phases and the output
    /// transform's store of rows shorter than 32, or a 32-column run's rest, as vectors under masks) and the one-by-one
    /// copies and stores they replace, with every fused epilogue, on rows of 5, 12, 28 (one run of 7 tiles), 37 (a run of
    /// 32 and 5) and 70 columns: each against the reference and bit for bit against its own unfused steps.
    /// </summary>
    [Test]
    public void Row_ends_as_masked_vectors_and_one_by_one_match_reference()
    {
        CpuConv.FormOverride = ConvForm.Winograd;
        try
        {
            foreach (bool masked in new[] { true, false })
            {
                WinogradConv.MaskedRowEnds = masked;
                foreach (var s in new[] { Conv3(2, 4, 3, 3, 6, 2, 2, 2, 2), Conv3(1, 17, 13, 11, 19, 2, 1, 0, 2), Conv3(1, 9, 28, 28, 10, 1, 1, 1, 1),
                             Conv3(3, 33, 10, 37, 40, 1, 1, 1, 1), Conv3(1, 8, 4, 70, 8, 1, 0, 2, 1) })
                {
                    Compare(_cpu[CpuSimd.Vector512], _ref, s);
                    FusedEpilogueCheck.Run(_cpu[CpuSimd.Vector512], _ref, s,
                        (actual, expected, scale, what) => TensorAssert.Close(actual, expected, Rel * scale, 1e-4, $"masked {masked}, {s.OW} columns: {what}"));
                }
            }
        }
        finally
        {
            WinogradConv.MaskedRowEnds = true;
            CpuConv.FormOverride = null;
        }
    }

    /// <summary>
    /// Tile rows of 9 to 16 tiles in 16-lane transforms (<see cref="WinogradConv.WideRows"/>, blocks of tile rows,
    /// AVX-512) give the bits of the 8-lane transforms (each lane sums the same products in the same order) and match
    /// the reference: rows of 33 (9 tiles: the upper half one tile), 37, 56 (ResNet's 14 tiles), 62 and 64 columns, a
    /// batch of two whose blocks cross the image boundary, and residual + ReLU fused.
    /// </summary>
    [Test]
    public void Wide_tile_rows_give_the_bits_of_eight_lane_rows_and_match_reference()
    {
        var cpu = _cpu[CpuSimd.Vector512];
        var shapes = new[]
        {
            Conv3(1, 5, 9, 33, 7, 1, 1, 1, 1), Conv3(2, 12, 10, 37, 9, 1, 0, 2, 1), Conv3(1, 16, 13, 56, 16, 1, 1, 1, 1),
            Conv3(2, 3, 6, 62, 4, 0, 2, 1, 0), Conv3(1, 8, 8, 64, 8, 1, 1, 1, 1),
        };
        Assume.That(WinogradConv.Supports(shapes[0], CpuSimd.Vector512) && System.Runtime.Intrinsics.X86.Avx512F.IsSupported,
            "needs AVX-512");
        CpuConv.FormOverride = ConvForm.Winograd;
        WinogradConv.InBlocksOverride = true;
        int below = WinogradConv.TilesAsRowsBelow;
        WinogradConv.TilesAsRowsBelow = 0;
        try
        {
            foreach (var s in shapes)
            {
                var rng = new Random(s.W);
                using var x = cpu.Upload(TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
                using var w = cpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, s.C, 3, 3);
                using var b = cpu.Upload(TensorAssert.Random(rng, s.K), s.K);
                using var r = cpu.Upload(TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW), s.N, s.K, s.OH, s.OW);
                float[] Run(bool wide, bool fused)
                {
                    WinogradConv.WideRows = wide;
                    using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
                    if (fused)
                        cpu.Conv2dFused(x, w, b, r, y, s, EpilogueActivation.Relu, 0f, 0f);
                    else
                        cpu.Conv2d(x, w, b, y, s);
                    return cpu.Download(y);
                }
                foreach (bool fused in new[] { false, true })
                    Assert.That(Run(true, fused), Is.EqualTo(Run(false, fused)), $"{s.OW} columns, batch {s.N}, fused {fused}");
                WinogradConv.WideRows = true;
                Compare(cpu, _ref, s);
            }
        }
        finally
        {
            WinogradConv.WideRows = true;
            WinogradConv.InBlocksOverride = null;
            WinogradConv.TilesAsRowsBelow = below;
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Chunks_of_tile_rows_that_end_inside_an_image_match_reference()
    {
        (long chunk, int below) = (WinogradConv.ChunkFloats, WinogradConv.TilesAsRowsBelow);
        CpuConv.FormOverride = ConvForm.Winograd;
        // 36 * (C + K) * TW = 36 * 20 * 3 floats per tile row: 2 rows per chunk, images of 3 tile rows.
        WinogradConv.ChunkFloats = 2 * 36 * 20 * 3;
        WinogradConv.TilesAsRowsBelow = 0; // the tiles-as-rows orientation runs in one chunk
        WinogradConv.InBlocksOverride = false; // and so does every block
        try
        {
            foreach (var backend in _cpu.Values)
                Compare(backend, _ref, Conv3(3, 12, 10, 9, 8, 1, 1, 1, 0));
        }
        finally
        {
            (WinogradConv.ChunkFloats, WinogradConv.TilesAsRowsBelow) = (chunk, below);
            WinogradConv.InBlocksOverride = null;
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Pads_past_two_run_forward_in_winograd_and_backward_in_another_form()
    {
        var s = Conv3(1, 16, 6, 7, 16, 3, 1, 0, 3);
        Assume.That(WinogradConv.Supports(s, CpuSimd.Vector256), "needs AVX");
        CpuConv.FormOverride = ConvForm.Winograd;
        try
        {
            Assert.That(CpuConv.ChooseForm(s, CpuSimd.Vector256), Is.EqualTo(ConvForm.Winograd));
            Assert.That(CpuConv.FlippedShape(s), Is.Null, "a pad of 3 has no stride-1 flipped form");
            Compare(_cpu[CpuSimd.Vector256], _ref, s);
        }
        finally
        {
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Transformed_weights_are_rebuilt_after_the_weights_change()
    {
        var cpu = _cpu[CpuSimd.Vector256];
        var s = Conv3(1, 8, 8, 8, 8, 1, 1, 1, 1);
        Assume.That(WinogradConv.Supports(s, CpuSimd.Vector256), "needs AVX");
        CpuConv.FormOverride = ConvForm.Winograd;
        try
        {
            var rng = new Random(7);
            var xData = TensorAssert.Random(rng, 512);
            using var x = cpu.Upload(xData, 1, 8, 8, 8);
            using var xr = _ref.Upload(xData, 1, 8, 8, 8);
            using var w = cpu.Upload(TensorAssert.Random(rng, 576), 8, 8, 3, 3);
            using var y = cpu.Allocate(1, 8, 8, 8);
            cpu.Conv2d(x, w, null, y, s);
            var second = TensorAssert.Random(rng, 576);
            cpu.CopyFromHost(w, second);
            cpu.Conv2d(x, w, null, y, s);
            using var wr = _ref.Upload(second, 8, 8, 3, 3);
            using var yr = _ref.Allocate(1, 8, 8, 8);
            _ref.Conv2d(xr, wr, null, yr, s);
            TensorAssert.Close(cpu.Download(y), ReferenceBackend.DownloadDouble(yr), 1e-5, 1e-4, "after the weights changed");
        }
        finally
        {
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Winograd_is_chosen_where_its_cost_model_pays()
    {
        var simd = CpuSimdDetect.Best;
        Assume.That(WinogradConv.Supports(Conv3(1, 64, 56, 56, 64, 1, 1, 1, 1), simd), "needs AVX");
        Assert.That(CpuConv.ChooseForm(Conv3(1, 64, 56, 56, 64, 1, 1, 1, 1), simd), Is.EqualTo(ConvForm.Winograd), "ResNet 64x56x56");
        Assert.That(CpuConv.ChooseForm(Conv3(1, 128, 28, 28, 128, 1, 1, 1, 1), simd), Is.EqualTo(ConvForm.Winograd), "ResNet 128x28x28");
        Assert.That(CpuConv.ChooseForm(Conv3(1, 512, 7, 7, 512, 1, 1, 1, 1), simd), Is.Not.EqualTo(ConvForm.Winograd),
            "7x7 at batch 1: 4 tiles per GEMM");
        Assert.That(CpuConv.ChooseForm(Conv3(8, 512, 7, 7, 512, 1, 1, 1, 1), simd), Is.EqualTo(ConvForm.Winograd), "7x7 at batch 8");
        Assert.That(CpuConv.ChooseForm(Conv3(1, 256, 14, 14, 256, 1, 1, 1, 1), simd), Is.EqualTo(ConvForm.Winograd),
            "14x14 at batch 1 (16 tiles, as rows)");
        Assert.That(WinogradConv.TilesAsRows(Conv3(1, 256, 14, 14, 256, 1, 1, 1, 1)), Is.True);
        Assert.That(WinogradConv.TilesAsRows(Conv3(1, 128, 28, 28, 128, 1, 1, 1, 1)), Is.False, "49 tiles as columns");
        Assert.That(CpuConv.ChooseForm(Conv3(1, 3, 56, 56, 64, 1, 1, 1, 1), simd), Is.Not.EqualTo(ConvForm.Winograd), "3 channels");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 64, 56, 56, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), simd),
            Is.Not.EqualTo(ConvForm.Winograd), "stride 2");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1), simd),
            Is.Not.EqualTo(ConvForm.Winograd), "dilation 2");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64), simd),
            Is.Not.EqualTo(ConvForm.Winograd), "depthwise");
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        foreach (var backend in _cpu.Values)
            backend.Dispose();
    }

    /// <summary>Forward (with and without bias) and backward-data against the double reference.</summary>
    private static void Compare(CpuBackend cpu, ReferenceBackend reference, ConvShape s)
    {
        var rng = new Random(1234);
        var xData = TensorAssert.Random(rng, s.N * s.C * s.H * s.W);
        var wData = TensorAssert.Random(rng, (int)s.WeightLength);
        var bData = TensorAssert.Random(rng, s.K);
        var dyData = TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW);
        using var x = cpu.Upload(xData, s.N, s.C, s.H, s.W);
        using var xr = reference.Upload(xData, s.N, s.C, s.H, s.W);
        using var w = cpu.Upload(wData, s.K, s.C, 3, 3);
        using var wr = reference.Upload(wData, s.K, s.C, 3, 3);
        using var b = cpu.Upload(bData, s.K);
        using var br = reference.Upload(bData, s.K);
        using var dy = cpu.Upload(dyData, s.N, s.K, s.OH, s.OW);
        using var dyr = reference.Upload(dyData, s.N, s.K, s.OH, s.OW);
        foreach (bool bias in new[] { true, false })
        {
            using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
            using var yr = reference.Allocate(s.N, s.K, s.OH, s.OW);
            cpu.Conv2d(x, w, bias ? b : null, y, s);
            reference.Conv2d(xr, wr, bias ? br : null, yr, s);
            Close(cpu.Download(y), ReferenceBackend.DownloadDouble(yr), $"forward (bias {bias})");
        }
        using var dx = cpu.Allocate(x.Shape);
        using var dxr = reference.Allocate(x.Shape);
        cpu.Conv2dBackwardData(dy, w, dx, s);
        reference.Conv2dBackwardData(dyr, wr, dxr, s);
        Close(cpu.Download(dx), ReferenceBackend.DownloadDouble(dxr), "backward data");
    }

    private static void Close(float[] actual, double[] expected, string what)
    {
        double scale = expected.Max(Math.Abs);
        Assert.That(scale, Is.GreaterThan(0.1), $"{what}: the reference is not near zero");
        TensorAssert.Close(actual, expected, Rel * scale, 1e-4, what);
    }

    private static void FusedRelu(CpuBackend cpu, ConvShape s)
    {
        var rng = new Random(5);
        using var x = cpu.Upload(TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        using var w = cpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, s.CPerGroup, s.KH, s.KW);
        using var b = cpu.Upload(TensorAssert.Random(rng, s.K), s.K);
        using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
        using var fused = cpu.Allocate(s.N, s.K, s.OH, s.OW);
        cpu.Conv2d(x, w, b, y, s);
        cpu.Conv2dRelu(x, w, b, fused, s);
        var expected = cpu.Download(y).Select(v => MathF.Max(v, 0f)).ToArray();
        Assert.That(cpu.Download(fused), Is.EqualTo(expected), "Conv2dRelu");
    }
}
