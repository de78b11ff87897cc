using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// 2-D convolution (groups = 1, AVX-512) in NCHW as it is, for layers with few input channels (a network's stem,
/// 3 -> 64 7x7 stride 2): each output row is a run of 16-pixel vectors, three output channels at a time, summed over
/// the C x KH x KW taps from the phase-split padded copy of the input (<see cref="ConvPlan"/>, where the input values
/// one tap reads along an output row are consecutive, whatever the stride), the tap's three weights broadcast from a
/// packed copy. No im2col panels, no temporary and no transpose: the bias and the epilogue are applied in registers
/// and each row is stored into y once. The im2col form copies every input value KH*KW times into packed panels and,
/// over a batch, sums into a temporary that a scatter moves into y; the direct form wants 16 or more channels.
/// Expanding 1x1 stride-1 layers on 14x14 planes and narrow ones (64 or fewer channels in or out) on 14x14 and 28x28
/// planes take it too, each image plane one row read from x in place (no phase buffer), their output stored as whole
/// contiguous rows (<see cref="Pays"/>). Taps are summed in blocks of
/// <see cref="TapBlock"/>, each added to the partial sum in y. A row ending inside a vector loads that vector's lanes
/// under a mask (x's last plane ends the tensor) and stores them under one.
/// <code>packed W: [K/3 block][tap = (c*KH + kh)*KW + kw][3 lanes]     one call: 3 channels x up to 7 x 16 pixels of a row</code>
/// </summary>
internal static unsafe class PlanarConv
{
    /// <summary>Output channels per register tile.</summary>
    private const int KB = 3;

    /// <summary>Pixels per vector.</summary>
    private const int VL = 16;

    /// <summary>Vectors of one output row per register tile: 3 x 7 accumulators, one input vector and three broadcast
    /// weights in 25 of the 32 registers (4 x 7 left no room for the broadcasts, and the JIT spilled).</summary>
    private const int MaxVectors = 7;

    /// <summary>Whether the form runs: one group, AVX-512.</summary>
    public static bool Supports(ConvShape s, CpuSimd simd) =>
        simd == CpuSimd.Vector512 && Avx512F.IsSupported && s.Groups == 1;

    /// <summary>
    /// Whether the form is chosen for a layer it supports: few input channels (3 for an RGB stem), where the im2col
    /// forms copy each input value KH*KW times and the direct form does not run, on rows of a vector or more; and 1x1
    /// stride-1 unpadded layers on planes of 128-783 pixels (14x14; larger ones read x in place in the column form)
    /// that at least double the channels, whose output, 2x-6x the input, is stored here as whole contiguous rows.
    /// Measured against the column form (bench profile, PROFILE_FORMS=1, ms planar / column, batch 1 and 8): ResNet's
    /// 3->64 7x7/2 1.21 / 1.38-1.44 and 10.1-10.5 / 11.9-12.5; MobileNetV2's 3->32 3x3/2 0.20 / 0.25 and 1.80 / 2.92;
    /// ConvNeXt-T's 3->96 4x4/4 0.32 / 0.30 and 2.85 / 3.23 (taken: rows of 56 fill 3.5 vectors). Pointwise, inside
    /// the forward after a 64 MB sweep (PROFILE_LEAN=1 PROFILE_PLANAR=1, alternating; against the direct form):
    /// ResNet-50 batch 1 256->1024 at 14x14 with its residual 0.67-0.72 / 0.76-0.95, batch 8 4.6-5.5 / 4.8-7.0 in
    /// two runs and 5.6-6.1 / 5.0-5.6 in a third (the 1024->256 ones lost 0.03-0.5 and stay direct; at a batch both now
    /// take the column form with x packed once, <see cref="CpuConv.PrepackOffLineRows"/>); MobileNetV2's
    /// and EfficientNet-B0's 14x14 expansions at batch 1 0.14-0.32 / 0.19-0.84. Also 1x1 layers with 64 or fewer
    /// input or output channels on 14x14 and 28x28 planes (<see cref="NarrowPointwise"/>), where the GEMM forms spend
    /// most of their time packing: in cache (PROFILE_FORMS=1, MobileNetV2 batch 1, ms planar / chosen before) 144->32 at
    /// 28x28 0.038 / 0.077, 32->192 0.055 / 0.110, 192->32 0.050 / 0.106, 384->64 at 14x14 0.052 / 0.106; inside the
    /// forward after a 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_PLANAR_NARROW=1, alternating) those layers
    /// 0.07-0.14 / 0.11-0.18 at batch 1 and 0.54-0.83 / 1.08-1.37 at batch 8, the whole forward's node sums 8.84 / 9.15
    /// and 9.05 / 9.47 at batch 1 and 62.1 / 62.5 at batch 8 (the other layers of the "on" calls ran 0.1-0.2 ms slower
    /// each at batch 8, for reasons not found); EfficientNet-B0 (one such layer type) 13.72 / 13.74, 12.99 / 12.69 and
    /// 91.3 / 89.7 at batch 8. A wider rule (every 1x1 of up to 576 inputs on planes of 128 pixels or more) measured
    /// 0.05-0.2 ms slower per layer on ResNet-50's 56x56 and 28x28 layers (its batch-1 forward 50.4 / 48.9) and on
    /// MobileNetV2's 56x56 and 112x112 ones, though faster in cache there.
    /// </summary>
    public static bool Pays(ConvShape s) =>
        Chosen && (s.C <= 4 && s.OW >= VL
                   || s.IsUnpaddedPointwise && s.OH * s.OW >= 128
                      && (s.OH * s.OW < 784 && s.K >= 2 * s.C || NarrowPointwise && s.OH * s.OW < 3136 && Math.Min(s.C, s.K) <= 64
                          || ReducingPointwise && s.N == 1 && s.OH * s.OW < 784 && s.K < s.C && s.K <= 192));

