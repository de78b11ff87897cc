using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Direct 2-D convolution (groups = 1; AVX-512, or AVX2 in 4 x 16 quarters) with no im2col: the input chunk is
/// copied once into a zero-padded NHWC buffer, and an 8-pixel x 32-channel register tile (7 pixels where that wastes
/// fewer rows, as on 7x7 planes) reads its A operand in place, broadcasting <c>x[pixel + tap, c]</c> straight from
/// that buffer (eight pixel pointers, any stride, dilation or image), while B is the weights packed once as
/// 32-channel panels in (kh, kw, c) row order. The im2col forms of <see cref="CpuConv"/> copy every input value
/// KH*KW times into packed panels before the FMAs see it; here each input value is copied once and the per-tile
/// work is all FMAs. The tile is written transposed into the NCHW output with the bias (and the residual and activation, when fused).
/// <code>buffer: [image][Hp][Wp][C]     packed W: [K/32 panel][tap = kh*KW + kw][c][32 lanes]</code>
/// Rows r = tap*C + c are processed in blocks of at most <see cref="KC"/> so a panel's block of B stays in L1
/// across the tiles of a task; partial sums of each tile live in a per-task accumulator.
/// </summary>
internal static unsafe class DirectConv
{
    private const int MR = 8;
    private const int NR = 32;

    /// <summary>Whether a tile of fewer than eight consecutive pixels, and each run of consecutive pixels of a tile
    /// across two images of a batch (a 7x7 plane's 49 pixels end inside a tile), is stored as masked vectors (else
    /// element by element); the bench's profile switches it (PROFILE_MASKED=1). The runs across images, inside the
    /// forward after a 100 ms sleep and a 64 MB sweep (alternating, batch 8, ms masked / element by element,
    /// 2026-12-07): MobileNetV2's 160->960 at 7x7 0.75-0.79 / 0.94-0.98, its 320->1280 1.79 / 2.06, node sums 41.75 /
    /// 42.77 and 53.85 / 56.91; ResNet-50's layer4 1x1s 1-5% faster, node sums 307.1 / 309.5; EfficientNet-B0 80.4 /
    /// 79.5.</summary>
    internal static bool MaskedStores { get; set; } = true;

    /// <summary>Whether the AVX-512 kernel prefetches the task's next block of weights while it computes a tile (as
    /// <see cref="PackedGemm.Prefetch"/>, measured with it: ResNet-50's layer4 convs, 4-8 MB of weights each, 0.01-0.09 ms
    /// faster at batch 1), the NHWC copy the channel rows it reads next (<see cref="PrefetchRows"/>), and the task's
    /// last block of FMAs the output and residual rows its stores will touch. ResNet-50 batch 1 (bench profile,
    /// PROFILE_PREFETCH=1, alternating call by call, sums of node medians): 46.56 against 48.62 ms after a 100 ms sleep
    /// (PROFILE_SLEEP=100), 49.19 against 52.98 back to back; the layer3 and layer4 downsamples 0.29-0.53 ms faster,
    /// layer3's 256->1024 1x1s (residual and ReLU fused) 0.05-0.25.</summary>
    internal static bool Prefetch { get; set; } = true;

    /// <summary>
    /// Whether taps adjacent in the buffer are read as one segment (the bench's profile switches it, PROFILE_MERGE=1):
    /// ResNet-18's 3->64 7x7/2 stem in this form took 1.56 ms against 1.45 for the column form (PROFILE_FORMS=1), where
    /// with 49 segments of 3 it had taken 2.21 against 1.81; inside ResNet-18's forward at batch 1 the forms chosen now
    /// (the stem stays in the column form) changed by -0.03 to +0.02 ms per layer, 15.25 against 15.29 ms in all.
    /// </summary>
    internal static bool MergeSegments { get; set; } = true;

    /// <summary>Rows of B per block: a 32-lane panel block of 256 rows is 32 KB.</summary>
    internal static int KC { get; set; } = 256;

    /// <summary>Floats of NHWC input per chunk of images (2 MB: at batch 8 the 56x56 layers ran 5-15% faster in
    /// one-image chunks that stay in L2 than in one 7 MB chunk); tests lower it to exercise the chunk loop.</summary>
    internal static long ChunkFloats { get; set; } = 1L << 19;

    /// <summary>
    /// Floats per pixel of the NHWC buffer for <paramref name="channels"/> channels: 16 more where a multiple of 512
    /// (2 KB), so a tile's eight pixel rows, read side by side (4 KB apart at 1024 channels, or 512 with stride 2),
    /// do not all fall in one L1 set. ResNet-50 batch 1 (bench profile, PROFILE_LEAN=1 PROFILE_PIXEL_PAD=1,
    /// alternating call by call): 1024->256 1x1 at 14x14 0.55-0.60 ms against 0.69-0.71 unpadded, 2048->512 1x1
    /// at 7x7 0.56-0.66 against 0.60-0.74, 512-channel 3x3 layers 4-6% faster.
    /// </summary>
    internal static int PixelStride(int channels) => PadPixels && channels % 512 == 0 ? channels + 16 : channels;

    /// <summary>Whether <see cref="PixelStride"/> pads (the bench's profile switches it to measure what it buys).</summary>
    internal static bool PadPixels { get; set; } = true;

    /// <summary>Whether this form can run the layer: one group, 512- or 256-bit vectors, AVX for the transposes.</summary>
    public static bool Supports(Kernels.ConvShape s, CpuSimd simd) =>
        s.Groups == 1 && (simd is CpuSimd.Vector512 or CpuSimd.Vector256) && Avx.IsSupported;

    /// <summary>Floats in the packed weights.</summary>
    public static long PackedLength(Kernels.ConvShape s) =>
        (long)PackedGemm.RoundUp(s.K, NR) * s.C * s.KH * s.KW;

