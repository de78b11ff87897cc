using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using CamEngine.Tests.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// Every forward form of the CPU backend's convolution (<see cref="ConvForm"/>: im2col columns, im2col pixel rows,
/// direct NHWC; WinogradTests covers the Winograd form), forced in turn at 512- and 256-bit widths, against the double-precision reference, forward (also
/// with the fused epilogue: residual, ReLU, clip, <see cref="FusedEpilogueCheck"/>) and backward, on geometries that
/// hit the direct form's edges: channels under and not a multiple of 8, rows shorter than 8 pixels, output channels
/// not a multiple of 32 or 8, tiles that straddle images, dilation with asymmetric padding, strided 1x1 with and
/// without padding (the subsampled copy; the column form's gather from x, <see cref="SubsampledColumns"/>), unpadded planes (one transpose per image; the column form's GEMM reading 1x1 rows in place, <see cref="InPlaceRows"/>), a stem's 3-channel 7x7 taps (adjacent in the buffer, read as one segment per kernel row), depth over one block, small blocks and image chunks,
/// and for the backward-data phases: strides 2 and 3, phases no tap or no pixel reaches, padding past the kernel.
/// </summary>
[TestFixture]
internal sealed class ConvFormTests
{
    private readonly ReferenceBackend _ref = new();
    private readonly Dictionary<CpuSimd, CpuBackend> _cpu = new()
    {
        [CpuSimd.Vector512] = new CpuBackend(CpuSimd.Vector512),
        [CpuSimd.Vector256] = new CpuBackend(CpuSimd.Vector256),
    };

