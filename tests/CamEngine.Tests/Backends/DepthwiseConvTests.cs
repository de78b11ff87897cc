using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using CamEngine.Tests.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The CPU backend's depthwise convolution (<see cref="DepthwiseConv"/>) at 512-bit, 256-bit and scalar widths
/// against the double-precision reference, forward (with and without bias), backward-data (the flipped-kernel
/// forward at stride 1, the per-tap scatter otherwise), backward-weights and bias, on geometries that hit its edges:
/// odd channel counts, planes narrower than a vector and with tails (W = 1, 5, 13, 17, 33, 69, 133), whole planes
/// shorter than one 64-float block, planes over 4096 floats (padding cleared by rows, stride-2 rows deinterleaved
/// by vectors), strides 1, 2 and (1, 2), pads 0 to 3 (past the kernel's reach, where backward-data scatters at
/// stride 1 too), asymmetric pads, dilation 2, KH != KW, 3x3, 5x5 and 7x7, batch 1 to 3, channel multipliers 2 and
/// 3; and its fused output stage (bias, residual, ReLU, clip, SiLU) against the reference's separate ops.
/// </summary>
[TestFixture]
internal sealed class DepthwiseConvTests
{
    private readonly ReferenceBackend _ref = new();
    private readonly Dictionary<CpuSimd, CpuBackend> _cpu = new()
    {
        [CpuSimd.Vector512] = new CpuBackend(CpuSimd.Vector512),
        [CpuSimd.Vector256] = new CpuBackend(CpuSimd.Vector256),
        [CpuSimd.Scalar] = new CpuBackend(CpuSimd.Scalar),
    };

