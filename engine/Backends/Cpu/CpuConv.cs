using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// 2-D convolution on the managed CPU backend, NCHW, as implicit-im2col GEMMs over a phase-split padded copy
/// of the input (<see cref="ConvPlan"/>): the packer copies each im2col row as a contiguous run, so packing
/// costs about what a plain GEMM's does. Images are batched into the GEMM's columns, in chunks that keep the
/// buffers near 16 MB.
/// <code>x: (N, C, H, W)   w: (K, C/G, KH, KW)   y: (N, K, OH, OW)   per group: Y[K/G, cols] = W[K/G, CRS] col[CRS, cols]</code>
/// </summary>
internal static unsafe class CpuConv
{
    // ---- forward ----

    /// <summary>Packs the forward A operand: per group, W[g] as a (K/G) x CRS matrix, groups back to back.</summary>
    public static float[] PackForwardWeights(float* w, ConvShape s)
    {
        int kg = s.KPerGroup, crs = s.CPerGroup * s.KH * s.KW;
        long per = PackedGemm.PackedALength(kg, crs);
        var packed = GC.AllocateUninitializedArray<float>((int)(per * s.Groups), pinned: true);
        fixed (float* p = packed)
        {
            for (int g = 0; g < s.Groups; g++)
                PackedGemm.PackA(w + (long)g * kg * crs, crs, 1, kg, crs, 1f, p + g * per);
        }
        return packed;
    }