    public static IEnumerable<TestCaseData> Cases()
    {
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        var shapes = new (ConvShape S, string Name)[]
        {
            (new ConvShape(1, 8, 9, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), "8 channels, 8 outputs, rows of 10"),
            (new ConvShape(2, 21, 7, 7, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), "21->40 7x7 batch 2, tiles across images"),
            (new ConvShape(3, 5, 5, 6, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), "5 channels, rows of 6, 37 outputs"),
            (new ConvShape(1, 16, 12, 11, 33, 3, 3, 1, 2, 2, 1, 0, 3, 2, 2, 1), "dilation 2, asymmetric pads, stride (1,2)"),
            (new ConvShape(3, 40, 14, 13, 72, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), "1x1 stride 2, subsampled"),
            (new ConvShape(1, 24, 10, 11, 32, 1, 1, 2, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 stride (2,1), subsampled"),
            (new ConvShape(1, 20, 6, 37, 40, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), "1x1 stride 2, subsampled rows of 19: 8x8 blocks and tails"),
            (new ConvShape(1, 16, 9, 9, 32, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1), "1x1 stride 2 with padding"),
            (new ConvShape(1, 24, 20, 50, 40, 1, 1, 3, 3, 0, 0, 0, 0, 1, 1, 1), "1x1 stride 3, gathered at stride 3"),
            (new ConvShape(2, 16, 56, 56, 48, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), "1x1 stride 2 56x56 batch 2, rows of 28 gathered by permutes"),
            (new ConvShape(1, 40, 60, 47, 37, 1, 1, 3, 2, 0, 0, 0, 0, 1, 1, 1), "1x1 stride (3,2) to 20x24, copied to a dense plane: odd rows, a short row panel"),
            (new ConvShape(3, 40, 28, 30, 37, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), "1x1 stride 2 to 14x15, batch 3: copied dense, one GEMM with panels across images"),
            (new ConvShape(1, 300, 6, 6, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), "300 channels: blocks split taps"),
            (new ConvShape(2, 20, 7, 9, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded, 63-pixel planes"),
            (new ConvShape(2, 16, 17, 17, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded, planes over 256 pixels, batch 2"),
            (new ConvShape(1, 48, 28, 30, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded 48->24, 840-pixel planes (a narrow 28x28 layer)"),
            (new ConvShape(1, 300, 17, 19, 69, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded 300->69 on 17x19: two blocks of depth, a short row panel, a short column panel, parallel"),
            (new ConvShape(3, 72, 16, 17, 140, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded 72->140 on 16x17, batch 3: one GEMM, a panel across images, a short row panel, parallel"),
            (new ConvShape(3, 150, 14, 15, 70, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "1x1 unpadded 150->70 on 14x15, batch 3: one GEMM over 210-pixel planes, two panels across images"),
            (new ConvShape(1, 12, 9, 9, 16, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), "3x3 unpadded"),
            (new ConvShape(2, 64, 14, 14, 96, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), "64->96 stride 2 batch 2, parallel"),
            (new ConvShape(1, 32, 6, 6, 16, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1), "padding past the kernel reach (backward by phases)"),
            (new ConvShape(2, 33, 1, 5, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), "one row, stride 2: a phase with no pixels"),
            (new ConvShape(1, 40, 11, 12, 20, 5, 5, 3, 2, 2, 1, 2, 0, 1, 1, 1), "5x5 stride (3,2), asymmetric pads"),
            (new ConvShape(2, 3, 19, 17, 40, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1), "3->40 7x7 stride 2 pad 3, a stem: adjacent taps read as rows of 21"),
            (new ConvShape(2, 3, 6, 130, 8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1), "3 channels, rows of 130 (9 vectors: two groups, a masked tail), dilation 2"),
            (new ConvShape(1, 3, 33, 70, 10, 4, 4, 4, 4, 1, 2, 0, 1, 1, 1, 1), "3->10 4x4 stride 4 (a patchify stem), asymmetric pads, rows of 18"),
            (new ConvShape(2, 16, 7, 7, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), "4 groups (the column form, scattered rows)"),
            (new ConvShape(1, 32, 16, 16, 48, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2), "1x1, 2 groups, written in place"),
            (new ConvShape(1, 1024, 3, 4, 40, 3, 3, 1, 1, 1, 0, 1, 2, 1, 1, 1), "1024 channels: padded pixel stride, pads (1,0,1,2)"),
            (new ConvShape(1, 40, 5, 3, 1024, 3, 3, 2, 1, 1, 1, 0, 1, 1, 1, 1), "1024 outputs: backward reads dy at a padded stride"),
            (new ConvShape(2, 2048, 3, 3, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), "2048 channels 1x1 unpadded, batch 2"),
        };
        foreach (var (s, name) in shapes)
        {
            // Winograd's error scales with the layer's largest output, not each output: WinogradTests holds it to that.
            foreach (var form in Enum.GetValues<ConvForm>().Where(f => f != ConvForm.Winograd))
            foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256 })
                yield return new TestCaseData(s, form, simd).SetName($"{form} {simd}: {name}");
        }
    }

    /// <summary>The unpadded NHWC copy's channel blocks (the direct-form cases above with unpadded 1x1s take them: 63-
    /// and 289-pixel planes, 300 and 2048 channels): whole 8x8 transposes, four tasks a thread, none where the pixel
    /// blocks already give that many or the channels are few.</summary>
    [TestCase(1, 1024, 2, 8, 128)] // ResNet-50's 1024x14x14 at batch 1
    [TestCase(2, 20, 2, 3, 8)] // 20 channels: 8, 8 and 4
    [TestCase(2, 300, 2, 4, 80)]
    [TestCase(1, 2048, 4, 16, 128)]
    [TestCase(8, 1024, 2, 1, 1024)] // enough pixel blocks
    [TestCase(1, 12, 2, 1, 12)] // too few channels
    public void The_unpadded_copy_splits_channels_into_whole_transposes(int pixelBlocks, int channels, int threads,
        int blocks, int perBlock)
    {
        Assert.That(DirectConv.CopyChannelBlocks(pixelBlocks, channels, threads), Is.EqualTo((blocks, perBlock)));
        DirectConv.SplitCopyChannels = false;
        try
        {
            Assert.That(DirectConv.CopyChannelBlocks(pixelBlocks, channels, threads), Is.EqualTo((1, channels)));
        }
        finally
        {
            DirectConv.SplitCopyChannels = true;
        }
    }

    public static IEnumerable<TestCaseData> ColumnCases() =>
        Cases().Where(c => (ConvForm)c.Arguments[1]! == ConvForm.Column);

    public static IEnumerable<TestCaseData> StreamCases() =>
        ColumnCases().Where(c => (CpuSimd)c.Arguments[2]! == CpuSimd.Vector512);

    [TestCaseSource(nameof(Cases))]
    public void Forced_form_matches_reference(ConvShape s, ConvForm form, CpuSimd simd)
    {
        CpuConv.FormOverride = form;
        try
        {
            MatchesReference(s, simd);
        }
        finally
        {
            CpuConv.FormOverride = null;
        }
    }

    /// <summary>The conv, its fused ReLU and its fused epilogues against the reference, in the form now forced.</summary>
    private void MatchesReference(ConvShape s, CpuSimd simd)
    {
        BackendComparison.Conv(_cpu[simd], _ref, s);
        FusedReluEqualsConvThenRelu(_cpu[simd], s);
        // float32 rounding of a sum of C*KH*KW products grows with the outputs' scale (300 channels: 1.9e-5 off on
        // an output of 0.011), hence an absolute part in proportion to the largest output.
        FusedEpilogueCheck.Run(_cpu[simd], _ref, s, (actual, expected, scale, what) =>
            TensorAssert.Close(actual, expected, BackendComparison.Atol + 1e-6 * scale, BackendComparison.Rtol, what));
    }

    /// <summary>The column form's compact plan (one image's GEMM columns the output pixels alone, written straight into
    /// y), taken by every batch-1 layer when its threshold is 1: rows of the output split across panels, strides,
    /// pads, dilation, groups, the fused epilogue.</summary>
    [TestCaseSource(nameof(ColumnCases))]
    public void Compact_column_plan_matches_reference(ConvShape s, ConvForm form, CpuSimd simd)
    {
        s = s with { N = 1 };
        CpuConv.FormOverride = ConvForm.Column;
        int saved = CpuConv.CompactPixels;
        CpuConv.CompactPixels = 1;
        try
        {
            MatchesReference(s, simd);
        }
        finally
        {
            CpuConv.FormOverride = null;
            CpuConv.CompactPixels = saved;
        }
    }

    /// <summary>The column form with every GEMM output stored past the caches where a row starts on a line
    /// (<see cref="PackedGemm.StreamBytes"/> 0): the same values as stored through them, in place and compact, rows on
    /// and off line boundaries (planes of 17x17, 7x9 and 28x28 pixels).</summary>
    [TestCaseSource(nameof(StreamCases))]
    public void Column_form_with_streamed_outputs_matches_reference(ConvShape s, ConvForm form, CpuSimd simd)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("streamed stores are the AVX-512 kernel's");
        CpuConv.FormOverride = ConvForm.Column;
        long saved = PackedGemm.StreamBytes;
        int savedCompact = CpuConv.CompactPixels;
        PackedGemm.StreamBytes = 0;
        try
        {
            MatchesReference(s, simd);
            CpuConv.CompactPixels = 1;
            MatchesReference(s with { N = 1 }, simd);
        }
        finally
        {
            CpuConv.FormOverride = null;
            PackedGemm.StreamBytes = saved;
            CpuConv.CompactPixels = savedCompact;
        }
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        foreach (var backend in _cpu.Values)
            backend.Dispose();
    }

    /// <summary>Conv2dRelu gives exactly max(0, Conv2d) (the direct form applies it as it stores the output).</summary>
    private static void FusedReluEqualsConvThenRelu(CpuBackend cpu, ConvShape s)
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
        var actual = cpu.Download(fused);
        Assert.That(actual, Is.EqualTo(expected), "Conv2dRelu");
        Assert.That(actual.Count(v => v == 0f), Is.GreaterThan(actual.Length / 4), "about half the outputs are clipped");
    }

    /// <summary>
    /// The column form's 1x1 GEMMs that read x's channel planes in place as B's rows (<see cref="CpuConv.RowsInPlace"/>)
    /// give the bits of packing those rows per task, a batch's as one GEMM across the images' planes
    /// (<see cref="CpuConv.BatchedRows"/>, panels crossing from one image into the next; on planes whose rows are off
    /// 64-byte boundaries also with x packed once first, <see cref="CpuConv.PrepackOffLineRows"/>) those of the phase
    /// buffer's batched GEMM and its scatter, and strided ones that copy the kept pixels to a dense plane first
    /// (<see cref="CpuConv.SubsampleCopy"/>) those of gathering them per task: the same kernel sums the same products in
    /// the same order. Planes of 289, 840, 323, 784, 480, 272, 256, 225 and 210 pixels (a last column panel of 1, 8, 3,
    /// 16, 0, 16, 0, 4 and 18; the strided 210-pixel one of three images; the 225-pixel one also as one expanding image, packed once, <see cref="CpuConv.PrepackOne"/>), 16 to 300 channels (two blocks of depth), 24 to 260 outputs (a last row panel of 5 and 4), strides 2 and
    /// (3,2), with the bias and the fused ReLU, one image, two and three. The values against the reference: <see cref="Forced_form_matches_reference"/>,
    /// whose column cases take these paths.
    /// </summary>
    [Test]
    public void Pointwise_rows_read_in_place_give_the_bits_of_packed_rows()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("x's rows are read in place by the AVX-512 kernel only");
        var cpu = _cpu[CpuSimd.Vector512];
        CpuConv.FormOverride = ConvForm.Column;
        try
        {
            foreach (var s in new[]
                     {
                         new ConvShape(2, 16, 17, 17, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(1, 48, 28, 30, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(1, 300, 17, 19, 69, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(2, 16, 56, 56, 48, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(1, 40, 60, 47, 37, 1, 1, 3, 2, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(3, 72, 16, 17, 140, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(2, 300, 16, 16, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(4, 300, 15, 15, 260, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(1, 256, 15, 15, 264, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(3, 150, 14, 15, 70, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                         new ConvShape(3, 40, 28, 30, 37, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
                     })
            {
                CpuConv.RowsInPlace = CpuConv.SubsampleCopy = CpuConv.BatchedRows = CpuConv.PrepackOffLineRows = true;
                Assert.That(s.IsUnpaddedPointwise ? CpuConv.ReadsRowsInPlace(s, CpuSimd.Vector512) : CpuConv.SubsampleFirst(s, CpuSimd.Vector512),
                    Is.True, $"{s} takes the in-place path");
                var rng = new Random(11);
                using var x = cpu.Upload(TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
                using var w = cpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, s.CPerGroup, s.KH, s.KW);
                using var b = cpu.Upload(TensorAssert.Random(rng, s.K), s.K);
                using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
                float[] Run(bool inPlace, bool relu)
                {
                    CpuConv.RowsInPlace = CpuConv.SubsampleCopy = CpuConv.BatchedRows = inPlace;
                    if (relu)
                        cpu.Conv2dRelu(x, w, b, y, s);
                    else
                        cpu.Conv2d(x, w, b, y, s);
                    return cpu.Download(y);
                }
                foreach (bool relu in new[] { false, true })
                foreach (bool prepack in new[] { true, false })
                {
                    CpuConv.PrepackOffLineRows = prepack;
                    Assert.That(Run(true, relu), Is.EqualTo(Run(false, relu)), $"{s}, relu {relu}, prepacked {prepack}");
                }
            }
        }
        finally
        {
            CpuConv.RowsInPlace = CpuConv.SubsampleCopy = CpuConv.BatchedRows = CpuConv.PrepackOffLineRows = true;
            CpuConv.FormOverride = null;
        }
    }

    /// <summary>A batch's 14x14 1x1 of 256 or more input and output channels takes the column form with x packed once
    /// (<see cref="CpuConv.PrepackOffLineRows"/>), ahead of the planar form that expands the channels otherwise, and so
    /// does one image's expanding one (<see cref="CpuConv.PrepackOne"/>; its reducing ones and strided ones stay direct);
    /// a layer of fewer channels, or the settings off, keep the planar form.</summary>
    [Test]
    public void Batched_wide_pointwise_on_off_line_planes_takes_the_column_form()
    {
        if (!PlanarConv.Supports(new ConvShape(1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512))
            Assert.Ignore("the planar and in-place forms need AVX-512");
        static ConvShape Pointwise(int n, int c, int k) => new(n, c, 14, 14, k, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        try
        {
            Assert.That(CpuConv.ChooseForm(Pointwise(8, 256, 1024), CpuSimd.Vector512), Is.EqualTo(ConvForm.Column));
            Assert.That(CpuConv.ChooseForm(Pointwise(8, 96, 576), CpuSimd.Vector512), Is.EqualTo(ConvForm.Planar));
            Assert.That(CpuConv.ChooseForm(Pointwise(1, 256, 1024), CpuSimd.Vector512), Is.EqualTo(ConvForm.Column));
            Assert.That(CpuConv.ChooseForm(Pointwise(1, 1024, 256), CpuSimd.Vector512), Is.EqualTo(ConvForm.Direct));
            Assert.That(CpuConv.ChooseForm(new ConvShape(1, 512, 28, 28, 1024, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1), CpuSimd.Vector512),
                Is.EqualTo(ConvForm.Direct), "a strided 1x1 onto 14x14 is no expansion in place");
            CpuConv.PrepackOne = false;
            Assert.That(CpuConv.ChooseForm(Pointwise(1, 256, 1024), CpuSimd.Vector512), Is.EqualTo(ConvForm.Planar));
            CpuConv.PrepackOffLineRows = false;
            Assert.That(CpuConv.ChooseForm(Pointwise(8, 256, 1024), CpuSimd.Vector512), Is.EqualTo(ConvForm.Planar));
        }
        finally
        {
            CpuConv.PrepackOffLineRows = CpuConv.PrepackOne = true;
        }
    }

    [Test]
    public void Direct_form_with_small_blocks_and_one_image_chunks_matches_reference()
    {
        (int kc, long chunk) = (DirectConv.KC, DirectConv.ChunkFloats);
        CpuConv.FormOverride = ConvForm.Direct;
        DirectConv.KC = 40; // blocks end inside a tap and span tap boundaries
        DirectConv.ChunkFloats = 1000; // one image per chunk
        try
        {
            foreach (var backend in _cpu.Values)
            {
                BackendComparison.Conv(backend, _ref, new ConvShape(3, 12, 8, 9, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1));
                BackendComparison.Conv(backend, _ref, new ConvShape(3, 12, 8, 9, 20, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1));
            }
        }
        finally
        {
            (DirectConv.KC, DirectConv.ChunkFloats) = (kc, chunk);
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Planar_form_in_one_image_chunks_and_small_tap_blocks_matches_reference()
    {
        if (!PlanarConv.Supports(new ConvShape(1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Vector512))
            Assert.Ignore("the planar form needs AVX-512");
        (long chunk, int taps) = (ConvPlan.ChunkFloats, PlanarConv.TapBlock);
        CpuConv.FormOverride = ConvForm.Planar;
        ConvPlan.ChunkFloats = 100; // one image per chunk
        try
        {
            var backend = _cpu[CpuSimd.Vector512];
            BackendComparison.Conv(backend, _ref, new ConvShape(3, 3, 21, 37, 7, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1));
            FusedEpilogueCheck.Run(backend, _ref, new ConvShape(3, 2, 9, 40, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
                (actual, expected, scale, what) =>
                    TensorAssert.Close(actual, expected, BackendComparison.Atol + 1e-6 * scale, BackendComparison.Rtol, what));
            // Blocks of 5 taps: partial sums through y, blocks ending inside a channel's taps and inside the pixel
            // planes' channels, the bias on the first block and the epilogue on the last only.
            PlanarConv.TapBlock = 5;
            foreach (var s in new[]
                     {
                         new ConvShape(2, 12, 8, 19, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
                         new ConvShape(3, 23, 9, 15, 50, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
                     })
            {
                BackendComparison.Conv(backend, _ref, s);
                FusedEpilogueCheck.Run(backend, _ref, s, (actual, expected, scale, what) =>
                    TensorAssert.Close(actual, expected, BackendComparison.Atol + 1e-6 * scale, BackendComparison.Rtol, what));
            }
        }
        finally
        {
            (ConvPlan.ChunkFloats, PlanarConv.TapBlock) = (chunk, taps);
            CpuConv.FormOverride = null;
        }
    }

    [Test]
    public void Direct_form_is_chosen_for_one_group_layers_with_16_or_more_channels_except_pointwise_on_large_planes()
    {
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            // A batch's 1x1 layers on 14x14 planes the planar form does not take (and, with 256 or more channels in and
            // out, those it would): one GEMM over the batch.
            var v512 = CpuSimd.Vector512;
            var contracting = new ConvShape(8, 1024, 14, 14, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
            Assert.That(CpuConv.ChooseForm(contracting, v512), Is.EqualTo(ConvForm.Column), "1024->256 at 14x14, batch 8");
            Assert.That(CpuConv.ChooseForm(contracting with { N = 1 }, v512), Is.EqualTo(ConvForm.Direct), "1024->256 at 14x14, batch 1");
            Assert.That(CpuConv.ChooseForm(new ConvShape(8, 256, 14, 14, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), v512),
                Is.EqualTo(ConvForm.Column), "256->1024 at 14x14, batch 8 (x packed once)");
            Assert.That(CpuConv.ChooseForm(new ConvShape(8, 2048, 7, 7, 512, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), v512),
                Is.EqualTo(ConvForm.Direct), "2048->512 at 7x7, batch 8");
        }

        var simd = CpuSimdDetect.Best;
        bool direct = DirectConv.Supports(new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), simd);
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 64, 56, 56, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), simd),
            Is.EqualTo(direct ? ConvForm.Direct : ConvForm.Column), "3x3 stride 2 (3x3 stride 1 goes to Winograd: WinogradTests)");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 256, 56, 56, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.EqualTo(ConvForm.Column), "pointwise on a 56x56 plane reads x in place");
        var p14 = new ConvShape(1, 1024, 14, 14, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        Assert.That(CpuConv.ChooseForm(p14, simd),
            Is.EqualTo(direct ? ConvForm.Direct : CpuConv.UseTransposed(p14) ? ConvForm.PixelRow : ConvForm.Column),
            "pointwise on a 14x14 plane");
        var stem = new ConvShape(1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1);
        Assert.That(CpuConv.ChooseForm(stem, simd), Is.EqualTo(PlanarConv.Supports(stem, simd) ? ConvForm.Planar : ConvForm.Column),
            "the stem (3 channels): output rows as vectors where AVX-512 runs, else the im2col form");
        Assert.That(CpuConv.ChooseForm(stem, CpuSimd.Vector256), Is.EqualTo(ConvForm.Column), "the stem at 256 bits");
        bool planar = PlanarConv.Supports(stem, simd);
        var e14 = new ConvShape(1, 160, 14, 14, 640, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        Assert.That(CpuConv.ChooseForm(e14, simd),
            Is.EqualTo(planar ? ConvForm.Planar : direct ? ConvForm.Direct : CpuConv.UseTransposed(e14) ? ConvForm.PixelRow : ConvForm.Column),
            "expanding pointwise on a 14x14 plane (fewer than 256 inputs: with more, the column form packs x once)");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 256, 7, 7, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.Not.EqualTo(ConvForm.Planar), "expanding pointwise on a 7x7 plane (3 of 4 vectors' lanes)");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 192, 28, 28, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.EqualTo(planar ? ConvForm.Planar : ConvForm.Column), "narrow pointwise (32 outputs) on a 28x28 plane");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 384, 14, 14, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.EqualTo(planar ? ConvForm.Planar : direct ? ConvForm.Direct : ConvForm.Column), "narrow pointwise (64 outputs) on a 14x14 plane");
        var reducing = new ConvShape(1, 480, 14, 14, 80, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        Assert.That(CpuConv.ChooseForm(reducing, simd),
            Is.EqualTo(planar ? ConvForm.Planar : direct ? ConvForm.Direct : ConvForm.Column), "480->80 on a 14x14 plane, one image");
        Assert.That(CpuConv.ChooseForm(reducing with { N = 8 }, simd), Is.Not.EqualTo(ConvForm.Planar), "480->80 on a 14x14 plane, batch 8");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 1024, 14, 14, 320, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.Not.EqualTo(ConvForm.Planar), "a reduction to more than 192 outputs on a 14x14 plane");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 512, 28, 28, 128, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.EqualTo(ConvForm.Column), "pointwise of 128 or more channels each way on a 28x28 plane");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 144, 56, 56, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), simd),
            Is.EqualTo(ConvForm.Column), "narrow pointwise on a 56x56 plane reads x in place");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 32, 15, 15, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32), simd),
            Is.EqualTo(ConvForm.Column), "depthwise");
        Assert.That(CpuConv.ChooseForm(new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), CpuSimd.Scalar),
            Is.EqualTo(ConvForm.Column), "no direct form without vectors");
    }
}