    /// <summary>packed[panel][(kh*KW + kw)*C + c][lane] = w[panel*32 + lane, c, kh, kw], zero past K.</summary>
    public static float[] PackWeights(float* w, Kernels.ConvShape s)
    {
        int taps = s.KH * s.KW, crs = s.C * taps, panels = (s.K + NR - 1) / NR;
        var packed = GC.AllocateUninitializedArray<float>(checked((int)PackedLength(s)), pinned: true);
        fixed (float* p = packed)
        {
            for (int jp = 0; jp < panels; jp++)
            {
                float* dst = p + (long)jp * crs * NR;
                for (int tap = 0; tap < taps; tap++)
                for (int c = 0; c < s.C; c++, dst += NR)
                {
                    for (int lane = 0; lane < NR; lane++)
                    {
                        int k = jp * NR + lane;
                        dst[lane] = k < s.K ? w[((long)k * s.C + c) * taps + tap] : 0f;
                    }
                }
            }
        }
        return packed;
    }

    /// <summary>
    /// How <see cref="Forward"/> copies a layer's input (<see cref="ToPaddedNhwc"/>): the shape the copy and the tiles
    /// see, the rows and columns of x it takes one in, and the padded buffer's size. A strided 1x1 conv without padding
    /// reads one input pixel in SH*SW: only those are copied, and it runs at stride 1.
    /// </summary>
    internal static (Kernels.ConvShape Copied, int RowStep, int ColStep, int Hp, int Wp) CopyPlan(Kernels.ConvShape s)
    {
        int rowStep = 1, colStep = 1;
        if (s.IsUnpaddedStridedPointwise)
        {
            (rowStep, colStep) = (s.StrideH, s.StrideW);
            s = s with { H = s.OH, W = s.OW, StrideH = 1, StrideW = 1 };
        }
        return (s, rowStep, colStep, s.H + s.PadTop + s.PadBottom, s.W + s.PadLeft + s.PadRight);
    }