    /// <summary>
    /// Whether 1x1 layers of one image on 14x14 planes (128-783 pixels) that reduce the channels to at most 192 outputs
    /// take the form (the projections of MobileNetV2's and EfficientNet-B0's inverted residual blocks; ResNet-50's
    /// 1024->256 ones, faster direct, do not). In cache (PROFILE_FORMS=1, batch 1, ms planar / chosen before,
    /// 2026-12-07): 240->80 0.043 / 0.097, 480->80 0.083 / 0.125, 480->112 0.115 / 0.151, 384->96 0.075 / 0.101.
    /// Inside the forward after a 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_PLANAR_REDUCING=1,
    /// alternating): EfficientNet-B0's 480->80 layers 0.089-0.125 / 0.151-0.163, MobileNetV2's 384->96 0.114 / 0.133,
    /// the node sums 0.982-0.989 (EfficientNet-B0) and 0.989-1.020 (MobileNetV2); at batch 8 the 480->80 layers lost
    /// (0.75-0.76 / 0.69-0.71 ms), so batches keep the forms before (the bench switches it).
    /// </summary>
    internal static bool ReducingPointwise { get; set; } = true;

    /// <summary>Whether 1x1 layers with 64 or fewer input or output channels on planes of 128-3135 pixels (14x14 and
    /// 28x28) take the form (the bench switches it, PROFILE_PLANAR_NARROW=1).</summary>
    internal static bool NarrowPointwise { get; set; } = true;

    /// <summary>False: <see cref="Pays"/> never holds (the bench's profile compares the forms, PROFILE_PLANAR=1).</summary>
    internal static bool Chosen { get; set; } = true;

    /// <summary>Packs W (K x C x KH x KW) as blocks of three output channels, tap by tap; channels past K are zeros.</summary>
    public static float[] PackWeights(float* w, ConvShape s)
    {
        int crs = s.C * s.KH * s.KW, blocks = (s.K + KB - 1) / KB;
        var packed = GC.AllocateArray<float>(blocks * crs * KB, pinned: true);
        for (int k = 0; k < s.K; k++)
        {
            int kb = k / KB, lane = k % KB;
            for (int r = 0; r < crs; r++)
                packed[((long)kb * crs + r) * KB + lane] = w[(long)k * crs + r];
        }
        return packed;
    }

    /// <summary><c>y = conv(x, w) + b</c> with w packed by <see cref="PackWeights"/>, then the <paramref name="epilogue"/>
    /// on each output as it is stored. A 1x1 stride-1 unpadded layer reads x in place, each image plane one row of
    /// H*W pixels; any other goes in chunks of images whose phase buffer stays near <see cref="ConvPlan.ChunkFloats"/>.</summary>
    public static void Forward(float* x, float* packedW, float* bias, float* y, ConvShape s, StoreEpilogue epilogue)
    {
        if (s.IsUnpaddedPointwise)
        {
            Planes(x, packedW, bias, y, s, epilogue);
            return;
        }
        Chunks(x, s, ConvPlan.ChunkImages(s, 0), (buf, ro, plan, n0) => Rows(buf, ro, plan, n0, packedW, bias, y, epilogue));
    }