    private static readonly (ConvShape S, string Name)[] Shapes =
    [
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        (new ConvShape(1, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), "3 channels 3x3, 5x5 planes"),
        (new ConvShape(3, 5, 1, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5), "1x1 planes, batch 3"),
        (new ConvShape(1, 7, 17, 17, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7), "stride 2, 17 wide"),
        (new ConvShape(3, 7, 33, 33, 7, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 7), "5x5, 33 wide, batch 3 (parallel)"),
        (new ConvShape(1, 9, 14, 14, 9, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 9), "7x7 pad 3 (ConvNeXt)"),
        (new ConvShape(2, 5, 12, 17, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 5), "dilation 2"),
        (new ConvShape(1, 5, 11, 9, 5, 3, 5, 1, 2, 0, 0, 0, 0, 1, 1, 5), "3x5, stride (1,2), no padding"),
        (new ConvShape(1, 4, 6, 5, 4, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 4), "pad 3 past the kernel's reach"),
        (new ConvShape(2, 16, 28, 28, 16, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 16), "stride 2, pads only bottom/right"),
        (new ConvShape(1, 11, 13, 13, 11, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 11), "5x5 stride 2, 13 wide"),
        (new ConvShape(2, 3, 9, 13, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), "multiplier 2, stride 1"),
        (new ConvShape(1, 3, 10, 11, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3), "multiplier 2, stride 2"),
        (new ConvShape(1, 1, 6, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), "one channel, multiplier 3"),
        (new ConvShape(1, 3, 70, 69, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), "large plane: padding cleared row by row"),
        (new ConvShape(1, 2, 67, 133, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2), "large plane, stride 2, 133 wide: vector deinterleave"),
        (new ConvShape(1, 2, 80, 45, 4, 5, 5, 2, 2, 2, 0, 3, 2, 1, 1, 2), "large plane, stride 2, asymmetric pads, multiplier 2"),
    ];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (s, name) in Shapes)
        foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256, CpuSimd.Scalar })
            yield return new TestCaseData(s, simd).SetName($"{simd}: {name}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Depthwise_matches_reference(ConvShape s, CpuSimd simd)
    {
        Assert.That(DepthwiseConv.Supports(s), Is.True, "the case must take the depthwise path");
        BackendComparison.Conv(_cpu[simd], _ref, s);
    }

    private static readonly (ConvShape S, string Name)[] ChannelsLastShapes =
    [
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        (new ConvShape(1, 32, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32), "32 channels 3x3, 7x7"),
        (new ConvShape(2, 48, 14, 13, 48, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 48), "stride 2, asymmetric pads, batch 2"),
        (new ConvShape(1, 16, 15, 15, 16, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 16), "5x5 stride 2"),
        (new ConvShape(1, 80, 9, 11, 80, 3, 5, 1, 1, 2, 1, 2, 3, 2, 1, 80), "3x5, dilation (2,1), odd pads, 80 channels (two 64-channel transposes)"),
        (new ConvShape(1, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16), "14x14, the largest channels-last plane"),
        (new ConvShape(1, 32, 9, 9, 32, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 32), "7x7 kernel (ConvNeXt's), rows of 9: a group of eight and one"),
    ];

    public static IEnumerable<TestCaseData> ChannelsLastCases() =>
        ChannelsLastShapes.Select(c => new TestCaseData(c.S).SetName($"Channels-last depthwise: {c.Name}"));

    /// <summary>The channels-last form (small planes, AVX-512) against the double reference (forward, backward-data
    /// through the flipped forward, backward-weights), and bit for bit against the per-plane path with every fused
    /// activation, with and without a bias.</summary>
    [TestCaseSource(nameof(ChannelsLastCases))]
    public void Channels_last_form_matches_reference_and_the_per_plane_path(ConvShape s)
    {
        Assume.That(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "needs AVX-512");
        DepthwiseConv.RowsForm = false; // the row and flat forms would take these planes first
        DepthwiseConv.FlatForm = false;
        try
        {
            ChannelsLastAgainstPerPlane(s);
        }
        finally
        {
            DepthwiseConv.RowsForm = true;
            DepthwiseConv.FlatForm = true;
        }
    }

    private void ChannelsLastAgainstPerPlane(ConvShape s)
    {
        Assert.That(DepthwiseConv.ChannelsLast(s, CpuSimd.Vector512, residual: false), Is.True, "the case must take the channels-last form");
        BackendComparison.Conv(_cpu[CpuSimd.Vector512], _ref, s);
        AssertPerPlaneBits(s, new Random(23), residuals: false);
    }

    /// <summary>With every fused activation, with and without a bias (and a residual where <paramref name="residuals"/>),
    /// the 512-bit outputs of the form the backend takes now are bit for bit those of the per-plane path (the row form
    /// and channels-last off).</summary>
    private void AssertPerPlaneBits(ConvShape s, Random rng, bool residuals)
    {
        var cpu = _cpu[CpuSimd.Vector512];
        int[] ys = [s.N, s.K, s.OH, s.OW];
        using var x = cpu.Upload(TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        using var w = cpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, 1, s.KH, s.KW);
        using var b = cpu.Upload(TensorAssert.Random(rng, s.K), s.K);
        using var r = cpu.Upload(TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW), ys);
        using var y = cpu.Allocate(ys);
        foreach (var act in new[] { EpilogueActivation.None, EpilogueActivation.Relu, EpilogueActivation.Clip, EpilogueActivation.Silu })
        foreach (bool withBias in new[] { true, false })
        foreach (bool withResidual in residuals ? new[] { true, false } : [false])
        {
            cpu.Conv2dFused(x, w, withBias ? b : null, withResidual ? r : null, y, s, act, -0.25f, 0.5f);
            var now = cpu.Download(y);
            bool rows = DepthwiseConv.RowsForm, flat = DepthwiseConv.FlatForm;
            int max = DepthwiseConv.ChannelsLastMaxPixels;
            DepthwiseConv.RowsForm = false;
            DepthwiseConv.FlatForm = false;
            DepthwiseConv.ChannelsLastMaxPixels = 0;
            try
            {
                cpu.Conv2dFused(x, w, withBias ? b : null, withResidual ? r : null, y, s, act, -0.25f, 0.5f);
            }
            finally
            {
                DepthwiseConv.RowsForm = rows;
                DepthwiseConv.FlatForm = flat;
                DepthwiseConv.ChannelsLastMaxPixels = max;
            }
            Assert.That(now, Is.EqualTo(cpu.Download(y)), $"{act}, bias {withBias}, residual {withResidual}: the per-plane path's bits");
        }
    }

    private static readonly (ConvShape S, string Name)[] RowShapes =
    [
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        (new ConvShape(1, 5, 8, 90, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5), "90 wide: six vectors a row, the last one under a mask"),
        (new ConvShape(2, 3, 14, 14, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), "14x14, one masked vector a row, batch 2"),
        (new ConvShape(1, 4, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), "7x7"),
        (new ConvShape(1, 3, 112, 112, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3), "stride 2, 112 -> 56 (MobileNetV2)"),
        (new ConvShape(1, 3, 29, 40, 3, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3), "5x5 stride 2 on odd rows (EfficientNet)"),
        (new ConvShape(1, 2, 13, 38, 4, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2), "stride 2, dilation 2, multiplier 2"),
        (new ConvShape(1, 3, 12, 12, 3, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 3), "7x7 pad 3, rows read from the row of zeros"),
        (new ConvShape(1, 2, 9, 33, 2, 3, 3, 3, 2, 0, 4, 1, 0, 1, 1, 2), "row stride 3, asymmetric pads past the kernel"),
        (new ConvShape(1, 3, 5, 17, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 3), "1x1 kernel: whole vectors, no padding"),
    ];

    public static IEnumerable<TestCaseData> RowCases() =>
        RowShapes.Select(c => new TestCaseData(c.S).SetName($"Row-form depthwise: {c.Name}"));

    /// <summary>The row form (AVX-512, no copy of the input) against the double reference (forward, backward-data
    /// through the flipped forward, backward-weights), and bit for bit against the per-plane path with every fused
    /// activation, with and without a bias and a residual.</summary>
    [TestCaseSource(nameof(RowCases))]
    public void Row_form_matches_reference_and_the_per_plane_path(ConvShape s)
    {
        Assume.That(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "needs AVX-512");
        Assert.That(DepthwiseConv.Rows(s, CpuSimd.Vector512), Is.True, "the case must take the row form");
        DepthwiseConv.FlatForm = false; // it would take the small "same" planes first
        try
        {
            AssertReferenceAndPerPlaneBits(s, 29);
        }
        finally
        {
            DepthwiseConv.FlatForm = true;
        }
    }

    /// <summary>The 512-bit form the backend takes now against the double reference (forward, backward-data through
    /// the flipped forward, backward-weights) and against the per-plane path's bits (<see cref="AssertPerPlaneBits"/>,
    /// residuals included).</summary>
    private void AssertReferenceAndPerPlaneBits(ConvShape s, int seed)
    {
        BackendComparison.Conv(_cpu[CpuSimd.Vector512], _ref, s);
        AssertPerPlaneBits(s, new Random(seed), residuals: true);
    }

    private static readonly (ConvShape S, string Name)[] FlatShapes =
    [
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        (new ConvShape(1, 32, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32), "7x7 planes: four vectors, two planes a group"),
        (new ConvShape(2, 5, 14, 14, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5), "14x14, batch 2, odd channels: 13 vectors, groups of eight"),
        (new ConvShape(1, 3, 16, 16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), "16x16: 256 pixels, whole vectors"),
        (new ConvShape(1, 7, 7, 7, 7, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 7), "7x7 kernel on 7x7 planes, odd planes: a group's second plane absent"),
        (new ConvShape(3, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16), "8x8, batch 3: groups across images"),
        (new ConvShape(1, 3, 7, 9, 3, 5, 5, 1, 1, 4, 4, 4, 4, 2, 2, 3), "5x5 dilation 2, 7x9"),
        (new ConvShape(1, 3, 6, 6, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1, 3), "2x2 kernel, padded bottom and right only"),
        (new ConvShape(1, 5, 8, 8, 5, 3, 5, 1, 1, 1, 2, 1, 2, 1, 1, 5), "3x5 kernel, 8x8"),
        (new ConvShape(1, 6, 12, 10, 6, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 6), "3x1 kernel, 12x10"),
        (new ConvShape(2, 4, 1, 1, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), "1x1 planes: one lane of one vector"),
        (new ConvShape(1, 3, 5, 5, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 3), "1x1 kernel"),
    ];

    public static IEnumerable<TestCaseData> FlatCases() =>
        FlatShapes.Select(c => new TestCaseData(c.S).SetName($"Flat depthwise: {c.Name}"));

    /// <summary>The flat form (small "same"-padded stride-1 planes, AVX-512, no copy of the input) against the double
    /// reference (forward, backward-data through the flipped forward, backward-weights), and bit for bit against the
    /// per-plane path with every fused activation, with and without a bias and a residual.</summary>
    [TestCaseSource(nameof(FlatCases))]
    public void Flat_form_matches_reference_and_the_per_plane_path(ConvShape s)
    {
        Assume.That(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "needs AVX-512");
        Assert.That(DepthwiseConv.Flat(s, CpuSimd.Vector512), Is.True, "the case must take the flat form");
        AssertReferenceAndPerPlaneBits(s, 31);
    }

    [Test]
    public void Flat_form_takes_only_small_same_padded_stride_one_planes_of_one_channel_a_group()
    {
        // N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G
        var flat = new ConvShape(1, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8);
        Assert.Multiple(() =>
        {
            Assert.That(DepthwiseConv.Flat(flat, CpuSimd.Vector512), Is.EqualTo(System.Runtime.Intrinsics.X86.Avx512F.IsSupported));
            Assert.That(DepthwiseConv.Flat(flat, CpuSimd.Vector256), Is.False, "256-bit");
            Assert.That(DepthwiseConv.Flat(new ConvShape(1, 8, 14, 14, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 8), CpuSimd.Vector512), Is.False, "stride 2");
            Assert.That(DepthwiseConv.Flat(new ConvShape(1, 4, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), CpuSimd.Vector512), Is.False, "multiplier 2");
            Assert.That(DepthwiseConv.Flat(new ConvShape(1, 8, 14, 14, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 8), CpuSimd.Vector512), Is.False, "no padding: a smaller output plane");
            Assert.That(DepthwiseConv.Flat(new ConvShape(1, 8, 17, 17, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8), CpuSimd.Vector512), Is.False, "289 pixels");
            Assert.That(DepthwiseConv.Flat(new ConvShape(1, 8, 14, 14, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 8), CpuSimd.Vector512), Is.False, "5x5 on 14x14");
        });
    }

    /// <summary>The per-plane path at 512 bits on every shape, with the row and flat forms (which take most of them) off.</summary>
    [TestCaseSource(nameof(PerPlaneCases))]
    public void Per_plane_path_matches_reference_with_the_row_and_flat_forms_off(ConvShape s)
    {
        DepthwiseConv.RowsForm = false;
        DepthwiseConv.FlatForm = false;
        try
        {
            Assert.That(DepthwiseConv.Rows(s, CpuSimd.Vector512), Is.False);
            Assert.That(DepthwiseConv.Flat(s, CpuSimd.Vector512), Is.False);
            BackendComparison.Conv(_cpu[CpuSimd.Vector512], _ref, s);
        }
        finally
        {
            DepthwiseConv.RowsForm = true;
            DepthwiseConv.FlatForm = true;
        }
    }

    /// <summary>
    /// The stride-2 gather that deinterleaves rows (the per-plane path's phase copy, the strided 1x1 convs' subsample):
    /// every count from 1 to 50 with the row's end right after the last float read, one further and far away, with the
    /// masked tail on and off, against element-by-element copies; nothing written past the count.
    /// </summary>
    [Test]
    public unsafe void Stride_two_gather_copies_every_other_float_and_writes_nothing_past_the_count()
    {
        var src = new float[128];
        for (int i = 0; i < src.Length; i++)
            src[i] = i + 0.5f;
        var dst = new float[64];
        try
        {
            foreach (bool masked in new[] { true, false })
            {
                DepthwiseConv.MaskedGatherTail = masked;
                for (int count = 1; count <= 50; count++)
                {
                    foreach (int avail in new[] { 2 * count - 1, 2 * count, 100 })
                    {
                        Array.Fill(dst, -1f);
                        fixed (float* ps = src, pd = dst)
                            DepthwiseConv.Gather(ps + 3, 2, pd, count, avail, CpuSimd.Vector512);
                        for (int i = 0; i < dst.Length; i++)
                            Assert.That(dst[i], Is.EqualTo(i < count ? src[3 + 2 * i] : -1f), $"masked {masked}, count {count}, avail {avail}, element {i}");
                    }
                }
            }
        }
        finally
        {
            DepthwiseConv.MaskedGatherTail = true;
        }
    }

    public static IEnumerable<TestCaseData> PerPlaneCases() =>
        Shapes.Concat(RowShapes).Concat(FlatShapes)
            .Select(c => new TestCaseData(c.S).SetName($"Per-plane depthwise (Vector512, row and flat forms off): {c.Name}"));

    /// <summary>
    /// The per-plane path keeps a thread's plane buffer's padding zeros from one plane to the next of the same geometry
    /// (<see cref="DepthwiseConv.KeepZeros"/>); the strided backward-data scatters into that buffer, so a forward after
    /// it must clear again. Forward, backward-data, forward on one thread (a small layer): both forwards equal the
    /// reference, and each other bit for bit; and a layer of the same padded size with its pads moved, in between.
    /// </summary>
    [Test]
    public void Per_plane_forward_after_a_strided_backward_data_and_a_layer_of_other_padding_matches_reference()
    {
        var cpu = _cpu[CpuSimd.Vector512];
        DepthwiseConv.RowsForm = false;
        DepthwiseConv.FlatForm = false;
        try
        {
            var s = new ConvShape(1, 3, 9, 11, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3);
            var rng = new Random(5);
            float[] xd = TensorAssert.Random(rng, s.N * s.C * s.H * s.W), wd = TensorAssert.Random(rng, (int)s.WeightLength);
            float[] dyd = TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW);
            using var x = cpu.Upload(xd, s.N, s.C, s.H, s.W);
            using var w = cpu.Upload(wd, s.K, 1, s.KH, s.KW);
            using var dy = cpu.Upload(dyd, s.N, s.K, s.OH, s.OW);
            using var dx = cpu.Allocate(s.N, s.C, s.H, s.W);
            using var xr = _ref.Upload(xd, s.N, s.C, s.H, s.W);
            using var wr = _ref.Upload(wd, s.K, 1, s.KH, s.KW);
            using var yr = _ref.Allocate(s.N, s.K, s.OH, s.OW);
            _ref.Conv2d(xr, wr, null, yr, s);
            var expected = ReferenceBackend.DownloadDouble(yr);
            float[] Forward()
            {
                using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
                cpu.Conv2d(x, w, null, y, s);
                return cpu.Download(y);
            }
            var first = Forward();
            cpu.Conv2dBackwardData(dy, w, dx, s);
            Assert.That(cpu.Download(dx).Any(v => v != 0f), "the scatter wrote the buffer");
            var second = Forward();
            TensorAssert.Close(first, expected, BackendComparison.Atol, BackendComparison.Rtol, "forward");
            Assert.That(second, Is.EqualTo(first), "the forward after the backward-data");

            // The same padded size with the pads moved to the bottom and right (the data at other places of a buffer of
            // the same size), then the first layer again.
            var u = s with { PadTop = 0, PadLeft = 0, PadBottom = 2, PadRight = 2 };
            using var yu = cpu.Allocate(u.N, u.K, u.OH, u.OW);
            using var yur = _ref.Allocate(u.N, u.K, u.OH, u.OW);
            cpu.Conv2d(x, w, null, yu, u);
            _ref.Conv2d(xr, wr, null, yur, u);
            TensorAssert.Close(cpu.Download(yu), ReferenceBackend.DownloadDouble(yur), BackendComparison.Atol, BackendComparison.Rtol, "pads moved");
            Assert.That(Forward(), Is.EqualTo(first), "the first layer after the one with its pads moved");
        }
        finally
        {
            DepthwiseConv.RowsForm = true;
            DepthwiseConv.FlatForm = true;
        }
    }

    /// <summary>
    /// The per-plane path's store of a row's last outputs as one masked vector, on rows ending 1, 3, 7 and 12 past a
    /// multiple of 16 (7, 19, 28 and 33 wide; the 7-wide rows all tail), with bias, residual and each activation, against
    /// the reference and bit for bit against the unmasked store (8, 4 and 1 at a time).
    /// </summary>
    [TestCase(EpilogueActivation.Silu)]
    [TestCase(EpilogueActivation.Clip)]
    [TestCase(EpilogueActivation.Relu)]
    [TestCase(EpilogueActivation.None)]
    public void Per_plane_masked_row_tails_match_reference_and_the_unmasked_store(EpilogueActivation act)
    {
        var cpu = _cpu[CpuSimd.Vector512];
        const float lo = -0.5f, hi = 0.75f;
        DepthwiseConv.RowsForm = false;
        DepthwiseConv.FlatForm = false;
        try
        {
            foreach (int width in new[] { 7, 19, 28, 33 })
            {
                var s = new ConvShape(2, 5, 6, width, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 5);
                var rng = new Random(width);
                float[] xd = TensorAssert.Random(rng, s.N * s.C * s.H * s.W), wd = TensorAssert.Random(rng, (int)s.WeightLength);
                float[] bd = TensorAssert.Random(rng, s.K), rd = TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW);
                int[] ys = [s.N, s.K, s.OH, s.OW];
                using var x = cpu.Upload(xd, s.N, s.C, s.H, s.W);
                using var w = cpu.Upload(wd, s.K, 1, s.KH, s.KW);
                using var b = cpu.Upload(bd, s.K);
                using var r = cpu.Upload(rd, ys);
                using var xr = _ref.Upload(xd, s.N, s.C, s.H, s.W);
                using var wr = _ref.Upload(wd, s.K, 1, s.KH, s.KW);
                using var br = _ref.Upload(bd, s.K);
                using var rr = _ref.Upload(rd, ys);
                using var yr = _ref.Allocate(ys);
                _ref.Conv2dFused(xr, wr, br, rr, yr, s, act, lo, hi);
                var expected = ReferenceBackend.DownloadDouble(yr);
                float[]? unmasked = null;
                foreach (bool masked in new[] { false, true })
                {
                    DepthwiseConv.MaskedRowTail = masked;
                    using var y = cpu.Upload(Enumerable.Repeat(float.NaN, s.N * s.K * s.OH * s.OW).ToArray(), ys); // unwritten outputs show
                    cpu.Conv2dFused(x, w, b, r, y, s, act, lo, hi);
                    var actual = cpu.Download(y);
                    TensorAssert.Close(actual, expected, BackendComparison.Atol, BackendComparison.Rtol, $"{width} wide, {act}, masked {masked}");
                    if (unmasked == null)
                        unmasked = actual;
                    else
                        Assert.That(actual, Is.EqualTo(unmasked), $"{width} wide, {act}: the masked tail's bits");
                }
            }
        }
        finally
        {
            DepthwiseConv.RowsForm = true;
            DepthwiseConv.FlatForm = true;
            DepthwiseConv.MaskedRowTail = true;
        }
    }

    [TestCase(CpuSimd.Vector512, EpilogueActivation.Clip)]
    [TestCase(CpuSimd.Vector512, EpilogueActivation.Relu)]
    [TestCase(CpuSimd.Vector512, EpilogueActivation.Silu)]
    [TestCase(CpuSimd.Vector256, EpilogueActivation.Clip)]
    [TestCase(CpuSimd.Vector256, EpilogueActivation.None)]
    [TestCase(CpuSimd.Scalar, EpilogueActivation.Clip)]
    public void Fused_output_stage_matches_reference(CpuSimd simd, EpilogueActivation act)
    {
        var cpu = _cpu[simd];
        // 19 wide: one 16-lane vector and a tail per row; multiplier 2 so the residual has K planes.
        var s = new ConvShape(2, 3, 9, 19, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3);
        const float lo = -0.5f, hi = 0.75f;
        var rng = new Random(17);
        float[] xd = TensorAssert.Random(rng, s.N * s.C * s.H * s.W), wd = TensorAssert.Random(rng, (int)s.WeightLength);
        float[] bd = TensorAssert.Random(rng, s.K), rd = TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW);
        int[] ys = [s.N, s.K, s.OH, s.OW];
        foreach (bool withResidual in new[] { true, false })
        {
            using var x = cpu.Upload(xd, s.N, s.C, s.H, s.W);
            using var w = cpu.Upload(wd, s.K, 1, s.KH, s.KW);
            using var b = cpu.Upload(bd, s.K);
            using var r = cpu.Upload(rd, ys);
            using var y = cpu.Allocate(ys);
            using var xr = _ref.Upload(xd, s.N, s.C, s.H, s.W);
            using var wr = _ref.Upload(wd, s.K, 1, s.KH, s.KW);
            using var br = _ref.Upload(bd, s.K);
            using var rr = _ref.Upload(rd, ys);
            using var yr = _ref.Allocate(ys);
            cpu.Conv2dFused(x, w, b, withResidual ? r : null, y, s, act, lo, hi);
            _ref.Conv2dFused(xr, wr, br, withResidual ? rr : null, yr, s, act, lo, hi);
            var actual = cpu.Download(y);
            TensorAssert.Close(actual, ReferenceBackend.DownloadDouble(yr), BackendComparison.Atol, BackendComparison.Rtol,
                $"fused {act}, residual {withResidual}");
            if (act == EpilogueActivation.Clip)
            {
                Assert.That(actual.Count(v => v == lo), Is.GreaterThan(actual.Length / 8), "outputs clipped at lo");
                Assert.That(actual.Count(v => v == hi), Is.GreaterThan(actual.Length / 8), "outputs clipped at hi");
            }
            if (act == EpilogueActivation.Relu)
                Assert.That(actual.Count(v => v == 0f), Is.GreaterThan(actual.Length / 4), "outputs clipped at 0");
        }
    }

    [Test]
    public void Conv2dRelu_is_max_of_zero_and_conv()
    {
        var cpu = _cpu[CpuSimdDetect.Best];
        var s = new ConvShape(1, 5, 7, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5);
        var rng = new Random(3);
        using var x = cpu.Upload(TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        using var w = cpu.Upload(TensorAssert.Random(rng, (int)s.WeightLength), s.K, 1, s.KH, s.KW);
        using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
        using var fused = cpu.Allocate(s.N, s.K, s.OH, s.OW);
        cpu.Conv2d(x, w, null, y, s);
        cpu.Conv2dRelu(x, w, null, fused, s);
        var expected = cpu.Download(y).Select(v => MathF.Max(v, 0f)).ToArray();
        Assert.That(cpu.Download(fused), Is.EqualTo(expected));
        Assert.That(expected.Count(v => v == 0f), Is.GreaterThan(expected.Length / 4), "about half the outputs are clipped");
    }

    [Test]
    public void Only_one_input_channel_per_group_takes_the_depthwise_path_and_the_im2col_path_still_agrees()
    {
        Assert.That(DepthwiseConv.Supports(new ConvShape(1, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4)), Is.False,
            "two channels per group");
        Assert.That(DepthwiseConv.Supports(new ConvShape(1, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)), Is.False,
            "one group of eight channels");
        DepthwiseConv.Enabled = false;
        try
        {
            Assert.That(DepthwiseConv.Supports(Shapes[2].S), Is.False, "disabled");
            BackendComparison.Conv(_cpu[CpuSimdDetect.Best], _ref, Shapes[2].S);
        }
        finally
        {
            DepthwiseConv.Enabled = true;
        }
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        foreach (var backend in _cpu.Values)
            backend.Dispose();
        _ref.Dispose();
    }
}