    /// <summary><c>y = conv(x, w) + b</c>, then the <paramref name="epilogue"/> (residual, activation) as it is stored;
    /// w packed by <see cref="PackWeights"/>.</summary>
    public static void Forward(float* x, float* packedW, float* bias, float* y, Kernels.ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        int srcH = s.H, srcW = s.W;
        (s, int rowStep, int colStep, int hp, int wp) = CopyPlan(s);
        long perImage = (long)hp * wp * PixelStride(s.C);
        int nb = (int)Math.Clamp(ChunkFloats / Math.Max(perImage, 1), 1, s.N);
        var tiles = Tiles.Forward(s, hp, wp);
        var bufArray = Scratch.Rent(nb * perImage);
        try
        {
            float* buf = Scratch.Aligned(bufArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                int images = Math.Min(nb, s.N - n0);
                ToPaddedNhwc(x, n0, images, s, srcH, srcW, rowStep, colStep, hp, wp, buf);
                Compute(buf, n0, images, tiles, packedW, bias, y, simd, epilogue);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
        }
    }

    /// <summary>
    /// A 1x1, stride-1, unpadded conv (groups = 1) in the channels-last layout end to end, the form a blocked graph
    /// layout would run: x is (N, H, W, C) and read in place (no copy), y is (N, H, W, K) and each tile's pixel rows
    /// of 32 channels are stored as they are (no transpose), the residual (when fused) read at the same offsets.
    /// w packed by <see cref="PackWeights"/>; the products are summed in the order of <see cref="Forward"/>, so the
    /// values equal its output transposed. The CPU graph does not use it yet: the bench's `layout` mode measures
    /// what the layout buys, and tests hold it to the NCHW form.
    /// </summary>
    internal static void ForwardChannelsLast(float* x, float* packedW, float* bias, float* y, Kernels.ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        if (!s.IsUnpaddedPointwise || !Supports(s, simd))
            throw new ArgumentException($"the channels-last form runs 1x1, stride-1, unpadded one-group convs, not {s}");
        long ohw = (long)s.OH * s.OW;
        var tiles = new Tiles(s.C, s.C, s.K, s.OH, s.OW, s.H, s.W, 1, 1, 0, 0, [0L], 0, s.K * ohw, 1, (long)s.OW * s.K, s.K,
            ChannelsLast: true);
        Compute(x, 0, s.N, tiles, packedW, bias, y, simd, epilogue);
    }

    /// <summary>
    /// <see cref="ForwardChannelsLast"/> in a blocked layout (as MLAS's NCHWc): x is (N, C/32, H, W, 32) and y
    /// (N, K/32, OH, OW, 32), so a tile's eight pixels of one 32-channel panel are 1 KB in a row of y. C and K must be
    /// multiples of 32. Images go one by one (the tile loop addresses pixels within one block of channels).
    /// </summary>
    internal static void ForwardBlocked(float* x, float* packedW, float* bias, float* y, Kernels.ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        if (!s.IsUnpaddedPointwise || s.C % NR != 0 || s.K % NR != 0 || !Supports(s, simd))
            throw new ArgumentException($"the blocked form runs 1x1, stride-1, unpadded one-group convs on multiples of 32 channels, not {s}");
        long hw = (long)s.H * s.W;
        var tiles = new Tiles(s.C, NR, s.K, s.OH, s.OW, s.H, s.W, 1, 1, 0, 0, [0L], 0, s.K * hw, 1, (long)s.OW * NR, NR,
            InBlockStride: hw * NR, OutBlockStride: hw * NR, ChannelsLast: true);
        for (int img = 0; img < s.N; img++)
            Compute(x + img * s.C * hw, img, 1, tiles, packedW, bias, y, simd, epilogue);
    }

    /// <summary>
    /// The phases of a backward-data pass (<see cref="BackwardData"/>): phase (a, b) holds the dx pixels
    /// (a + SH*q, b + SW*r), Hq x Wq of them, and the taps (kh, kw) that reach them, each reading dy at
    /// (q + Dh, r + Dw); dy is padded by the largest reach past its edges.
    /// </summary>
    private sealed record BackwardPlan(BackwardPlan.Phase[] Phases, int PadTop, int PadLeft, int PadBottom, int PadRight,
        long PackedLength)
    {
        /// <summary>One phase; <see cref="PackedOffset"/> is where its weights start in the packed array.</summary>
        public sealed record Phase(int A, int B, int Hq, int Wq, (int Kh, int Kw, int Dh, int Dw)[] Taps, long PackedOffset);

        public static BackwardPlan For(Kernels.ConvShape s)
        {
            var phases = new List<Phase>();
            int padTop = 0, padLeft = 0, padBottom = 0, padRight = 0;
            long offset = 0;
            for (int a = 0; a < s.StrideH; a++)
            for (int b = 0; b < s.StrideW; b++)
            {
                int hq = a < s.H ? (s.H - a + s.StrideH - 1) / s.StrideH : 0;
                int wq = b < s.W ? (s.W - b + s.StrideW - 1) / s.StrideW : 0;
                if (hq == 0 || wq == 0)
                    continue;
                var taps = new List<(int, int, int, int)>();
                for (int kh = 0; kh < s.KH; kh++)
                {
                    int nh = a + s.PadTop - kh * s.DilationH;
                    if (((nh % s.StrideH) + s.StrideH) % s.StrideH != 0)
                        continue;
                    for (int kw = 0; kw < s.KW; kw++)
                    {
                        int nw = b + s.PadLeft - kw * s.DilationW;
                        if (((nw % s.StrideW) + s.StrideW) % s.StrideW != 0)
                            continue;
                        int dh = nh / s.StrideH, dw = nw / s.StrideW;
                        taps.Add((kh, kw, dh, dw));
                        padTop = Math.Max(padTop, -dh);
                        padLeft = Math.Max(padLeft, -dw);
                        padBottom = Math.Max(padBottom, hq - 1 + dh - (s.OH - 1));
                        padRight = Math.Max(padRight, wq - 1 + dw - (s.OW - 1));
                    }
                }
                phases.Add(new Phase(a, b, hq, wq, [.. taps], offset));
                offset += (long)PackedGemm.RoundUp(s.C, NR) * taps.Count * s.K;
            }
            return new BackwardPlan([.. phases], padTop, padLeft, padBottom, padRight, offset);
        }
    }

    /// <summary>Whether <see cref="BackwardData"/> suits the layer: the forward form's conditions, and 32+ input
    /// channels (its output, in 32-lane panels: the 3-channel stem's dx ran 7x slower this way) and 16+ outputs.</summary>
    public static bool SupportsBackwardData(Kernels.ConvShape s, CpuSimd simd) => Supports(s, simd) && s.C >= 32 && s.K >= 16;

    /// <summary>Each phase's weights as <see cref="Compute"/> reads them: packed[phase][C/32 panel][tap][k][lane] =
    /// w[k, panel*32 + lane, kh, kw], zero past C.</summary>
    public static float[] PackBackwardWeights(float* w, Kernels.ConvShape s)
    {
        var plan = BackwardPlan.For(s);
        var packed = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(plan.PackedLength, 1)), pinned: true);
        int panels = (s.C + NR - 1) / NR, khw = s.KH * s.KW;
        fixed (float* p = packed)
        {
            foreach (var phase in plan.Phases)
            {
                float* dst = p + phase.PackedOffset;
                for (int jp = 0; jp < panels; jp++)
                foreach (var (kh, kw, _, _) in phase.Taps)
                for (int k = 0; k < s.K; k++, dst += NR)
                {
                    for (int lane = 0; lane < NR; lane++)
                    {
                        int c = jp * NR + lane;
                        dst[lane] = c < s.C ? w[((long)k * s.C + c) * khw + kh * s.KW + kw] : 0f;
                    }
                }
            }
        }
        return packed;
    }

    /// <summary>
    /// dx from dy (groups = 1, any stride, dilation and padding) as one direct conv per phase of dx:
    /// <c>dx[c, a + SH*q, b + SW*r] = sum over k and the phase's taps of w[k, c, kh, kw] dy[k, q + Dh, r + Dw]</c>,
    /// where the phase's taps are those with (a + PT - kh*DH) and (b + PL - kw*DW) divisible by the strides
    /// (Dh, Dw the quotients). dy is copied once into a padded NHWC buffer; dx is cleared first when a phase has no tap. Unlike
    /// the im2col path there is no col2im scatter and no multiplication by the zeros a strided conv skips.
    /// </summary>
    public static void BackwardData(float* dy, float* packedW, float* dx, Kernels.ConvShape s, CpuSimd simd)
    {
        var plan = BackwardPlan.For(s);
        int hp = s.OH + plan.PadTop + plan.PadBottom, wp = s.OW + plan.PadLeft + plan.PadRight;
        int ks = PixelStride(s.K);
        long perImage = (long)hp * wp * ks, plane = (long)s.H * s.W;
        int nb = (int)Math.Clamp(ChunkFloats / Math.Max(perImage, 1), 1, s.N);
        // dy as the "input" of the phase convs: K channels, OH x OW, padded by the plan.
        var sd = new Kernels.ConvShape(s.N, s.K, s.OH, s.OW, s.C, 1, 1, 1, 1,
            plan.PadTop, plan.PadLeft, plan.PadBottom, plan.PadRight, 1, 1, 1);
        var tiles = plan.Phases.Where(ph => ph.Taps.Length > 0).Select(ph => (ph.PackedOffset, Tiles: new Tiles(
            s.K, ks, s.C, ph.Hq, ph.Wq, hp, wp, 1, 1, plan.PadTop, plan.PadLeft,
            ph.Taps.Select(tp => ((long)tp.Dh * wp + tp.Dw) * ks).ToArray(),
            (long)ph.A * s.W + ph.B, s.C * plane, plane, (long)s.StrideH * s.W, s.StrideW))).ToArray();
        bool unreached = tiles.Length < plan.Phases.Length;
        var bufArray = Scratch.Rent(nb * perImage);
        try
        {
            float* buf = Scratch.Aligned(bufArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                int images = Math.Min(nb, s.N - n0);
                ToPaddedNhwc(dy, n0, images, sd, s.OH, s.OW, 1, 1, hp, wp, buf);
                if (unreached)
                    new Span<float>(dx + n0 * s.C * plane, checked((int)(images * s.C * plane))).Clear(); // phases no tap reaches
                foreach (var (offset, g) in tiles)
                    Compute(buf, n0, images, g, packedW + offset, null, dx, simd, StoreEpilogue.None);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
        }
    }

    /// <summary>
    /// buf[img][ihp][iwp][c] = x[n0+img, c, (ihp-PT)*rowStep, (iwp-PL)*colStep], zero in the padding; x's planes are
    /// srcH x srcW (the steps subsample them for strided 1x1 convs).
    /// </summary>
    internal static void ToPaddedNhwc(float* x, int n0, int images, Kernels.ConvShape s, int srcH, int srcW,
        int rowStep, int colStep, int hp, int wp, float* buf)
    {
        int c0 = s.C, cs = PixelStride(c0), h = s.H, w = s.W;
        long hw = (long)srcH * srcW, rowFloats = (long)wp * cs;
        void Row(int t)
        {
            int img = t / hp, ihp = t - img * hp;
            float* dst = buf + ((long)img * hp + ihp) * rowFloats;
            int ih = ihp - s.PadTop;
            if (ih < 0 || ih >= h)
            {
                new Span<float>(dst, checked((int)rowFloats)).Clear();
                return;
            }
            new Span<float>(dst, s.PadLeft * cs).Clear();
            new Span<float>(dst + (long)(s.PadLeft + w) * cs, s.PadRight * cs).Clear();
            float* src = x + (long)(n0 + img) * c0 * hw + (long)ih * rowStep * srcW;
            if (colStep != 1)
            {
                // Every colStep-th column of each channel's row into a compact (C, W) block (sequential writes), then
                // the same 8x8 transposes as the unstrided rows, instead of an element-wise scatter that wrote one float
                // per cache line, C floats apart (ResNet-50's 256->512 1x1/2 at batch 1 ran 1.9x slower in the direct
                // form than in the column form with it).
                float* tmp = Scratch.Panel(c0 * w);
                int span = (w - 1) * colStep; // the last value read from a channel's row, from its first
                for (int ch = 0; ch < c0; ch++)
                {
                    float* r0 = src + ch * hw;
                    float* row = tmp + (long)ch * w;
                    // Each channel's row is its own few cache lines, one plane apart, where no hardware prefetcher
                    // follows: ask for the row eight channels ahead so the misses overlap.
                    if (ch + 8 < c0)
                        PrefetchRows(r0 + 8 * hw, hw, 1, span + 1);
                    for (int iw = 0; iw < w; iw++)
                        row[iw] = r0[iw * colStep];
                }
                Transpose(tmp, w, dst + (long)s.PadLeft * cs, c0, w, cs);
                return;
            }
            Transpose(src, hw, dst + (long)s.PadLeft * cs, c0, w, cs);
        }
        if (rowStep == 1 && colStep == 1 && s.PadTop == 0 && s.PadLeft == 0 && s.PadBottom == 0 && s.PadRight == 0)
        {
            // No padding: each image is one (C, H*W) -> (H*W, C) transpose, split into 256-pixel blocks so short
            // rows (7x7, 14x14) still go through the 8x8 blocks, and those into blocks of channels where there are
            // fewer than four pixel blocks a thread (a 14x14 or 7x7 plane is one).
            int blocks = (int)((hw + 255) / 256);
            var (channelBlocks, perBlock) = CopyChannelBlocks(images * blocks, c0, Environment.ProcessorCount);
            void Block(int t)
            {
                int img = t / (blocks * channelBlocks), r = t - img * blocks * channelBlocks;
                int cb = r / blocks, c = cb * perBlock;
                long p0 = (long)(r - cb * blocks) * 256;
                Transpose(x + ((long)(n0 + img) * c0 + c) * hw + p0, hw, buf + ((long)img * hw + p0) * cs + c,
                    Math.Min(perBlock, c0 - c), (int)Math.Min(256, hw - p0), cs);
            }
            CpuConv.For(images * blocks * channelBlocks, images * hw * c0, Block);
            return;
        }
        CpuConv.For(images * hp, images * hp * rowFloats, Row);
    }

    /// <summary>
    /// How the unpadded NHWC copy splits each pixel block's channels: into blocks of a multiple of 8 channels (whole
    /// 8x8 transposes) until there are four tasks a thread, so that a 14x14 or 7x7 plane (one pixel block) is not copied
    /// by one thread while the others wait, and, numbered in channel order, each thread copies mostly the channel planes
    /// it wrote itself as the layer before (<see cref="CpuParallel.Affine"/>). (1, C) where the pixel blocks suffice.
    /// ResNet-50 batch 1 (bench profile, PROFILE_LEAN=1 PROFILE_COPY_SPLIT=1, 100 ms sleep and 64 MB sweep, alternating
    /// call by call, 2026-12-07): its 1024->256 1x1s at 14x14 0.54-0.58 ms against 0.57-0.62, the forward's node sums
    /// 0.996, 0.996 and 1.000 of the unsplit copy's; MobileNetV2, EfficientNet-B0 and ResNet-18 within 1.5% either way.
    /// Tests switch it.
    /// </summary>
    internal static (int Blocks, int PerBlock) CopyChannelBlocks(int pixelBlocks, int channels, int threads)
    {
        int want = 4 * threads;
        if (!SplitCopyChannels || pixelBlocks >= want || channels < 16)
            return (1, channels);
        int perBlock = Math.Max(8, PackedGemm.RoundUp((channels * pixelBlocks + want - 1) / want, 8));
        return ((channels + perBlock - 1) / perBlock, perBlock);
    }

    /// <summary>Whether <see cref="CopyChannelBlocks"/> splits channels (tests and the bench switch it).</summary>
    internal static bool SplitCopyChannels { get; set; } = true;

    /// <summary>dst[p*dstStride + c] = src[c*srcStride + p] for c &lt; channels, p &lt; pixels (dstStride: channels when
    /// 0): 8x8 register transposes, scalar edges.</summary>
    internal static void Transpose(float* src, long srcStride, float* dst, int channels, int pixels, int dstStride = 0)
    {
        if (dstStride == 0)
            dstStride = channels;
        int c = 0;
        for (; c <= channels - 8; c += 8)
        {
            float* r0 = src + c * srcStride;
            // The next eight channel rows, srcStride apart (a padded row of each channel: a plane apart).
            if (srcStride > pixels)
                PrefetchRows(r0 + 8 * srcStride, srcStride, Math.Min(8, channels - c - 8), pixels);
            int p = 0;
            for (; p <= pixels - 8; p += 8)
                Transpose8x8(r0 + p, srcStride, dst + (long)p * dstStride + c, dstStride);
            for (; p < pixels; p++)
            {
                float* d = dst + (long)p * dstStride + c;
                for (int j = 0; j < 8; j++)
                    d[j] = r0[j * srcStride + p];
            }
        }
        for (; c < channels; c++)
        {
            float* r0 = src + c * srcStride;
            for (int p = 0; p < pixels; p++)
                dst[(long)p * dstStride + c] = r0[p];
        }
    }

    /// <summary>Prefetches (into L1) the <paramref name="floats"/> floats of each of <paramref name="rows"/> rows
    /// <paramref name="stride"/> apart from <paramref name="first"/>, one request per cache line, when
    /// <see cref="Prefetch"/> is on. Rows a plane apart (a channel's row of an NCHW tensor) are read where
    /// the hardware prefetchers see no stream; asked for ahead, their misses overlap. ResNet-50's strided 1x1 inputs
    /// after a 64 MB sweep (bench `nhwc-copy`, medians, 2-core Zen 4 VM): 256x56x56 0.44 ms against 0.59 without,
    /// 512x28x28 0.35 against 0.62, 1024x14x14 0.14 against 0.29; a padded 128x56x56 3x3 input 0.18 against 0.20.</summary>
    private static void PrefetchRows(float* first, long stride, int rows, int floats)
    {
        if (!Prefetch || !Sse.IsSupported)
            return;
        for (int r = 0; r < rows; r++, first += stride)
        {
            for (int o = 0; o < floats; o += 16)
                Sse.Prefetch0(first + o);
            Sse.Prefetch0(first + floats - 1);
        }
    }

    /// <summary>
    /// Where the tile loop of <see cref="Compute"/> reads and writes. Output pixel (img, oh, ow) of a chunk reads the
    /// NHWC buffer (Hp x Wp pixels per image, <see cref="Cin"/> channels each, <see cref="PixelFloats"/> floats apart) at pixel (oh*StepH + ShiftH,
    /// ow*StepW + ShiftW) plus each tap's offset, and writes channel k to
    /// <c>OutBase + (n0+img)*OutImage + k*OutChannel + oh*OutRow + ow*OutCol</c>; with <see cref="ChannelsLast"/>, a
    /// tile's 32 channels of a pixel are consecutive from <see cref="OutPanel"/> (and the input's channels may come in
    /// blocks of 32, <see cref="InBlockStride"/>).
    /// </summary>
    private sealed record Tiles(int Cin, int PixelFloats, int Cout, int OutH, int OutW, int Hp, int Wp, int StepH, int StepW,
        int ShiftH, int ShiftW, long[] TapOffsets, long OutBase, long OutImage, long OutChannel, long OutRow, long OutCol,
        long InBlockStride = 0, long OutBlockStride = 0, bool ChannelsLast = false)
    {
        /// <summary>Where channel <paramref name="c"/> of a pixel is, from its channel 0: in blocks of 32 channels
        /// <see cref="InBlockStride"/> apart when that is set (a blocked layout), else consecutive.</summary>
        public long InChannel(int c) => InBlockStride == 0 ? c : c / NR * InBlockStride + c % NR;

        /// <summary>Where output channel <paramref name="k0"/> (a multiple of 32) of a channels-last or blocked
        /// output pixel is, from its channel 0.</summary>
        public long OutPanel(int k0) => OutBlockStride == 0 ? k0 : k0 / NR * OutBlockStride;

        /// <summary>The forward conv: taps (kh*DH, kw*DW) from the output pixel's window corner, NCHW output.</summary>
        public static Tiles Forward(Kernels.ConvShape s, int hp, int wp)
        {
            var taps = new long[s.KH * s.KW];
            for (int kh = 0; kh < s.KH; kh++)
            for (int kw = 0; kw < s.KW; kw++)
                taps[kh * s.KW + kw] = ((long)kh * s.DilationH * wp + (long)kw * s.DilationW) * PixelStride(s.C);
            long ohw = (long)s.OH * s.OW;
            return new Tiles(s.C, PixelStride(s.C), s.K, s.OH, s.OW, hp, wp, s.StrideH, s.StrideW, 0, 0, taps,
                0, s.K * ohw, ohw, s.OW, 1);
        }
    }

    private static void Compute(float* buf, int n0, int images, Tiles g, float* packedW, float* bias, float* y,
        CpuSimd simd, StoreEpilogue epilogue)
    {
        int taps = g.TapOffsets.Length, crs = g.Cin * taps, ohw = g.OutH * g.OutW;
        int pixels = images * ohw, panels = (g.Cout + NR - 1) / NR;
        // Pixel rows per tile: 7 where that wastes fewer rows than 8 (a 7x7 plane: 49 rows instead of 56), AVX-512 only.
        int mr = simd == CpuSimd.Vector512 && Ceil(pixels, 7) * 7 < Ceil(pixels, MR) * MR ? 7 : MR;
        int tiles = Ceil(pixels, mr);
        int kc = Math.Max(KC, 1);
        var tapOffsets = g.TapOffsets;

        // Tasks: (tile block x panel block); at most 16 tiles (128 pixels) and 4 panels each, split further until
        // every thread has several.
        int tb = Math.Min(tiles, 16), pb = Math.Min(panels, 4);
        bool parallel = 2.0 * pixels * g.Cout * crs >= PackedGemm.SerialFlops && Environment.ProcessorCount > 1;
        if (parallel)
        {
            int want = 4 * Environment.ProcessorCount;
            while (Ceil(tiles, tb) * Ceil(panels, pb) < want && pb > 1)
                pb = (pb + 1) / 2;
            while (Ceil(tiles, tb) * Ceil(panels, pb) < want && tb > 1)
                tb = (tb + 1) / 2;
        }
        int tileTasks = Ceil(tiles, tb), total = tileTasks * Ceil(panels, pb);
        float* residual = epilogue.Residual;

        // Rows [row, ...) of the packed weights' 32-channel panel.
        float* Block(int panel, int row) => packedW + ((long)panel * crs + row) * NR;

        // The output rows (and residual rows) a tile's store will touch, asked for while the task's last block of
        // FMAs runs: 32 channel rows a plane apart, which no hardware prefetcher follows, each written (a partial
        // line: read for ownership first) and with a residual read.
        void PrefetchOutputs(int tile, int jp)
        {
            int pix0 = tile * mr, last = Math.Min(pix0 + mr, pixels) - 1;
            if (g.ChannelsLast)
            {
                // Channels last: each pixel's 32 channels are two lines.
                for (int pix = pix0; pix <= last; pix++)
                {
                    long at = OutputOffset(g, n0, pix) + g.OutPanel(jp * NR);
                    Sse.Prefetch1(y + at);
                    Sse.Prefetch1(y + at + NR - 1);
                    if (residual != null)
                    {
                        Sse.Prefetch1(residual + at);
                        Sse.Prefetch1(residual + at + NR - 1);
                    }
                }
                return;
            }
            long first = OutputOffset(g, n0, pix0), end = OutputOffset(g, n0, last);
            int channels = Math.Min(NR, g.Cout - jp * NR);
            for (int l = 0; l < channels; l++)
            {
                long k = (long)(jp * NR + l) * g.OutChannel;
                Sse.Prefetch1(y + first + k);
                Sse.Prefetch1(y + end + k);
                if (residual != null)
                {
                    Sse.Prefetch1(residual + first + k);
                    Sse.Prefetch1(residual + end + k);
                }
            }
        }

        void Task(int t)
        {
            int it = t % tileTasks, jt = t / tileTasks;
            int t0 = it * tb, t1 = Math.Min(tiles, t0 + tb), p0 = jt * pb, p1 = Math.Min(panels, p0 + pb);
            int nt = t1 - t0;
            float* acc = Scratch.Tile(nt * (p1 - p0) * MR * NR);
            long* px = stackalloc long[nt * MR];
            for (int i = 0; i < nt * MR; i++)
            {
                // Tile ti's rows sit at px[ti*8 ..]; a 7-row tile repeats its last pixel in the unused eighth slot.
                int ti = i / MR, r = Math.Min(i - ti * MR, mr - 1);
                int pix = Math.Min((t0 + ti) * mr + r, pixels - 1), img = pix / ohw, p = pix - img * ohw, oh = p / g.OutW;
                int ow = p - oh * g.OutW;
                px[i] = (((long)img * g.Hp + (long)oh * g.StepH + g.ShiftH) * g.Wp + (long)ow * g.StepW + g.ShiftW) * g.PixelFloats;
            }
            // Segments per block of rows: one per tap, plus one per 32-channel block when the input is blocked.
            int maxSegments = taps + 1 + (g.InBlockStride != 0 ? kc / NR + 1 : 0);
            long* segOff = stackalloc long[maxSegments];
            int* segLen = stackalloc int[maxSegments];
            fixed (long* to = tapOffsets)
            {
                for (int r0 = 0; r0 < crs; r0 += kc)
                {
                    int r1 = Math.Min(crs, r0 + kc), nseg = 0;
                    for (int r = r0; r < r1;)
                    {
                        int tap = r / g.Cin, c = r - tap * g.Cin, len = Math.Min(g.Cin - c, r1 - r);
                        if (g.InBlockStride != 0)
                            len = Math.Min(len, NR - c % NR); // a segment ends with its block of channels
                        long off = to[tap] + g.InChannel(c);
                        if (MergeSegments && nseg > 0 && segOff[nseg - 1] + segLen[nseg - 1] == off)
                        {
                            // The tap continues the previous one in the buffer (horizontally adjacent taps of an
                            // unpadded pixel stride: a stem's 7 x 3 values per kernel row): one longer segment.
                            segLen[nseg - 1] += len;
                        }
                        else
                        {
                            segOff[nseg] = off;
                            segLen[nseg++] = len;
                        }
                        r += len;
                    }
                    for (int jp = p0; jp < p1; jp++)
                    {
                        float* b = Block(jp, r0);
                        // The block this task reads next (the next panel, or the first panel's next block of rows):
                        // the first tile's kernel prefetches it into L2 while it computes, so the weights arrive
                        // from memory under the FMAs instead of stalling the next block's first tile.
                        float* next = jp + 1 < p1 ? Block(jp + 1, r0) : r1 < crs ? Block(p0, r1) : b;
                        if (!Prefetch)
                            next = b;
                        for (int ti = 0; ti < nt; ti++)
                        {
                            float* c = acc + ((long)(jp - p0) * nt + ti) * MR * NR;
                            float* pf = ti == 0 ? next : b;
                            if (r1 == crs && Prefetch && Sse.IsSupported)
                                PrefetchOutputs(t0 + ti, jp);
                            if (simd == CpuSimd.Vector512)
                            {
                                if (mr == 7)
                                    Kernel<Rows7>(buf, px + ti * MR, segOff, segLen, nseg, b, c, r0 > 0, pf);
                                else
                                    Kernel<Rows8>(buf, px + ti * MR, segOff, segLen, nseg, b, c, r0 > 0, pf);
                                continue;
                            }
                            // AVX2: the 8 x 32 tile as four 4 x 16 quarters (eight ymm accumulators each).
                            for (int q = 0; q < 4; q++)
                            {
                                int rq = q / 2 * 4, lq = q % 2 * 16;
                                Kernel256(buf, px + ti * MR + rq, segOff, segLen, nseg, b + lq, c + rq * NR + lq, r0 > 0);
                            }
                        }
                    }
                }
            }
            for (int jp = p0; jp < p1; jp++)
            {
                for (int ti = 0; ti < nt; ti++)
                    Store(acc + ((long)(jp - p0) * nt + ti) * MR * NR, (t0 + ti) * mr, mr, jp * NR, pixels, n0, g, bias, y, epilogue);
            }
        }

        if (!parallel || total == 1)
        {
            for (int t = 0; t < total; t++)
                Task(t);
        }
        else
        {
            CpuParallel.For(total, Task);
        }
    }

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    /// <summary>The output offset of channel 0 of chunk pixel <paramref name="pix"/> (as <see cref="Store"/> computes it).</summary>
    private static long OutputOffset(Tiles g, int n0, int pix)
    {
        int ohw = g.OutH * g.OutW, img = pix / ohw, p = pix - img * ohw, oh = p / g.OutW;
        return g.OutBase + (n0 + img) * g.OutImage + oh * g.OutRow + (p - oh * g.OutW) * g.OutCol;
    }

    /// <summary>y at <see cref="Tiles"/>' output address of (pixel, k) = tile[i, k - k0] + b[k] for the tile's valid
    /// pixels i and channels k, then the <paramref name="epilogue"/> (residual at the same address, activation).</summary>
    private static void Store(float* tile, int pix0, int mr, int k0, int pixels, int n0, Tiles g, float* bias, float* y,
        StoreEpilogue epilogue)
    {
        int rows = Math.Min(mr, pixels - pix0), kn = Math.Min(NR, g.Cout - k0);
        bool plain = epilogue.IsNone;
        if (g.ChannelsLast)
        {
            // Channels last: a pixel's channels are consecutive, so each tile row goes out as it is, eight at a time.
            for (int r = 0; r < rows; r++)
            {
                long at = OutputOffset(g, n0, pix0 + r) + g.OutPanel(k0);
                for (int ch = 0; ch < kn; ch += 8)
                {
                    int left = kn - ch;
                    if (left >= 8)
                    {
                        var sum = Vector256.Load(tile + r * NR + ch);
                        if (bias != null)
                            sum += Vector256.Load(bias + k0 + ch);
                        (plain ? sum : epilogue.Apply(sum, at + ch)).Store(y + at + ch);
                        continue;
                    }
                    for (int j = ch; j < kn; j++)
                    {
                        float v = tile[r * NR + j] + (bias == null ? 0f : bias[k0 + j]);
                        y[at + j] = plain ? v : epilogue.Apply(v, at + j);
                    }
                }
            }
            return;
        }
        long* dst = stackalloc long[MR]; // output offset of each row's channel k0
        for (int r = 0; r < rows; r++)
            dst[r] = OutputOffset(g, n0, pix0 + r) + k0 * g.OutChannel;
        // Offsets rise with the pixel index, so a span of exactly rows - 1 means consecutive floats: eight go out as
        // one vector. Otherwise (a short tile on a 7x7 or 14x14 plane, a last tile, a tile across two images of a batch,
        // strided outputs) each run of consecutive offsets goes out as one masked vector (AVX-512VL) whose lane r lands
        // at dst[r] (its base shifted back by its first lane); without masked stores, element by element.
        bool full = rows == MR && dst[rows - 1] - dst[0] == rows - 1;
        int runs = 0;
        int* runStart = stackalloc int[MR + 1];
        var runMask = stackalloc Vector256<float>[MR];
        if (!full && MaskedStores && Avx512F.VL.IsSupported)
        {
            for (int r = 0; r < rows; r++)
            {
                if (r == 0 || dst[r] != dst[r - 1] + 1)
                    runStart[runs++] = r;
            }
            runStart[runs] = rows;
            var lanes = Vector256.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f);
            for (int q = 0; q < runs; q++)
                runMask[q] = Vector256.GreaterThanOrEqual(lanes, Vector256.Create((float)runStart[q]))
                             & Vector256.LessThan(lanes, Vector256.Create((float)runStart[q + 1]));
        }
        // Eight channels at a time: an 8x8 transpose turns eight pixel rows into eight channel rows, stored as vectors.
        float* t8 = stackalloc float[MR * MR];
        int l = 0;
        for (; l <= kn - 8; l += 8)
        {
            Transpose8x8(tile + l, NR, t8, MR);
            for (int j = 0; j < 8; j++)
            {
                float b = bias == null ? 0f : bias[k0 + l + j];
                float* v = t8 + j * MR;
                long ch = (l + j) * g.OutChannel;
                if (full)
                {
                    var sum = Vector256.Load(v) + Vector256.Create(b);
                    long at = dst[0] + ch;
                    (plain ? sum : epilogue.Apply(sum, at)).Store(y + at);
                    continue;
                }
                if (runs > 0)
                {
                    var sum = Vector256.Load(v) + Vector256.Create(b);
                    for (int q = 0; q < runs; q++)
                    {
                        long at = dst[runStart[q]] + ch - runStart[q];
                        Avx512F.VL.MaskStore(y + at, runMask[q], plain ? sum : epilogue.ApplyMasked(sum, at, runMask[q]));
                    }
                    continue;
                }
                for (int r = 0; r < rows; r++)
                    y[dst[r] + ch] = plain ? v[r] + b : epilogue.Apply(v[r] + b, dst[r] + ch);
            }
        }
        for (; l < kn; l++)
        {
            float b = bias == null ? 0f : bias[k0 + l];
            long ch = l * g.OutChannel;
            for (int r = 0; r < rows; r++)
                y[dst[r] + ch] = plain ? tile[r * NR + l] + b : epilogue.Apply(tile[r * NR + l] + b, dst[r] + ch);
        }
    }

    /// <summary>dst[j*dstStride + i] = src[i*srcStride + j] for i, j in 0..8 (AVX unpack/shuffle/permute).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, long srcStride, float* dst, long dstStride)
    {
        var r0 = Avx.LoadVector256(src);
        var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride);
        var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride);
        var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride);
        var r7 = Avx.LoadVector256(src + 7 * srcStride);
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// c (+)= A B for one 8 x 32 tile: A(i, r) = buf[px[i] + segOff[seg] + cc] over the block's segments, B read
    /// contiguously (32 floats per row) from <paramref name="b"/>; as many rows from <paramref name="pf"/> prefetched
    /// into L2 (the next block of weights, or B itself where nothing is to come).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<TRows>(float* buf, long* px, long* segOff, int* segLen, int nseg, float* b, float* c, bool acc,
        float* pf)
        where TRows : struct, IRowCount
    {
        // TRows.Count is a constant in each instantiation, so the JIT drops the eighth row's code for Rows7.
        bool eight = TRows.Count == 8;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int sg = 0; sg < nseg; sg++)
        {
            long off = segOff[sg];
            int len = segLen[sg];
            float* a0 = buf + px[0] + off, a1 = buf + px[1] + off, a2 = buf + px[2] + off, a3 = buf + px[3] + off;
            float* a4 = buf + px[4] + off, a5 = buf + px[5] + off, a6 = buf + px[6] + off;
            float* a7 = eight ? buf + px[7] + off : a6;
            for (int cc = 0; cc < len; cc++, b += NR, pf += NR)
            {
                Sse.Prefetch1(pf);
                Sse.Prefetch1(pf + 16);
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var x = Vector512.Create(a0[cc]);
                c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(a1[cc]);
                c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(a2[cc]);
                c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(a3[cc]);
                c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(a4[cc]);
                c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(a5[cc]);
                c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                x = Vector512.Create(a6[cc]);
                c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
                if (eight)
                {
                    x = Vector512.Create(a7[cc]);
                    c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
                    c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
                }
            }
        }
        Put(c, c00, c01, acc);
        Put(c + NR, c10, c11, acc);
        Put(c + 2 * NR, c20, c21, acc);
        Put(c + 3 * NR, c30, c31, acc);
        Put(c + 4 * NR, c40, c41, acc);
        Put(c + 5 * NR, c50, c51, acc);
        Put(c + 6 * NR, c60, c61, acc);
        if (eight)
            Put(c + 7 * NR, c70, c71, acc);
    }

    /// <summary>Pixel rows of a <see cref="Kernel{TRows}"/> tile, a constant per instantiation.</summary>
    private interface IRowCount
    {
        static abstract int Count { get; }
    }

    private readonly struct Rows8 : IRowCount
    {
        public static int Count => 8;
    }

    private readonly struct Rows7 : IRowCount
    {
        public static int Count => 7;
    }

    /// <summary>The 4 x 16 quarter of a tile for AVX2: rows px[0..4], lanes b[0..16] of each 32-float row of B.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* buf, long* px, long* segOff, int* segLen, int nseg, float* b, float* c, bool acc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int sg = 0; sg < nseg; sg++)
        {
            long off = segOff[sg];
            int len = segLen[sg];
            float* a0 = buf + px[0] + off, a1 = buf + px[1] + off, a2 = buf + px[2] + off, a3 = buf + px[3] + off;
            for (int cc = 0; cc < len; cc++, b += NR)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a0[cc]);
                c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
                x = Vector256.Create(a1[cc]);
                c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
                x = Vector256.Create(a2[cc]);
                c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
                x = Vector256.Create(a3[cc]);
                c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            }
        }
        Put(c, c00, c01, acc);
        Put(c + NR, c10, c11, acc);
        Put(c + 2 * NR, c20, c21, acc);
        Put(c + 3 * NR, c30, c31, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector256<float> v0, Vector256<float> v1, bool acc)
    {
        if (acc)
        {
            v0 += Vector256.Load(c);
            v1 += Vector256.Load(c + 8);
        }
        v0.Store(c);
        v1.Store(c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector512<float> v0, Vector512<float> v1, bool acc)
    {
        if (acc)
        {
            v0 += Vector512.Load(c);
            v1 += Vector512.Load(c + 16);
        }
        v0.Store(c);
        v1.Store(c + 16);
    }
}