    /// <summary>A chunk of images in the phase buffer: <paramref name="buf"/>, the im2col row offsets <paramref name="ro"/>
    /// of <paramref name="plan"/>, the chunk's first image <paramref name="n0"/>.</summary>
    private delegate void ChunkBody(float* buf, long* ro, ConvPlan plan, int n0);

    /// <summary>The batch in chunks of <paramref name="nb"/> images, each split into the phase buffer (one rented buffer
    /// for all), then <paramref name="body"/>.</summary>
    private static void Chunks(float* x, ConvShape s, int nb, ChunkBody body)
    {
        var bufArray = Scratch.Rent(new ConvPlan(s, nb).BufferLength);
        try
        {
            float* buf = Scratch.Aligned(bufArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0));
                CpuConv.BuildPhases(x, n0, plan, buf);
                var offsets = plan.RowOffsets(0);
                fixed (long* ro = offsets)
                    body(buf, ro, plan, n0);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
        }
    }

    /// <summary>Whether <see cref="ForwardMaxPool"/> takes a conv (with the phase buffer: not 1x1) followed by
    /// max pool <paramref name="p"/> over its whole output.</summary>
    public static bool PoolFuses(ConvShape s, PoolShape p) =>
        !s.IsUnpaddedPointwise && CpuPooling.ValuesPath(p) && p.N == s.N && p.C == s.K && p.H == s.OH && p.W == s.OW
        && p.OH >= 2;

    /// <summary>
    /// <c>y = maxpool(epilogue(conv(x, w) + b))</c> for a conv this form takes with its phase buffer (a stem) and a
    /// pool <see cref="CpuPooling.MaxValues"/> takes (<see cref="PoolFuses"/>), the conv's output never stored: a task
    /// (image, band of pool rows) computes its conv rows for every channel into a ring of three rows (86 KB for
    /// ResNet's stem, in L2) and pools each output row from the ring as soon as its last input row is there, with the
    /// values and order of <see cref="CpuPooling.ValuesRow"/>. Each band owns conv rows [2a - PT, 2b - PT) of its pool
    /// rows [a, b); its last pool row also reads the next band's first conv row, so each band keeps its first row and
    /// its last two in a side buffer, and those pool rows are made after all bands. The values are the bits of
    /// <see cref="Forward"/> followed by <see cref="CpuPooling.MaxValues"/>; what is saved is the conv's output going
    /// out to memory and back (3.2 MB an image for ResNet's stem). <paramref name="epilogue"/> takes no residual.
    /// </summary>
    public static void ForwardMaxPool(float* x, float* packedW, float* bias, float* y, ConvShape s, StoreEpilogue epilogue, PoolShape p)
    {
        if (!PoolFuses(s, p) || epilogue.Residual != null)
            throw new ArgumentException($"planar conv: the max pool {p} does not fuse with the conv {s}");
        int nb = ConvPlan.ChunkImages(s, 0);
        // Bands of at least two pool rows, about eight tasks a thread over a chunk's images.
        int threads = Environment.ProcessorCount;
        int bands = Math.Clamp((8 * threads + nb - 1) / nb, 1, p.OH / 2);
        int perBand = (p.OH + bands - 1) / bands;
        bands = (p.OH + perBand - 1) / perBand;
        long rowFloats = (long)s.K * s.OW;
        // Per task: its ring (3 rows); per band: its first conv row and its last two (the side buffer).
        var ringArray = Scratch.Rent((long)nb * bands * 6 * rowFloats);
        try
        {
            float* rings = Scratch.Aligned(ringArray);
            float* sides = rings + (long)nb * bands * 3 * rowFloats;
            Chunks(x, s, nb, (buf, ro, plan, n0) =>
            {
                int images = plan.Images;
                CpuParallel.For(images * bands, t =>
                {
                    int img = t / bands, band = t - img * bands;
                    PoolBand(buf + img * plan.Plane, ro, plan, band, perBand, packedW, bias, epilogue,
                        rings + (long)t * 3 * rowFloats, sides + (long)t * 3 * rowFloats,
                        y + (long)(n0 + img) * s.K * p.OH * p.OW, p);
                });
                // Each band's last pool row: its last two conv rows and the next band's first.
                CpuParallel.For(images * (bands - 1), t =>
                {
                    int img = t / (bands - 1), band = t - img * (bands - 1);
                    int oh = (band + 1) * perBand - 1;
                    float* own = sides + ((long)img * bands + band) * 3 * rowFloats;
                    float* next = sides + ((long)img * bands + band + 1) * 3 * rowFloats;
                    float* m = stackalloc float[CpuPooling.ValuesRowScratch(p.OW)];
                    new Span<float>(m, CpuPooling.ValuesRowScratch(p.OW)).Fill(float.NegativeInfinity);
                    PoolRow(own + rowFloats, own + 2 * rowFloats, next, 3, s, p, y + (long)(n0 + img) * s.K * p.OH * p.OW, oh, m);
                });
            });
        }
        finally
        {
            Scratch.Return(ringArray);
        }
    }

    /// <summary>One band of <see cref="ForwardMaxPool"/>: pool rows [band * perBand, ...) of one image, the conv rows
    /// it owns computed into <paramref name="ring"/>; its first conv row and last two copied to <paramref name="side"/>.</summary>
    private static void PoolBand(float* src, long* ro, ConvPlan plan, int band, int perBand, float* packedW, float* bias,
        StoreEpilogue epilogue, float* ring, float* side, float* yImage, PoolShape p)
    {
        var s = plan.S;
        int blocks = (s.K + KB - 1) / KB, a = band * perBand, b = Math.Min(p.OH, a + perBand);
        bool last = b == p.OH;
        int r0 = Math.Max(0, 2 * a - p.PadTop), r1 = last ? s.OH : 2 * b - p.PadTop;
        long rowFloats = (long)s.K * s.OW;
        var acc = stackalloc Vector512<float>[KB * MaxVectors];
        int len = CpuPooling.ValuesRowScratch(p.OW);
        float* m = stackalloc float[len];
        new Span<float>(m, len).Fill(float.NegativeInfinity);
        int oh = a;
        for (int r = r0; r < r1; r++)
        {
            float* slot = ring + (r - r0) % 3 * rowFloats;
            Row(src + (long)r * plan.Wq, ro, plan.Crs, s.OW, slot, s.OW, 0, blocks, s.K, packedW, bias, epilogue, acc, false);
            if (r == r0 && band > 0)
                new Span<float>(slot, (int)rowFloats).CopyTo(new Span<float>(side, (int)rowFloats));
            if (!last && r >= r1 - 2)
                new Span<float>(slot, (int)rowFloats).CopyTo(new Span<float>(side + (r - r1 + 3) * rowFloats, (int)rowFloats));
            // Pool rows whose last input row this is (the band's last pool row, unless the band is the last, waits).
            for (; oh < b; oh++)
            {
                int ih0 = Math.Max(0, 2 * oh - p.PadTop), ih1 = Math.Min(s.OH, 2 * oh - p.PadTop + 3);
                if (ih1 - 1 != r || ih1 > r1)
                    break;
                PoolRow(ring + (ih0 - r0) % 3 * rowFloats, ring + (ih0 + 1 - r0) % 3 * rowFloats,
                    ring + (ih0 + 2 - r0) % 3 * rowFloats, ih1 - ih0, s, p, yImage, oh, m);
            }
        }
    }

    /// <summary>Pool row <paramref name="oh"/> of every channel of one image from conv rows <paramref name="ra"/>,
    /// <paramref name="rb"/>, <paramref name="rc"/> (each all channels, <c>OW</c> apart; the first <paramref name="rows"/>
    /// of them in the window), with <see cref="CpuPooling.ValuesRow"/> and its scratch <paramref name="m"/>.</summary>
    private static void PoolRow(float* ra, float* rb, float* rc, int rows, ConvShape s, PoolShape p, float* yImage, int oh,
        float* m)
    {
        for (int c = 0; c < s.K; c++)
        {
            long at = (long)c * s.OW;
            CpuPooling.ValuesRow(ra + at, rb + at, rc + at, rows, p.W, p.PadLeft, p.OW, yImage + ((long)c * p.OH + oh) * p.OW, m);
        }
    }

    /// <summary>Every output row of the chunk, in tasks of consecutive rows (each task all channels of its rows, so
    /// the input rows it reads stay in L1 across the channel blocks).</summary>
    private static void Rows(float* buf, long* ro, ConvPlan plan, int n0, float* packedW, float* bias, float* y,
        StoreEpilogue epilogue)
    {
        var s = plan.S;
        int rows = plan.Images * s.OH, blocks = (s.K + KB - 1) / KB;
        int perTask = Math.Max(1, rows / (16 * Environment.ProcessorCount));
        int tasks = (rows + perTask - 1) / perTask;
        long plane = plan.Plane, ohw = (long)s.OH * s.OW;
        bool prefetch = PrefetchOutput && s.N > 1;
        CpuParallel.For(tasks, t =>
        {
            var acc = stackalloc Vector512<float>[KB * MaxVectors];
            int end = Math.Min(rows, (t + 1) * perTask);
            for (int row = t * perTask; row < end; row++)
            {
                int img = row / s.OH, oh = row - img * s.OH;
                long yRow = (long)(n0 + img) * s.K * ohw + (long)oh * s.OW;
                Row(buf + img * plane + (long)oh * plan.Wq, ro, plan.Crs, s.OW, y + yRow, ohw, 0, blocks, s.K, packedW,
                    bias, epilogue.Shifted(yRow), acc, prefetch);
            }
        });
    }

    /// <summary>
    /// A 1x1 stride-1 unpadded layer: each image plane is one row of H*W pixels whose taps are x's channel planes, read
    /// in place (no phase buffer), in tasks of (image, range of channel blocks).
    /// </summary>
    private static void Planes(float* x, float* packedW, float* bias, float* y, ConvShape s, StoreEpilogue epilogue)
    {
        int hw = s.H * s.W, blocks = (s.K + KB - 1) / KB;
        var offsets = new long[s.C];
        for (int c = 0; c < s.C; c++)
            offsets[c] = (long)c * hw;
        int perImage = Math.Max(1, Math.Min(blocks, 16 * Environment.ProcessorCount / s.N));
        int blocksPerTask = (blocks + perImage - 1) / perImage;
        perImage = (blocks + blocksPerTask - 1) / blocksPerTask;
        fixed (long* pinned = offsets)
        {
            long* ro = pinned;
            CpuParallel.For(s.N * perImage, t =>
            {
                var acc = stackalloc Vector512<float>[KB * MaxVectors];
                int img = t / perImage, kb0 = t % perImage * blocksPerTask;
                long yImage = (long)img * s.K * hw;
                Row(x + (long)img * s.C * hw, ro, s.C, hw, y + yImage, hw, kb0, Math.Min(blocks, kb0 + blocksPerTask), s.K,
                    packedW, bias, epilogue.Shifted(yImage), acc, false);
            });
        }
    }

    /// <summary>
    /// Whether, in a batch (the phase-buffer path: stems), a tile's first block of taps prefetches the output lines its
    /// stores will write: a batch's output (25.7 MB for ResNet's stem at batch 8) comes from memory. Lean forward after a
    /// 100 ms sleep and a 64 MB sweep (PROFILE_LEAN=1 PROFILE_PLANAR_PREFETCH=1, alternating, ms on / off): ResNet-18's
    /// stem at batch 8 10.07 / 10.88, ResNet-50's 10.17 / 10.83; at batch 1 (not taken) ResNet-18's 1.45-1.54 / 1.48-1.54,
    /// ResNet-50's 1.85-1.87 / 1.63-1.69; the 1x1 planes (not taken) 0.01-0.07 slower a layer. Tests and the bench
    /// switch it.
    /// </summary>
    internal static bool PrefetchOutput { get; set; } = true;

    /// <summary>Taps per block: each output sums a block of at most this many taps in registers, then adds it to
    /// the partial sum in y (as the GEMM's blocks of k do; a 1x1 layer's blocks of input channels stay in L1 across
    /// the channel blocks of a task).</summary>
    internal static int TapBlock { get; set; } = 256;

    /// <summary>Channel blocks [<paramref name="kb0"/>, <paramref name="kb1"/>) of one output row of
    /// <paramref name="width"/> pixels: tap r of the row's pixel p is <paramref name="src"/>[<paramref name="ro"/>[r] + p];
    /// channel k's row is <paramref name="y"/> + k * <paramref name="channelStride"/>.</summary>
    private static void Row(float* src, long* ro, int taps, int width, float* y, long channelStride, int kb0, int kb1, int k,
        float* packedW, float* bias, StoreEpilogue epilogue, Vector512<float>* acc, bool prefetch)
    {
        int vectors = (width + VL - 1) / VL, groups = (vectors + MaxVectors - 1) / MaxVectors;
        // The row's vectors in groups of at most seven, as even as they go (8 vectors: 4 + 4, not 7 + 1).
        // The last vector of a row that ends inside it loads its lanes under a mask: a 1x1 layer's last channel plane
        // of the last image ends the tensor x there.
        var tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(width - (vectors - 1) * VL)).AsSingle();
        for (int gi = 0, v0 = 0; gi < groups; gi++)
        {
            int nv = (vectors - v0) / (groups - gi), ow0 = v0 * VL;
            for (int r0 = 0; r0 < taps; r0 += TapBlock)
            {
                int count = Math.Min(TapBlock, taps - r0);
                for (int kb = kb0; kb < kb1; kb++)
                {
                    int c0 = kb * KB;
                    float* w = packedW + ((long)kb * taps + r0) * KB;
                    var tile = new Tile(y + c0 * channelStride, channelStride, Math.Min(KB, k - c0),
                        bias == null ? null : bias + c0, epilogue.Shifted(c0 * channelStride), ow0,
                        Math.Min(nv * VL, width - ow0));
                    float* p = src + ow0;
                    long* rr = ro + r0;
                    if (r0 == 0 && prefetch)
                    {
                        // The tile's output lines on their way under its FMAs: they come from memory (a pooled buffer
                        // last used a pass ago), and the stores would wait on them.
                        for (int ch = 0; ch < tile.Channels; ch++)
                        {
                            float* line = tile.Y + ch * tile.ChannelStride + tile.Ow0;
                            for (int q = 0; q < tile.Width; q += VL)
                                Sse.Prefetch0(line + q);
                        }
                    }
                    if (tile.Width == nv * VL)
                        Dispatch<Whole>(nv, p, rr, count, w, acc, default);
                    else
                        Dispatch<Tail>(nv, p, rr, count, w, acc, tail);
                    Finish(tile, acc, nv, r0 == 0, r0 + count == taps);
                }
            }
            v0 += nv;
        }
    }

    /// <summary>Where a register tile goes: channel i's row at <see cref="Y"/> + i * <see cref="ChannelStride"/> +
    /// <see cref="Ow0"/>, <see cref="Width"/> pixels, the first <see cref="Channels"/> channels of three.</summary>
    private readonly struct Tile(float* y, long channelStride, int channels, float* bias, StoreEpilogue epilogue, int ow0, int width)
    {
        public readonly float* Y = y;
        public readonly long ChannelStride = channelStride;
        public readonly int Channels = channels;
        public readonly float* Bias = bias;
        public readonly StoreEpilogue Epilogue = epilogue;
        public readonly int Ow0 = ow0;
        public readonly int Width = width;
    }

    private interface IVectors
    {
        static abstract int Count { get; }
    }

    private struct V1 : IVectors { public static int Count => 1; }
    private struct V2 : IVectors { public static int Count => 2; }
    private struct V3 : IVectors { public static int Count => 3; }
    private struct V4 : IVectors { public static int Count => 4; }
    private struct V5 : IVectors { public static int Count => 5; }
    private struct V6 : IVectors { public static int Count => 6; }
    private struct V7 : IVectors { public static int Count => 7; }

    /// <summary>Whether the tile's last vector is loaded under the row's tail mask.</summary>
    private interface ILastVector
    {
        static abstract bool Masked { get; }
    }

    private struct Whole : ILastVector { public static bool Masked => false; }
    private struct Tail : ILastVector { public static bool Masked => true; }

    /// <summary>Vector <paramref name="v"/> of the tile's inputs at one tap: the last one under <paramref name="tail"/>
    /// where <typeparamref name="TLast"/> says (the lanes past the row are zeros, and nothing past them is read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load<TV, TLast>(float* p, int v, Vector512<float> tail)
        where TV : struct, IVectors
        where TLast : struct, ILastVector =>
        TLast.Masked && v == TV.Count - 1 ? Avx512F.MaskLoad(p + v * VL, tail, Vector512<float>.Zero) : Vector512.Load(p + v * VL);

    private static void Dispatch<TLast>(int nv, float* p, long* ro, int count, float* w, Vector512<float>* acc, Vector512<float> tail)
        where TLast : struct, ILastVector
    {
        switch (nv)
        {
            case 7: Kernel<V7, TLast>(p, ro, count, w, acc, tail); break;
            case 6: Kernel<V6, TLast>(p, ro, count, w, acc, tail); break;
            case 5: Kernel<V5, TLast>(p, ro, count, w, acc, tail); break;
            case 4: Kernel<V4, TLast>(p, ro, count, w, acc, tail); break;
            case 3: Kernel<V3, TLast>(p, ro, count, w, acc, tail); break;
            case 2: Kernel<V2, TLast>(p, ro, count, w, acc, tail); break;
            default: Kernel<V1, TLast>(p, ro, count, w, acc, tail); break;
        }
    }

    /// <summary>Three channels x <typeparamref name="TV"/> vectors of one output row, summed into
    /// <paramref name="acc"/> (channel by channel, <see cref="MaxVectors"/> each): per tap, each input vector loaded
    /// once and multiplied by the three broadcast weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<TV, TLast>(float* src, long* ro, int crs, float* w, Vector512<float>* acc, Vector512<float> tail)
        where TV : struct, IVectors
        where TLast : struct, ILastVector
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default, a06 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default, a16 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default, a26 = default;
        for (int r = 0; r < crs; r++, w += KB)
        {
            float* p = src + ro[r];
            var x = Load<TV, TLast>(p, 0, tail);
            a00 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a00);
            a10 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a10);
            a20 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a20);
            if (TV.Count > 1)
            {
                x = Load<TV, TLast>(p, 1, tail);
                a01 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a01);
                a11 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a11);
                a21 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a21);
            }
            if (TV.Count > 2)
            {
                x = Load<TV, TLast>(p, 2, tail);
                a02 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a02);
                a12 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a12);
                a22 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a22);
            }
            if (TV.Count > 3)
            {
                x = Load<TV, TLast>(p, 3, tail);
                a03 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a03);
                a13 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a13);
                a23 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a23);
            }
            if (TV.Count > 4)
            {
                x = Load<TV, TLast>(p, 4, tail);
                a04 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a04);
                a14 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a14);
                a24 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a24);
            }
            if (TV.Count > 5)
            {
                x = Load<TV, TLast>(p, 5, tail);
                a05 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a05);
                a15 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a15);
                a25 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a25);
            }
            if (TV.Count > 6)
            {
                x = Load<TV, TLast>(p, 6, tail);
                a06 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a06);
                a16 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a16);
                a26 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a26);
            }
        }
        // Every accumulator to memory, for Finish (with a call or a branch per channel after the loop, the JIT kept
        // some accumulators on the stack through the whole loop).
        acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03; acc[4] = a04; acc[5] = a05; acc[6] = a06;
        acc[7] = a10; acc[8] = a11; acc[9] = a12; acc[10] = a13; acc[11] = a14; acc[12] = a15; acc[13] = a16;
        acc[14] = a20; acc[15] = a21; acc[16] = a22; acc[17] = a23; acc[18] = a24; acc[19] = a25; acc[20] = a26;
    }

    /// <summary>The tile's vectors (<paramref name="acc"/>: channel by channel, <see cref="MaxVectors"/> each) after a
    /// block of taps: the bias on the <paramref name="first"/> block, else the partial sum in y added; the epilogue on the
    /// <paramref name="last"/>; stored (the last vector of the row masked when the row ends inside it).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Finish(Tile tile, Vector512<float>* acc, int count, bool first, bool last)
    {
        for (int i = 0; i < tile.Channels; i++)
        {
            var b = Vector512.Create(!first || tile.Bias == null ? 0f : tile.Bias[i]);
            long at = i * tile.ChannelStride + tile.Ow0;
            for (int v = 0; v < count; v++, at += VL)
            {
                var sum = acc[i * MaxVectors + v] + b;
                var e = tile.Epilogue;
                int lanes = tile.Width - v * VL;
                if (lanes >= VL)
                {
                    if (!first)
                        sum += Vector512.Load(tile.Y + at);
                    if (last)
                        sum = e.Apply(sum, at);
                    sum.Store(tile.Y + at);
                    continue;
                }
                var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();
                if (!first)
                    sum += Avx512F.MaskLoad(tile.Y + at, mask, Vector512<float>.Zero);
                if (last)
                    sum = e.ApplyMasked(sum, at, mask);
                Avx512F.MaskStore(tile.Y + at, mask, sum);
            }
        }
    }
}