    /// <summary><c>y = conv(x, w) + b</c> with w already packed by <see cref="PackForwardWeights"/>, then the
    /// <paramref name="epilogue"/> (residual, activation) on each output once its sum is final.</summary>
    public static void Forward(float* x, float* packedW, float* bias, float* y, ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        if (Subsampled(s))
        {
            ForwardSubsampled(x, packedW, bias, y, s, simd, epilogue);
            return;
        }
        if (ReadsRowsInPlace(s, simd))
        {
            ForwardRowsInPlace(x, packedW, bias, y, s, simd, epilogue);
            return;
        }
        int kg = s.KPerGroup, ohw = s.OH * s.OW;
        // A 1x1-wide, stride-1, unpadded conv reads x in place (its im2col rows are x's own rows); on planes of
        // 256 pixels or more that beats batching images into one copied buffer, so it goes image by image.
        bool inPlace = s.StrideH == 1 && s.StrideW == 1 && s.KW == 1
                       && s.PadTop == 0 && s.PadLeft == 0 && s.PadBottom == 0 && s.PadRight == 0;
        // One image on a large plane: the GEMM's columns are the output pixels alone (a compact plan), so it writes y
        // with the bias and epilogue, with no temporary and no scatter (ResNet's stem: 3.3 MB written and read again).
        // Measured (bench profile, PROFILE_COMPACT=1, ResNet-18's stem): batch 1 after a 128 MB sweep 1.96 ms against
        // 2.09, in cache 1.61 against 1.61; at batch 8, image by image this way, 19.3 ms against 16.1 in chunks of
        // five images, and 12.4 against 12.0 in a later run (the stores straight into eight 3.2 MB outputs miss where
        // the scatter streams), so batches keep the chunks.
        bool compact = !inPlace && s.N == 1 && CompactPixels > 0 && s.OH * s.OW >= CompactPixels;
        int nb = inPlace && s.OH * s.OW >= 256 || compact ? 1 : ConvPlan.ChunkImages(s, kg);
        long perGroupA = PackedGemm.PackedALength(kg, s.CPerGroup * s.KH * s.KW);
        bool zeroCopy = nb == 1 && inPlace;
        float[]? bufArray = null, tempArray = null;
        try
        {
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0), compact);
                float* buf;
                if (zeroCopy)
                {
                    buf = x + (long)n0 * s.C * s.H * s.W;
                }
                else
                {
                    bufArray ??= Scratch.Rent(new ConvPlan(s, nb).BufferLength);
                    buf = Scratch.Aligned(bufArray);
                    BuildPhases(x, n0, plan, buf);
                }
                bool direct = plan.Images == 1 && (plan.Wq == s.OW || compact);
                float* temp = null;
                if (!direct)
                {
                    tempArray ??= Scratch.Rent((long)kg * new ConvPlan(s, nb).Columns);
                    temp = Scratch.Aligned(tempArray);
                }
                for (int g = 0; g < s.Groups; g++)
                {
                    var offsets = plan.RowOffsets(g);
                    float* c;
                    long ldc;
                    if (direct)
                    {
                        c = y + ((long)n0 * s.K + g * kg) * ohw;
                        ldc = ohw;
                    }
                    else
                    {
                        c = temp;
                        ldc = plan.Columns;
                    }
                    fixed (long* ro = offsets)
                    {
                        // Written in place (C is y), the GEMM adds the bias and applies the epilogue per final tile
                        // (no pass filling y with the bias first); else the scatter does.
                        PackedGemm.Run(kg, plan.Columns, plan.Crs, packedW + g * perGroupA,
                            new ConvColumns(buf, ro, plan), c, ldc, false, simd,
                            epilogue: direct ? epilogue.Shifted(c - y) : default,
                            rowBias: direct && bias != null ? bias + g * kg : null,
                            streamOutput: direct && StreamsOutput(s));
                    }
                    if (!direct)
                        ScatterOutput(temp, plan, n0, g, bias, y, epilogue);
                }
            }
        }
        finally
        {
            if (bufArray != null)
                Scratch.Return(bufArray);
            if (tempArray != null)
                Scratch.Return(tempArray);
        }
    }

    /// <summary>
    /// Whether a 1x1 stride-1 unpadded conv of one group that <see cref="Forward"/> reads in place gives its GEMM x's
    /// channel planes as B's rows read in place by the AVX-512 kernel (<see cref="InPlaceRows"/>, the next panel's rows
    /// prefetched on a task's first row of tiles) rather than packed per task (<see cref="ConvColumns"/>); not where the
    /// output is streamed past the caches (<see cref="StreamsOutput"/>). Measured on the 2-core Zen 4 VM: bench `gemm`
    /// (batch 1, hot / after a 64 MB sweep, ms, in place against packed): 256->64 at 56x56 0.482 / 0.516 against 0.553 /
    /// 0.629, 512->128 at 28x28 0.528 / 0.567 against 0.561 / 0.647, 64->256 with its residual 0.554 / 0.700 against 0.587 /
    /// 0.691; lean forward after a 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_ROWS_IN_PLACE=1, alternating,
    /// sums of node medians): ResNet-50 batch 1 42.64 against 43.03 ms, batch 8 353.9 against 362.4, MobileNetV2 7.68
    /// against 7.96 and 59.6 against 62.9, EfficientNet-B0 13.38 against 13.44. With streamed outputs (ResNet-50's
    /// 64->256 layers at 56x56, batch 8: 25.7 MB) the in-place reads lost, 5.8-6.3 against 5.3-5.5 ms. Tests and the
    /// bench switch it.
    /// </summary>
    internal static bool RowsInPlace { get; set; } = true;

    /// <summary>
    /// The smallest output plane whose 1x1 GEMM reads x's rows in place image by image (<see cref="RowsInPlace"/>), as
    /// <see cref="Forward"/> reads x in place image by image from there; a batch as one GEMM goes down to 14x14
    /// (<see cref="BatchedMinPixels"/>). ResNet-50's 1024->256 layers at 14x14 (196 pixels) in the column form image by
    /// image won in cache (bench profile, PROFILE_FORMS=1: 0.551 ms against 0.651 direct) but not inside the forward at
    /// batch 1 (separate processes: 0.57-0.58 against 0.56-0.63; see <see cref="BatchedPointwise"/>), so they stay direct
    /// there.
    /// </summary>
    internal const int RowsInPlaceMinPixels = 256;

    /// <summary>Whether <see cref="Forward"/> gives a layer's GEMM x's channel planes in place (<see cref="RowsInPlace"/>,
    /// <see cref="ForwardRowsInPlace"/>): a 1x1 stride-1 unpadded conv of one group, AVX-512, a plane of
    /// <see cref="RowsInPlaceMinPixels"/> or more (14x14 or more for a batch run as one GEMM, <see cref="BatchedRows"/>),
    /// an output not streamed.</summary>
    public static bool ReadsRowsInPlace(ConvShape s, CpuSimd simd) =>
        RowsInPlace && simd == CpuSimd.Vector512 && s.IsUnpaddedPointwise && s.Groups == 1 && !StreamsOutput(s)
        && (s.OH * s.OW >= RowsInPlaceMinPixels || BatchedRows && s.N > 1 && s.OH * s.OW >= BatchedMinPixels
            || PrepacksOneImage(s));

    /// <summary>The smallest plane whose 1x1 GEMM reads x's rows in place when a batch runs as one GEMM
    /// (<see cref="BatchedRows"/>): 14x14.</summary>
    internal const int BatchedMinPixels = 196;

    /// <summary>
    /// Whether a batch's 1x1 layer on a plane of 14x14 to 27x27 takes the column form, as one GEMM over the batch's pixels
    /// with x's rows read in place (<see cref="BatchedRows"/>), where the planar form does not (it keeps the expanding and
    /// the narrow ones). Measured in separate processes, one form each (lean forward after a 100 ms sleep and a 64 MB
    /// sweep, ResNet-50 batch 8, alternating processes, ms): its 1024->256 layers at 14x14 4.93-5.19 against 5.27-5.58
    /// direct, 1024->512 9.02-9.17 against 9.96-9.99, node sums 344.5, 344.9 and 335.2 against 353.4, 351.6 and 341.2;
    /// the 256->1024 ones in this form went -0.2 to +0.2 against the planar form, and at batch 1 the 1024->256 ones
    /// 0.57-0.58 against 0.56-0.63 and 1024->512 1.13-1.14 against 1.02-1.03, so those stay as they were. (The same
    /// change measured alternating call by call in one process, PROFILE_BATCHED_ROWS=1, showed the 1024->256 layers 0.4-0.6
    /// ms slower: with both forms' packed weights and buffers alive in one process the comparison misleads.)
    /// </summary>
    public static bool BatchedPointwise(ConvShape s, CpuSimd simd) =>
        BatchedRows && s.N > 1 && s.OH * s.OW < 784 && ReadsRowsInPlace(s, simd);

    /// <summary>
    /// Whether one image's expanding 1x1 layer (more outputs than inputs, 256 or more of each) on a plane of 196 to 255
    /// pixels whose rows are off 64-byte boundaries (<see cref="PrepacksRows"/>: 14x14, 15x15) packs x once and takes
    /// the column form on it, as a batch's does (<see cref="ForwardPrepacked"/>), instead of the planar form. Lean
    /// forward after a 100 ms sleep and a 64 MB sweep (PROFILE_PREPACK_ONE=1, alternating call by call, ResNet-50
    /// batch 1, 2-vCPU EPYC Zen 5 VM, 2026-12-08 ~00:15 UTC): its six 256->1024 expansions with their residual 2.55 and
    /// 2.62 ms against 3.15 and 3.07 planar (two processes; in cache, PROFILE_FORMS=1, 0.30 against 0.41 each). The
    /// reducing 1024->256 and 1024->512 layers lost this way (0.48 against 0.35 and 0.81 against 0.67 direct) and keep
    /// the direct form. Tests and the bench switch it.
    /// </summary>
    internal static bool PrepackOne { get; set; } = true;

    private static bool PrepacksOneImage(ConvShape s) =>
        PrepackOne && s.N == 1 && s.K > s.C && s.IsUnpaddedPointwise && s.Groups == 1
        && s.OH * s.OW >= BatchedMinPixels && s.OH * s.OW < RowsInPlaceMinPixels && PrepacksRows(s);

    /// <summary>
    /// Whether a batch's 1x1 layer that reads x's rows in place runs as one GEMM over every image's pixels
    /// (<see cref="PackedGemm.Run"/>'s colsPerImage: the panels that cross into the next image packed, the rest read in
    /// place) rather than one GEMM per image: one parallel loop instead of one per image, and no short last panel per
    /// image. Lean forward after a 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_BATCHED_ROWS=1, alternating,
    /// ResNet-50 batch 8): the 512->128 layers at 28x28 4.10-4.13 ms against 4.29-4.38, node sums 303.4 against 304.2 in
    /// one run and 374.9 against 384.4 in another (a slow spell). Tests and the bench switch it.
    /// </summary>
    internal static bool BatchedRows { get; set; } = true;

    /// <summary>
    /// Whether a batch's 1x1 GEMM over every image's pixels (<see cref="BatchedRows"/>) whose channel rows do not start
    /// on a 64-byte boundary (planes of a pixel count not a multiple of 16: 14x14, 17x17) packs all of x into aligned
    /// 32-column panels once, in one parallel pass, and runs on those (<see cref="ForwardPrepacked"/>), instead of
    /// reading x's rows in place: a 32-float row read there spans three cache lines. Lean forward after a 100 ms sleep
    /// and a 64 MB sweep (PROFILE_PREPACK_ROWS=1, alternating, 2-vCPU EPYC Zen 4 VM, 2026-12-07 ~21:45 UTC), ResNet-50
    /// batch 8: its 14x14 column-form layers (1024->256, 1024->512) 35.9-36.5 ms against 38.3-39.5 (0.924-0.942), node
    /// sums 0.991, 0.992, 1.008, 1.000 (four processes; the rest of the call in a slow spell). Only layers of 256 or more
    /// input and output channels: the pass costs in proportion to C x pixels against K x C x pixels of FMAs, and
    /// MobileNetV2's 14x14 576->96 projections at batch 8 were 0.09-0.12 ms slower with it (96->576 0.07); and only up
    /// to <see cref="PrepackMaxBytes"/> of packed x. Such layers take the column form ahead of the planar form
    /// (<see cref="DefaultForm"/>): ResNet-50's 256->1024 expansions at 14x14, batch 8, with their residual, ran 31.7 and
    /// 34.2 ms (six layers) in it against 38.0 and 39.2 planar (PROFILE_PLANAR=1, two processes); with both, its 14x14
    /// 1x1s 0.911 and 0.917 of their time, node sums 0.982 and 0.987 (PROFILE_PREPACK_ROWS=1, 22:12 UTC). Tests and the
    /// bench switch it.
    /// </summary>
    internal static bool PrepackOffLineRows { get; set; } = true;

    /// <summary>The most bytes of x <see cref="PrepackOffLineRows"/> packs (beyond it x is read in place): 32 MB.</summary>
    internal const long PrepackMaxBytes = 32L << 20;

    /// <summary>Whether <see cref="ForwardRowsInPlace"/> runs a batch's GEMM on x packed first (<see cref="PrepackOffLineRows"/>).</summary>
    private static bool PrepacksRows(ConvShape s) =>
        PrepackOffLineRows && s.OH * s.OW % 16 != 0 && s.C >= 256 && s.K >= 256
        && 4L * PackedGemm.RoundUp(s.N * s.OH * s.OW, PackedGemm.NR) * s.C <= PrepackMaxBytes;

    /// <summary>
    /// A batch's 1x1 GEMM (<see cref="ForwardRowsInPlace"/>) on x packed first (<see cref="PackedGemm.PackB"/>, one
    /// parallel pass) into the layout <see cref="PrepackedPanels"/> reads; C and the epilogue as in place.
    /// </summary>
    private static void ForwardPrepacked(InPlaceRows rows, float* packedW, float* bias, float* y, ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue, bool stream)
    {
        int ohw = s.OH * s.OW, n = s.N * ohw;
        var buf = Scratch.Rent(PackedGemm.PackedBLength(s.C, n));
        try
        {
            float* packed = Scratch.Aligned(buf);
            PackedGemm.PackB(rows, s.C, n, packed);
            PackedGemm.Run(s.K, n, s.C, packedW, new PrepackedPanels(packed, PackedGemm.RoundUp(n, PackedGemm.NR)), y, ohw,
                false, simd, epilogue: epilogue, rowBias: bias, streamOutput: stream, colsPerImage: ohw,
                cImageStride: (long)s.K * ohw);
        }
        finally
        {
            Scratch.Return(buf);
        }
    }

    /// <summary>
    /// A 1x1 stride-1 unpadded conv of one group (<see cref="ReadsRowsInPlace"/>) as GEMMs whose B rows are x's channel
    /// planes read where they lie (<see cref="InPlaceRows"/>) and whose C is y: one over the whole batch
    /// (<see cref="BatchedRows"/>), else one per image, the bias and the <paramref name="epilogue"/> applied per final tile.
    /// </summary>
    private static void ForwardRowsInPlace(float* x, float* packedW, float* bias, float* y, ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue)
    {
        int ohw = s.OH * s.OW;
        long xImage = (long)s.C * ohw, yImage = (long)s.K * ohw;
        bool stream = StreamsOutput(s);
        if (BatchedRows && s.N > 1 || PrepacksOneImage(s))
        {
            var rows = new InPlaceRows(x, ohw, s.N * ohw, ohw, xImage);
            if (PrepacksRows(s))
            {
                ForwardPrepacked(rows, packedW, bias, y, s, simd, epilogue, stream);
                return;
            }
            PackedGemm.Run(s.K, s.N * ohw, s.C, packedW, rows, y, ohw, false, simd,
                epilogue: epilogue, rowBias: bias, streamOutput: stream, colsPerImage: ohw, cImageStride: yImage);
            return;
        }
        for (int img = 0; img < s.N; img++)
        {
            float* c = y + img * yImage;
            PackedGemm.Run(s.K, ohw, s.C, packedW, new InPlaceRows(x + img * xImage, ohw, ohw), c, ohw, false, simd,
                epilogue: epilogue.Shifted(c - y), rowBias: bias, streamOutput: stream);
        }
    }

    /// <summary>Whether <see cref="Forward"/> runs the layer as <see cref="ForwardSubsampled"/>: a strided 1x1 unpadded
    /// conv of one group (a ResNet downsample), unless <see cref="SubsampledPointwise"/> is off.</summary>
    public static bool Subsampled(ConvShape s) =>
        SubsampledPointwise && s.IsUnpaddedStridedPointwise && s.Groups == 1 && s.DilationH == 1 && s.DilationW == 1;

    /// <summary>
    /// Whether a strided 1x1 conv (<see cref="Subsampled"/>) runs faster as <see cref="ForwardSubsampled"/> than in the
    /// direct form, whose NHWC copy of x costs in proportion to C x pixels against K x C x pixels of FMAs: so on large
    /// output planes, and on 14x14 ones with few outputs. Measured (bench profile, PROFILE_LEAN=1 PROFILE_SUBSAMPLED=1,
    /// 64 MB sweep and 50 ms sleep before each call, alternating; ms gathered / direct): ResNet-18 batch 1 64->128 at
    /// 28x28 0.131 / 0.246, 128->256 at 14x14 0.130 / 0.183, 256->512 at 7x7 0.144 / 0.125; ResNet-50 batch 1 256->512
    /// at 28x28 1.35 / 1.32, 512->1024 at 14x14 1.54 / 1.24, 1024->2048 at 7x7 1.76 / 1.15; batch 8: ResNet-18 1.94 /
    /// 2.38, 1.64 / 1.90, 1.18 / 1.21; ResNet-50 14.2 / 17.7, 13.5 / 13.9, 14.6 / 9.8.
    /// </summary>
    public static bool SubsampledPays(ConvShape s) => s.OH * s.OW >= 784 || s.OH * s.OW >= 196 && s.K <= 256;

    /// <summary>Whether strided 1x1 convs in the column form gather their columns from x (<see cref="ForwardSubsampled"/>)
    /// rather than from a phase buffer of every stride phase. Tests and the bench switch it.</summary>
    internal static bool SubsampledPointwise { get; set; } = true;

    /// <summary>
    /// A strided 1x1 unpadded conv (<see cref="Subsampled"/>), image by image, as one GEMM whose columns are the output
    /// pixels: B gathered per task from x by <see cref="SubsampledColumns"/> (the pixels a stride skips are never
    /// copied; the phase buffer of <see cref="Forward"/> copies all of x into its phases first), C written straight
    /// into y with the bias and the <paramref name="epilogue"/>.
    /// </summary>
    public static void ForwardSubsampled(float* x, float* packedW, float* bias, float* y, ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        int ohw = s.OH * s.OW;
        long xImage = (long)s.C * s.H * s.W, yImage = (long)s.K * ohw;
        if (SubsampleFirst(s, simd))
        {
            // Every image's kept pixels into one dense (N, C, OH, OW) tensor, then the stride-1 layer it leaves.
            var copyArray = Scratch.Rent((long)s.N * s.C * ohw);
            try
            {
                float* sub = Scratch.Aligned(copyArray);
                Subsample(x, s, sub, simd);
                ForwardRowsInPlace(sub, packedW, bias, y, Dense(s), simd, epilogue);
            }
            finally
            {
                Scratch.Return(copyArray);
            }
            return;
        }
        bool stream = StreamsOutput(s);
        for (int img = 0; img < s.N; img++)
        {
            float* c = y + img * yImage;
            PackedGemm.Run(s.K, ohw, s.C, packedW, new SubsampledColumns(x + img * xImage, s, simd), c, ohw, false, simd,
                epilogue: epilogue.Shifted(c - y), rowBias: bias, streamOutput: stream);
        }
    }

    /// <summary>
    /// Whether <see cref="ForwardSubsampled"/> first copies the pixels the stride keeps into a dense (N, C, OH, OW) tensor
    /// and then runs the stride-1 layer it leaves with x's rows read in place (<see cref="ReadsRowsInPlace"/>,
    /// <see cref="ForwardRowsInPlace"/>: a batch as one GEMM): one gather of x instead of one per task of the GEMM (each
    /// block of columns is gathered once per block of output rows, four times for ResNet-50's 256->512 at 28x28). Lean
    /// forward after a 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_SUBSAMPLE_COPY=1, alternating, node
    /// medians, copied / gathered): that layer 1.29 / 1.76 ms at batch 1 and 11.8 / 16.3 at batch 8 image by image (whole
    /// node sums 367.6 / 377.8), 12.1 / 14.4 as one GEMM; ResNet-18's 64->128 at 28x28 0.212 / 0.222 at batch 1, its
    /// downsamples at batch 8 as one GEMM 1.70 / 1.86 (to 28x28) and 1.42 / 1.80 (to 14x14). ResNet-50's 512->1024 to
    /// 14x14 (direct) copied and run as one GEMM in the column form at batch 8 took 10.3 and 11.3 ms against 9.6 and 11.2
    /// direct (separate processes), so it stays direct. Tests and the bench switch it (<see cref="SubsampleCopy"/>).
    /// </summary>
    public static bool SubsampleFirst(ConvShape s, CpuSimd simd) =>
        SubsampleCopy && ReadsRowsInPlace(Dense(s), simd);

    /// <summary>The stride-1 layer a strided 1x1 conv leaves once the pixels its stride keeps are copied out.</summary>
    private static ConvShape Dense(ConvShape s) => s with { H = s.OH, W = s.OW, StrideH = 1, StrideW = 1 };

    /// <summary>See <see cref="SubsampleFirst"/>.</summary>
    internal static bool SubsampleCopy { get; set; } = true;

    /// <summary>sub[n, c, oh, ow] = x[n, c, oh*SH, ow*SW] for a strided 1x1 unpadded conv, every image's channels in one
    /// parallel loop.</summary>
    private static void Subsample(float* x, ConvShape s, float* sub, CpuSimd simd)
    {
        int ohw = s.OH * s.OW, planes = s.N * s.C;
        long plane = (long)s.H * s.W, rowStep = (long)s.StrideH * s.W;
        const int PerTask = 16;
        CpuParallel.For((planes + PerTask - 1) / PerTask, t =>
        {
            for (int ch = t * PerTask; ch < Math.Min(planes, (t + 1) * PerTask); ch++)
            {
                float* src = x + ch * plane, dst = sub + (long)ch * ohw;
                for (int oh = 0; oh < s.OH; oh++)
                    DepthwiseConv.Gather(src + oh * rowStep, s.StrideW, dst + oh * s.OW, s.OW, s.W, simd);
            }
        });
    }

    /// <summary>Whether the layer's whole output is large enough to be stored past the caches
    /// (<see cref="PackedGemm.StreamBytes"/>).</summary>
    private static bool StreamsOutput(ConvShape s) => 4L * s.N * s.K * s.OH * s.OW >= PackedGemm.StreamBytes;

    /// <summary>Output planes of at least this many pixels take the compact column plan in <see cref="Forward"/>
    /// (tests lower it; the bench's profile switches it, PROFILE_COMPACT=1); 0: never.</summary>
    internal static int CompactPixels { get; set; } = 1024;

    // ---- forward, pixels as rows ----

    /// <summary>
    /// Whether <see cref="ForwardTransposed"/> suits a layer better than <see cref="Forward"/>: the column form
    /// computes Wq - OW padding columns per output row and rounds the columns up to whole 32-wide panels, which
    /// wastes a fifth of the work at 7x7 and an eighth at 14x14; the pixel-row form computes exactly the output
    /// pixels (rounded up to 8) against 32-wide panels of output channels.
    /// </summary>
    public static bool UseTransposed(ConvShape s)
    {
        if (s.Groups != 1 || s.K < PackedGemm.NR)
            return false;
        var plan = new ConvPlan(s, ConvPlan.ChunkImages(s, s.K));
        int pixels = plan.Images * s.OH * s.OW;
        double columnForm = (double)pixels / PackedGemm.RoundUp(plan.Columns, PackedGemm.NR)
                            * s.K / PackedGemm.RoundUp(s.K, PackedGemm.MR);
        double pixelForm = (double)pixels / PackedGemm.RoundUp(pixels, PackedGemm.MR)
                           * s.K / PackedGemm.RoundUp(s.K, PackedGemm.NR);
        // Measured per ResNet-18 layer at batch 1 and 8 (bench profile, PROFILE_FORMS=1): the pixel-row form wins
        // where the column form wastes an eighth or more, and with many output channels also where it wastes less
        // (its im2col is packed once, not once per block of output channels); it loses on large planes with few
        // channels (64x56x56, the stem), where its panels straddle output rows and the transposed store costs.
        return pixelForm > columnForm && (columnForm < 0.92 || s.K >= 256);
    }

    /// <summary>Forces a form for benchmarks (falling back to an im2col form where <see cref="DirectConv"/> cannot run);
    /// null: choose per layer.</summary>
    internal static ConvForm? FormOverride { get; set; }

    /// <summary>Forces a form per layer for benchmarks (null from it: choose as usual); after <see cref="FormOverride"/>,
    /// with the same fallbacks.</summary>
    internal static Func<ConvShape, ConvForm?>? FormRule { get; set; }

    /// <summary>The forward form for a layer: <see cref="WinogradConv"/> for 3x3 stride-1 layers where its cost model
    /// says it pays (<see cref="WinogradConv.Pays"/>), else <see cref="PlanarConv"/> for few input channels,
    /// expanding 1x1 layers on 14x14 planes and narrow ones on 14x14 and 28x28 planes (<see cref="PlanarConv.Pays"/>),
    /// else the column form for 1x1 layers on large planes (<see cref="PointwiseOnLargePlane"/>), a batch's on 14x14 to
    /// 27x27 ones (<see cref="BatchedPointwise"/>) and strided ones where gathering pays (<see cref="SubsampledPays"/>),
    /// else <see cref="DirectConv"/> where it runs, else the im2col
    /// form that wastes less (<see cref="UseTransposed"/>). A forced form a layer cannot take falls back to this choice.</summary>
    public static ConvForm ChooseForm(ConvShape s, CpuSimd simd)
    {
        var form = FormOverride ?? FormRule?.Invoke(s)
                   ?? (WinogradConv.Supports(s, simd) && WinogradConv.Pays(s) ? ConvForm.Winograd : DefaultForm(s, simd));
        if (form == ConvForm.Winograd && !WinogradConv.Supports(s, simd) || form == ConvForm.Planar && !PlanarConv.Supports(s, simd))
            form = DefaultForm(s, simd);
        if (form == ConvForm.Direct && !DirectConv.Supports(s, simd))
            form = UseTransposed(s) ? ConvForm.PixelRow : ConvForm.Column;
        if (form == ConvForm.PixelRow && (s.Groups != 1 || s.K < PackedGemm.NR))
            form = ConvForm.Column;
        return form;
    }

    private static ConvForm DefaultForm(ConvShape s, CpuSimd simd) =>
        BatchedPointwise(s, simd) && PrepacksRows(s) || PrepacksOneImage(s) && ReadsRowsInPlace(s, simd) ? ConvForm.Column
        : PlanarConv.Supports(s, simd) && PlanarConv.Pays(s) ? ConvForm.Planar
        : PointwiseOnLargePlane(s) || BatchedPointwise(s, simd) || Subsampled(s) && SubsampledPays(s) ? ConvForm.Column
        : DirectConv.Supports(s, simd) && s.C >= 16 ? ConvForm.Direct
        : UseTransposed(s) ? ConvForm.PixelRow : ConvForm.Column;

    /// <summary>
    /// A 1x1, stride-1, unpadded conv on a plane of 28x28 or more: the column form reads x in place there, with
    /// no copy in and no transpose out, and measured faster than the direct form on ResNet-50's 56x56 and 28x28
    /// pointwise layers (bench profile, PROFILE_FORMS=1: 0.51-0.55 ms against 0.58-0.64 at batch 1), and than the
    /// pixel-row form, which <see cref="UseTransposed"/> would pick for 256 outputs or more (128->512 at 28x28:
    /// 0.51 ms against 0.75; inside the real call, where the column form also fuses the residual and ReLU, 0.61
    /// against 0.87, and 512->256 at 28x28 1.07 against 1.44, engine nodes of `ort --ort-profile`).
    /// </summary>
    public static bool PointwiseOnLargePlane(ConvShape s) =>
        s.IsUnpaddedPointwise && s.Groups == 1 && s.OH * s.OW >= 784;

    /// <summary>Packs W^T (CRS x K) once as the B operand of <see cref="ForwardTransposed"/> (groups = 1).</summary>
    public static float[] PackForwardWeightsTransposed(float* w, ConvShape s)
    {
        int crs = s.C * s.KH * s.KW;
        var packed = GC.AllocateUninitializedArray<float>((int)PackedGemm.PackedBLength(crs, s.K), pinned: true);
        fixed (float* p = packed)
            PackedGemm.PackB(new StridedPanels(w, 1, crs, s.K), crs, s.K, p);
        return packed;
    }

    /// <summary>
    /// <c>y = conv(x, w) + b</c> as Y^T[pixels, K] = col^T[pixels, CRS] W^T[CRS, K] (groups = 1), W^T packed by
    /// <see cref="PackForwardWeightsTransposed"/>. The im2col rows of eight output pixels are gathered from the
    /// phase buffer into A panels; the result is transposed into y with the bias. Per output the products are
    /// summed in the same order as <see cref="Forward"/>, bias last.
    /// </summary>
    public static void ForwardTransposed(float* x, float* packedWt, float* bias, float* y, ConvShape s, CpuSimd simd)
    {
        int nb = ConvPlan.ChunkImages(s, s.K);
        var full = new ConvPlan(s, nb);
        int crs = full.Crs, ohw = s.OH * s.OW, npad = PackedGemm.RoundUp(s.K, PackedGemm.NR);
        int maxPixels = nb * ohw;
        var bufArray = Scratch.Rent(full.BufferLength);
        var aArray = Scratch.Rent(PackedGemm.PackedALength(maxPixels, crs));
        var tempArray = Scratch.Rent((long)maxPixels * s.K);
        try
        {
            float* buf = Scratch.Aligned(bufArray), pa = Scratch.Aligned(aArray), temp = Scratch.Aligned(tempArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0));
                int pixels = plan.Images * ohw;
                BuildPhases(x, n0, plan, buf);
                fixed (long* ro = plan.RowOffsets(0))
                    PackPixelRows(buf, ro, plan, pixels, pa);
                PackedGemm.Run(pixels, s.K, crs, pa, new PrepackedPanels(packedWt, npad), temp, s.K, false, simd);
                ScatterTransposed(temp, plan, n0, pixels, bias, y);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(aArray);
            Scratch.Return(tempArray);
        }
    }

    /// <summary>A(i, r) = buffer[rowOffset[r] + q(i)] for output pixel i = (img, oh, ow), packed as PackA does.</summary>
    private static void PackPixelRows(float* buf, long* ro, ConvPlan plan, int pixels, float* dst)
    {
        const int MR = PackedGemm.MR;
        var s = plan.S;
        int panels = (pixels + MR - 1) / MR, mpad = panels * MR, crs = plan.Crs, ohw = s.OH * s.OW, wq = plan.Wq;
        long plane = plan.Plane;
        void Panel(int ip)
        {
            long* q = stackalloc long[MR];
            int rows = Math.Min(MR, pixels - ip * MR);
            for (int r = 0; r < MR; r++)
            {
                int i = ip * MR + Math.Min(r, rows - 1), img = i / ohw, p = i - img * ohw, oh = p / s.OW;
                q[r] = img * plane + (long)oh * wq + (p - oh * s.OW);
            }
            bool run = rows == MR && q[MR - 1] - q[0] == MR - 1;
            for (int k0 = 0; k0 < crs; k0 += PackedGemm.KC)
            {
                int kc = Math.Min(PackedGemm.KC, crs - k0);
                float* d = dst + (long)k0 * mpad + (long)ip * MR * kc;
                if (run)
                {
                    float* src = buf + q[0];
                    for (int kk = 0; kk < kc; kk++, d += MR)
                        System.Runtime.Intrinsics.Vector256.Store(
                            System.Runtime.Intrinsics.Vector256.Load(src + ro[k0 + kk]), d);
                    continue;
                }
                for (int kk = 0; kk < kc; kk++, d += MR)
                {
                    float* src = buf + ro[k0 + kk];
                    for (int r = 0; r < MR; r++)
                        d[r] = r < rows ? src[q[r]] : 0f;
                }
            }
        }
        For(panels, (long)pixels * crs, Panel);
    }

    /// <summary>y[n0+img, k, oh, ow] = temp[i, k] + b[k] for pixel i = (img, oh, ow): a transpose in 16-channel blocks.</summary>
    private static void ScatterTransposed(float* temp, ConvPlan plan, int n0, int pixels, float* bias, float* y)
    {
        var s = plan.S;
        int kAll = s.K, ohw = s.OH * s.OW;
        void Block(int kb)
        {
            int k0 = kb * 16, kn = Math.Min(16, kAll - k0);
            float* b = stackalloc float[16];
            for (int l = 0; l < kn; l++)
                b[l] = bias == null ? 0f : bias[k0 + l];
            for (int i = 0; i < pixels; i++)
            {
                int img = i / ohw, p = i - img * ohw;
                float* src = temp + (long)i * kAll + k0;
                float* dst = y + ((long)(n0 + img) * kAll + k0) * ohw + p;
                for (int l = 0; l < kn; l++)
                    dst[(long)l * ohw] = src[l] + b[l];
            }
        }
        For((kAll + 15) / 16, (long)pixels * kAll, Block);
    }

    /// <summary>The width <see cref="CopyRows"/> deinterleaves strided rows at (a copy: the same values at any width).</summary>
    private static readonly CpuSimd s_gatherSimd =
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? CpuSimd.Vector512 : CpuSimd.Vector256;

    /// <summary>Fills the phase buffer of a chunk from x (zero padding, zero slack).</summary>
    internal static void BuildPhases(float* x, int n0, ConvPlan plan, float* buf)
    {
        var s = plan.S;
        long chw = (long)s.C * s.H * s.W;
        void Channel(int c)
        {
            new Span<float>(buf + c * plan.ChannelStride, checked((int)plan.ChannelStride)).Clear();
            for (int img = 0; img < plan.Images; img++)
                CopyRows(x + (n0 + img) * chw + (long)c * s.H * s.W, buf, plan, c, img, toPhases: true);
        }
        For(s.C, (long)s.C * plan.ChannelStride, Channel);
        new Span<float>(buf + s.C * plan.ChannelStride, (int)plan.Slack).Clear();
    }

    /// <summary>
    /// Moves one (H, W) plane between x-layout and the phase buffer, row by row; each row is split into its SW
    /// column phases with a strided loop. Rows and column phases no kernel tap reads are skipped when filling
    /// (a 1x1 stride-2 conv touches one phase in four).
    /// </summary>
    private static void CopyRows(float* plane, float* buf, ConvPlan plan, int c, int img, bool toPhases)
    {
        var s = plan.S;
        int sh = s.StrideH, sw = s.StrideW;
        Span<bool> rowUsed = stackalloc bool[sh];
        Span<bool> colUsed = stackalloc bool[sw];
        for (int kh = 0; kh < s.KH; kh++)
            rowUsed[kh * s.DilationH % sh] = true;
        for (int kw = 0; kw < s.KW; kw++)
            colUsed[kw * s.DilationW % sw] = true;
        float* src = plane;
        for (int ih = 0; ih < s.H; ih++, src += s.W)
        {
            int ihp = ih + s.PadTop;
            if (toPhases && !rowUsed[ihp % sh])
                continue;
            for (int b = 0; b < sw; b++)
            {
                if (toPhases && !colUsed[b])
                    continue;
                // First column of this phase: (iw + PL) % SW == b.
                int iw0 = ((b - s.PadLeft) % sw + sw) % sw;
                if (iw0 >= s.W)
                    continue;
                float* row = buf + plan.At(c, img, ihp, iw0 + s.PadLeft);
                int count = (s.W - iw0 + sw - 1) / sw;
                if (sw == 1)
                {
                    if (toPhases)
                        new ReadOnlySpan<float>(src, s.W).CopyTo(new Span<float>(row, s.W));
                    else
                        new ReadOnlySpan<float>(row, s.W).CopyTo(new Span<float>(src, s.W));
                    continue;
                }
                float* p = src + iw0;
                if (toPhases)
                {
                    // Stride 2 (a stem's): 32 floats deinterleaved into 16 by one permute (the same values).
                    DepthwiseConv.Gather(p, sw, row, count, s.W - iw0, s_gatherSimd);
                }
                else
                {
                    for (int i = 0; i < count; i++)
                        p[i * sw] = row[i];
                }
            }
        }
    }

    /// <summary>y[n0+img, g*K/G + k, oh, ow] = temp[k, img*OH*Wq + oh*Wq + ow] (+ b), dropping the Wq - OW extra columns,
    /// then the epilogue on each row as it is written.</summary>
    private static void ScatterOutput(float* temp, ConvPlan plan, int n0, int g, float* bias, float* y,
        StoreEpilogue epilogue)
    {
        var s = plan.S;
        int kg = s.KPerGroup, ohw = s.OH * s.OW;
        void Row(int k)
        {
            float b = bias == null ? 0f : bias[g * kg + k];
            for (int img = 0; img < plan.Images; img++)
            {
                float* src = temp + (long)k * plan.Columns + (long)img * plan.ColsPerImage;
                float* dst = y + ((long)(n0 + img) * s.K + g * kg + k) * ohw;
                for (int oh = 0; oh < s.OH; oh++, src += plan.Wq, dst += s.OW)
                {
                    CpuElementwise.AddScalar(src, b, dst, s.OW);
                    if (!epilogue.IsNone)
                        epilogue.ApplyRange(y, dst - y, s.OW);
                }
            }
        }
        For(kg, (long)kg * plan.Columns, Row);
    }

    // ---- backward data ----

    /// <summary>
    /// The shape of the stride-1 backward-data convolution: dx = conv(dy, w') with w' the kernel flipped in
    /// space and transposed in channels, padded by DH*(KH-1) - PT on top (and so on). Null when a pad would be
    /// negative or the stride is not 1.
    /// </summary>
    public static ConvShape? FlippedShape(ConvShape s)
    {
        if (s.StrideH != 1 || s.StrideW != 1)
            return null;
        int ph = s.DilationH * (s.KH - 1), pw = s.DilationW * (s.KW - 1);
        int pt = ph - s.PadTop, pb = ph - s.PadBottom, pl = pw - s.PadLeft, pr = pw - s.PadRight;
        if (pt < 0 || pb < 0 || pl < 0 || pr < 0)
            return null;
        return new ConvShape(s.N, s.K, s.OH, s.OW, s.C, s.KH, s.KW, 1, 1, pt, pl, pb, pr,
            s.DilationH, s.DilationW, s.Groups);
    }

    /// <summary>w'[g*C/G + c, k, kh, kw] = w[g*K/G + k, c, KH-1-kh, KW-1-kw], packed for <see cref="Forward"/>.</summary>
    public static float[] PackFlippedWeights(float* w, ConvShape s, ConvShape flipped) =>
        PackFlipped(w, s, flipped, ConvForm.Column);

    /// <summary>The flipped, transposed kernel of <see cref="PackFlippedWeights"/>, packed for <see cref="ForwardTransposed"/>
    /// (<see cref="ConvForm.PixelRow"/>) or <see cref="DirectConv.Forward"/> (<see cref="ConvForm.Direct"/>).</summary>
    public static float[] PackFlipped(float* w, ConvShape s, ConvShape flipped, ConvForm form)
    {
        int cg = s.CPerGroup, kg = s.KPerGroup, khw = s.KH * s.KW;
        var t = GC.AllocateUninitializedArray<float>((int)s.WeightLength, pinned: true);
        fixed (float* f = t)
        {
            for (int g = 0; g < s.Groups; g++)
            for (int k = 0; k < kg; k++)
            for (int c = 0; c < cg; c++)
            {
                float* src = w + ((long)(g * kg + k) * cg + c) * khw;
                float* dst = f + ((long)(g * cg + c) * kg + k) * khw;
                for (int i = 0; i < khw; i++)
                    dst[i] = src[khw - 1 - i];
            }
            return form switch
            {
                ConvForm.Winograd => WinogradConv.PackWeights(f, flipped),
                ConvForm.Direct => DirectConv.PackWeights(f, flipped),
                ConvForm.PixelRow => PackForwardWeightsTransposed(f, flipped),
                ConvForm.Planar => PlanarConv.PackWeights(f, flipped),
                _ => PackForwardWeights(f, flipped),
            };
        }
    }

    /// <summary>Packs the general backward-data A operand: per group, W[g]^T as a CRS x (K/G) matrix.</summary>
    public static float[] PackTransposedWeights(float* w, ConvShape s)
    {
        int kg = s.KPerGroup, crs = s.CPerGroup * s.KH * s.KW;
        long per = PackedGemm.PackedALength(crs, kg);
        var packed = GC.AllocateUninitializedArray<float>((int)(per * s.Groups), pinned: true);
        fixed (float* p = packed)
        {
            for (int g = 0; g < s.Groups; g++)
                PackedGemm.PackA(w + (long)g * kg * crs, 1, crs, crs, kg, 1f, p + g * per);
        }
        return packed;
    }

    /// <summary>
    /// General backward-data (any stride): per group dcol[CRS, cols] = W^T dy, then col2im adds each row into the
    /// phase buffer as a contiguous run, and the buffer's interior is copied out to dx.
    /// </summary>
    public static void BackwardDataGeneral(float* dy, float* packedWt, float* dx, ConvShape s, CpuSimd simd)
    {
        int kg = s.KPerGroup, crs = s.CPerGroup * s.KH * s.KW;
        int nb = ConvPlan.ChunkImages(s, Math.Max(crs, s.K));
        var full = new ConvPlan(s, nb);
        long perGroupA = PackedGemm.PackedALength(crs, kg);
        var bufArray = Scratch.Rent(full.BufferLength);
        var gridArray = Scratch.Rent((long)s.K * full.Columns);
        var colArray = Scratch.Rent((long)crs * full.Columns);
        try
        {
            float* buf = Scratch.Aligned(bufArray), grid = Scratch.Aligned(gridArray), col = Scratch.Aligned(colArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0));
                GatherGrid(dy, n0, plan, grid);
                new Span<float>(buf, checked((int)plan.BufferLength)).Clear();
                for (int g = 0; g < s.Groups; g++)
                {
                    PackedGemm.Run(crs, plan.Columns, kg, packedWt + g * perGroupA,
                        new StridedPanels(grid + (long)g * kg * plan.Columns, plan.Columns, 1, plan.Columns),
                        col, plan.Columns, false, simd);
                    Col2Im(col, plan, g, buf);
                }
                ScatterPhases(buf, n0, plan, dx);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(gridArray);
            Scratch.Return(colArray);
        }
    }

    /// <summary>grid[k, img*OH*Wq + oh*Wq + ow] = dy[n0+img, k, oh, ow], zero in the extra columns.</summary>
    private static void GatherGrid(float* dy, int n0, ConvPlan plan, float* grid)
    {
        var s = plan.S;
        int ohw = s.OH * s.OW;
        void Row(int k)
        {
            for (int img = 0; img < plan.Images; img++)
            {
                float* dst = grid + (long)k * plan.Columns + (long)img * plan.ColsPerImage;
                float* src = dy + ((long)(n0 + img) * s.K + k) * ohw;
                for (int oh = 0; oh < s.OH; oh++, src += s.OW, dst += plan.Wq)
                {
                    new ReadOnlySpan<float>(src, s.OW).CopyTo(new Span<float>(dst, s.OW));
                    new Span<float>(dst + s.OW, plan.Wq - s.OW).Clear();
                }
            }
        }
        For(s.K, (long)s.K * plan.Columns, Row);
    }

    /// <summary>buffer[rowOffset[r] + q(j)] += col[r, j] over the valid columns; one task per channel (no races).</summary>
    private static void Col2Im(float* col, ConvPlan plan, int g, float* buf)
    {
        var s = plan.S;
        var offsets = plan.RowOffsets(g);
        int khw = s.KH * s.KW;
        fixed (long* ro0 = offsets)
        {
            long* ro = ro0;
            void Channel(int c)
            {
                for (int r = c * khw; r < (c + 1) * khw; r++)
                {
                    for (int img = 0; img < plan.Images; img++)
                    {
                        float* src = col + (long)r * plan.Columns + (long)img * plan.ColsPerImage;
                        float* dst = buf + ro[r] + img * plan.Plane;
                        for (int oh = 0; oh < s.OH; oh++, src += plan.Wq, dst += plan.Wq)
                            CpuElementwise.AddInPlace(src, dst, s.OW);
                    }
                }
            }
            For(s.CPerGroup, (long)plan.Crs * plan.Columns, Channel);
        }
    }

    /// <summary>dx[n0+img, c, ih, iw] = buffer at padded (ih+PT, iw+PL).</summary>
    private static void ScatterPhases(float* buf, int n0, ConvPlan plan, float* dx)
    {
        var s = plan.S;
        long chw = (long)s.C * s.H * s.W;
        void Channel(int c)
        {
            for (int img = 0; img < plan.Images; img++)
                CopyRows(dx + (n0 + img) * chw + (long)c * s.H * s.W, buf, plan, c, img, toPhases: false);
        }
        For(s.C, chw * plan.Images, Channel);
    }

    // ---- backward weights and bias ----

    /// <summary>dw[g] = sum over images of dy[g] (K/G x cols) times col^T (cols x CRS).</summary>
    public static void BackwardWeights(float* x, float* dy, float* dw, ConvShape s, CpuSimd simd)
    {
        int kg = s.KPerGroup, crs = s.CPerGroup * s.KH * s.KW;
        int nb = ConvPlan.ChunkImages(s, s.K);
        var full = new ConvPlan(s, nb);
        var bufArray = Scratch.Rent(full.BufferLength);
        var gridArray = Scratch.Rent((long)s.K * full.Columns);
        var aArray = Scratch.Rent(PackedGemm.PackedALength(kg, full.Columns));
        try
        {
            float* buf = Scratch.Aligned(bufArray), grid = Scratch.Aligned(gridArray), a = Scratch.Aligned(aArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0));
                BuildPhases(x, n0, plan, buf);
                GatherGrid(dy, n0, plan, grid);
                for (int g = 0; g < s.Groups; g++)
                {
                    PackedGemm.PackA(grid + (long)g * kg * plan.Columns, plan.Columns, 1, kg, plan.Columns, 1f, a);
                    var offsets = plan.RowOffsets(g);
                    fixed (long* ro = offsets)
                    {
                        PackedGemm.Run(kg, crs, plan.Columns, a, new ConvColumnsTransposed(buf, ro, crs, plan),
                            dw + (long)g * kg * crs, crs, n0 > 0, simd);
                    }
                }
            }
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(gridArray);
            Scratch.Return(aArray);
        }
    }

    /// <summary>db[k] = sum over n, oh, ow of dy[n, k, oh, ow].</summary>
    public static void BackwardBias(float* dy, float* db, ConvShape s)
    {
        int ohw = s.OH * s.OW;
        for (int k = 0; k < s.K; k++)
        {
            double acc = 0;
            for (int n = 0; n < s.N; n++)
                acc += CpuElementwise.Sum(dy + ((long)n * s.K + k) * ohw, ohw);
            db[k] = (float)acc;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> for 0..count-1, in parallel when <paramref name="work"/> is large, in tasks of
    /// consecutive indices of at least <see cref="MinTaskWork"/> work each while every thread still gets four tasks:
    /// each task costs two atomic updates of counters both cores write, which for an index of a few dozen elements
    /// (the global average pool of ResNet-50 at batch 8: 16,384 planes of 49) cost more than the index itself.
    /// </summary>
    internal static void For(int count, long work, Action<int> body)
    {
        if (count > 1 && work >= 1 << 17 && Environment.ProcessorCount > 1)
        {
            int per = IndicesPerTask(count, work, Environment.ProcessorCount);
            if (per == 1)
            {
                CpuParallel.For(count, body);
                return;
            }
            CpuParallel.For((count + per - 1) / per, t =>
            {
                for (int i = t * per, end = Math.Min(count, i + per); i < end; i++)
                    body(i);
            });
            return;
        }
        for (int i = 0; i < count; i++)
            body(i);
    }

    /// <summary>The least work (elements, as the callers of <see cref="For"/> count it) one task of <see cref="For"/>
    /// takes on where there are enough indices.</summary>
    internal const long MinTaskWork = 8192;

    /// <summary>Consecutive indices per task in <see cref="For"/>: enough for <see cref="MinTaskWork"/>, but no more than
    /// leaves four tasks per thread.</summary>
    internal static int IndicesPerTask(int count, long work, int threads)
    {
        long perIndex = Math.Max(1, work / count);
        int per = (int)Math.Min(count, (MinTaskWork + perIndex - 1) / perIndex);
        return Math.Max(1, Math.Min(per, count / (4 * threads)));
    }
}

/// <summary>How the CPU backend runs a forward convolution.</summary>
internal enum ConvForm
{
    /// <summary><see cref="CpuConv.Forward"/>: Y[K, pixels] with im2col columns packed per task (a 1x1 layer's read in
    /// place from x, <see cref="InPlaceRows"/>).</summary>
    Column,

    /// <summary><see cref="CpuConv.ForwardTransposed"/>: Y^T[pixels, K] with im2col rows packed once.</summary>
    PixelRow,

    /// <summary><see cref="DirectConv.Forward"/>: no im2col, the input read in place from an NHWC copy.</summary>
    Direct,

    /// <summary><see cref="WinogradConv.Forward"/>: F(4x4, 3x3) for 3x3 stride-1 one-group layers.</summary>
    Winograd,

    /// <summary><see cref="PlanarConv.Forward"/>: NCHW output rows as vectors from the phase buffer (or x in place), for few
    /// input channels, expanding 1x1 layers on 14x14 planes and narrow ones on 14x14 and 28x28 planes.</summary>
    Planar,
}
