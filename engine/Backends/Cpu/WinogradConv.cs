using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Winograd F(4x4, 3x3) convolution for 3x3, stride-1, dilation-1, one-group layers (any channel counts and pads):
/// each 4x4 block of outputs (a tile) is computed from the 6x6 input patch under it as
/// <c>Y = A^T [ sum over c of (G g[k,c] G^T) (.) (B^T d[c] B) ] A</c>, so the 36 products per (k, c) and tile
/// replace 144 multiply-adds of the direct form (4x fewer). The element-wise products summed over channels are
/// 36 GEMMs, one per transformed position xi: <c>M_xi[K, tiles] = U_xi[K, C] V_xi[C, tiles]</c>, run by
/// <see cref="PackedGemm"/> with U packed once per weight version (<see cref="PackWeights"/>); with few tiles
/// (<see cref="TilesAsRows"/>) they run transposed, tiles as the rows of 8-row panels, and where whole tile rows fill
/// 32-wide panels with little waste (<see cref="InBlocks"/>) each block of tile rows runs all three steps in one task.
/// <code>
/// phase buffer: [c][image][padded row][column mod 4][column / 4]   (zero padding)
/// V: [xi][c][tile]   M: [xi][k][tile]   tile = (image*TH + ty)*TW + tx, rows of tiles in chunks
/// </code>
/// The input is copied once into a zero-padded buffer with each row split by column mod 4, so the patches of eight
/// horizontally adjacent tiles are eight consecutive floats: the input transform (per channel) and the output
/// transform (per output channel) run on 8-tile vectors (16-tile ones for rows of 9 to 16 tiles in blocks, with AVX-512:
/// <see cref="WideRows"/>), and the output transform writes NCHW rows directly with
/// the bias (and the residual and activation, when fused). Transforms: points 0, +-1, +-2 (Lavin and Gray 2015); the weight transform
/// is computed in double.
/// </summary>
internal static unsafe class WinogradConv
{
    private const int Xi = 36;
    private const int L = 8;

    /// <summary>Floats of V and M per chunk of tile rows (8 MB); tests lower it to exercise the chunk loop.</summary>
    internal static long ChunkFloats { get; set; } = 1L << 21;

    /// <summary>Whether this form can run the layer: 3x3, stride 1, dilation 1, one group, 256-bit vectors (AVX).</summary>
    public static bool Supports(ConvShape s, CpuSimd simd) =>
        s.KH == 3 && s.KW == 3 && s.StrideH == 1 && s.StrideW == 1 && s.DilationH == 1 && s.DilationW == 1
        && s.Groups == 1 && (simd is CpuSimd.Vector512 or CpuSimd.Vector256) && Avx.IsSupported;

    /// <summary>
    /// Whether the layer runs faster this way than in the direct form. The modelled cost is the GEMM work relative
    /// to the direct form's (36 products per 16 outputs instead of 144) divided by two efficiencies: outputs per
    /// computed tile output (a 7x7 plane computes 8x8) and tiles per 32-wide GEMM panel (a 7x7 plane at batch 1 has
    /// 4 tiles, so its GEMMs run 4 of 32 lanes). The transforms cost about (C + K) per tile against C*K for the
    /// GEMM, so few channels do not pay. The threshold is calibrated with the bench's `profile` mode
    /// (PROFILE_FORMS=1) on ResNet-18 and ResNet-50 layers at batch 1 and 8, on a loaded 2-core machine (so only
    /// clear wins and losses count): Winograd ran the 64x56x56 layers in 1.2-1.5 ms against 2.2-2.5 for the direct
    /// form, 128x28x28 in 1.0-1.3 against 2.2-2.6, 256x14x14 (tiles as rows) in 1.5 against 2.1-2.3; the 512x7x7
    /// layers at batch 1 (model 0.68) took 2.8-4.0 against 2.3, and at batch 8 (model 0.36) won.
    /// </summary>
    public static bool Pays(ConvShape s)
    {
        if (s.C < 16 || s.K < 16)
            return false;
        int th = (s.OH + 3) / 4, tw = (s.OW + 3) / 4;
        long tiles = (long)s.N * th * tw;
        double tileEff = (double)s.OH * s.OW / (16.0 * th * tw);
        double panelEff = TilesAsRows(s) ? tiles / (double)PackedGemm.RoundUp((int)tiles, PackedGemm.MR)
            : InBlocks(s) ? tiles / (double)BlockLanes(s.N * th, tw)
            : tiles >= 256 ? 1.0
            : tiles / (double)PackedGemm.RoundUp((int)tiles, PackedGemm.NR);
        double transform = 8.0 * (s.C + s.K) / ((double)s.C * s.K);
        double relative = 0.25 / (tileEff * panelEff) + transform;
        return relative < MaxRelativeCost;
    }

    /// <summary>The modelled cost relative to the direct form below which <see cref="Pays"/> says yes.</summary>
    internal static double MaxRelativeCost { get; set; } = 0.6;

    /// <summary>Layers with fewer tiles than this (over the batch) run their GEMMs with tiles as rows,
    /// <c>M_xi^T[tiles, K] = V_xi^T U_xi^T</c>: 8-row panels of tiles instead of 32-wide column panels (a 14x14 plane
    /// at batch 1 has 16 tiles, half a column panel). Measured (bench profile, PROFILE_FORMS=1, batch 1): 256x14x14
    /// 1.5 ms as rows against 2.3-3.5 as columns (direct form 2.2); 128x28x28 (49 tiles) 1.4-1.6 as rows against
    /// 1.0-1.3 as columns, where the extra packing and transpose cost more than the panel they save. Tests set it
    /// to force either orientation.</summary>
    internal static int TilesAsRowsBelow { get; set; } = 32;

    /// <summary>Whether the layer's GEMMs take tiles as rows (<see cref="TilesAsRowsBelow"/>); both orientations read the
    /// same packed weights (<see cref="PackWeights"/>).</summary>
    public static bool TilesAsRows(ConvShape s) => (long)s.N * ((s.OH + 3) / 4) * ((s.OW + 3) / 4) < TilesAsRowsBelow;

    // G (6 x 3) of F(4x4, 3x3).
    private static readonly double[,] G =
    {
        { 1.0 / 4, 0, 0 },
        { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
        { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
        { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
        { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
        { 0, 0, 1 },
    };

    /// <summary>U_xi[k, c] = (G w[k, c] G^T)[xi], packed per xi as the A operand of <see cref="PackedGemm.Run"/>: the
    /// tiles-as-columns GEMMs read it so, the tiles-as-rows ones as their B operand (<see cref="RowPanels"/>). One copy
    /// serves both orientations, so a layer run at batch sizes on both sides of <see cref="TilesAsRowsBelow"/> holds its
    /// transformed weights (four times the 3x3 kernel) once.</summary>
    public static float[] PackWeights(float* w, ConvShape s)
    {
        int k = s.K, c = s.C;
        var u = new float[(long)Xi * k * c];
        void Row(int kk)
        {
            Span<double> gw = stackalloc double[18];
            for (int cc = 0; cc < c; cc++)
            {
                float* g = w + ((long)kk * c + cc) * 9;
                for (int a = 0; a < 6; a++)
                for (int j = 0; j < 3; j++)
                    gw[a * 3 + j] = G[a, 0] * g[j] + G[a, 1] * g[3 + j] + G[a, 2] * g[6 + j];
                for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++)
                {
                    double v = gw[a * 3] * G[b, 0] + gw[a * 3 + 1] * G[b, 1] + gw[a * 3 + 2] * G[b, 2];
                    u[((long)(a * 6 + b) * k + kk) * c + cc] = (float)v;
                }
            }
        }
        CpuConv.For(k, (long)k * c * 64, Row);
        long per = PackedGemm.PackedALength(k, c);
        var packed = GC.AllocateUninitializedArray<float>(checked((int)(per * Xi)), pinned: true);
        fixed (float* pu = u, p = packed)
        {
            float* src = pu, dst = p;
            CpuConv.For(Xi, (long)Xi * k * c, xi => PackedGemm.PackA(src + (long)xi * k * c, c, 1, k, c, 1f, dst + xi * per));
        }
        return packed;
    }

    /// <summary><c>y = conv(x, w) + b</c>, then the <paramref name="epilogue"/> (residual, activation) as it is stored;
    /// w packed by <see cref="PackWeights"/>.</summary>
    public static void Forward(float* x, float* packedU, float* bias, float* y, ConvShape s, CpuSimd simd,
        StoreEpilogue epilogue = default)
    {
        int th = (s.OH + 3) / 4, tw = (s.OW + 3) / 4;
        var geo = new Geometry(s, th, tw);
        if (TilesAsRows(s))
        {
            ForwardTilesAsRows(x, packedU, bias, y, geo, simd, epilogue);
            return;
        }
        if (InBlocks(s))
        {
            ForwardBlocks(x, packedU, bias, y, geo, simd, epilogue);
            return;
        }
        int rowsPerChunk = (int)Math.Clamp(ChunkFloats / ((long)Xi * (s.C + s.K) * tw), 1, (long)s.N * th);
        long ldMax = (long)rowsPerChunk * tw + L;
        var bufArray = Scratch.Rent((long)s.C * s.N * geo.PlaneLength);
        var vArray = Scratch.Rent(Xi * XiStride(s.C, ldMax));
        var mArray = Scratch.Rent(Xi * XiStride(s.K, ldMax));
        try
        {
            float* buf = Scratch.Aligned(bufArray), v = Scratch.Aligned(vArray), m = Scratch.Aligned(mArray);
            long perU = PackedGemm.PackedALength(s.K, s.C);
            int totalRows = s.N * th;
            // In one chunk (every batch-1 layer), each channel's input transform follows its copy in the same task.
            bool oneChunk = rowsPerChunk >= totalRows;
            BuildPhases(x, buf, geo, oneChunk ? v : null, totalRows, (long)totalRows * tw + L);
            for (int r0 = 0; r0 < totalRows; r0 += rowsPerChunk)
            {
                int rows = Math.Min(rowsPerChunk, totalRows - r0);
                int tiles = rows * tw;
                long ld = tiles + L;
                if (!oneChunk)
                    InputTransform(buf, v, geo, r0, rows, ld);
                // 36 GEMMs, split into column blocks until every core has several tasks.
                int colBlocks = Math.Clamp((4 * Environment.ProcessorCount + Xi - 1) / Xi, 1, Math.Max(1, tiles / 64));
                int colStep = PackedGemm.RoundUp((tiles + colBlocks - 1) / colBlocks, PackedGemm.NR);
                colBlocks = (tiles + colStep - 1) / colStep;
                float* vv = v, mm = m;
                CpuConv.For(Xi * colBlocks, 2L * s.K * s.C * tiles * Xi / 64, task =>
                {
                    int xi = task % Xi, j0 = task / Xi * colStep, nc = Math.Min(colStep, tiles - j0);
                    PackedGemm.Run(s.K, nc, s.C, packedU + xi * perU,
                        new StridedPanels(vv + xi * XiStride(s.C, ld) + j0, ld, 1, nc),
                        mm + xi * XiStride(s.K, ld) + j0, ld, false, simd, serial: true);
                });
                OutputTransform(m, bias, y, geo, r0, rows, ld, epilogue);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(vArray);
            Scratch.Return(mArray);
        }
    }

    /// <summary>
    /// Floats from one xi's rows of V or M to the next: <paramref name="rows"/> rows of <paramref name="ld"/>, plus
    /// 64 bytes, so the 36 loads or stores of one tile's transform (often a multiple of 4 KB apart otherwise: 256
    /// channels x 24 tiles, 64 x 32 lanes) do not all fall in one L1 set. Measured on the 64x56x56 layers in blocks
    /// (batch 1, per block): input transform 0.098 -> 0.067 ms, output transform 0.084 -> 0.057 ms.
    /// </summary>
    private static long XiStride(int rows, long ld) => rows * ld + 16;

    /// <summary>Forces <see cref="InBlocks"/> (tests); null: chosen by the lanes it wastes.</summary>
    internal static bool? InBlocksOverride { get; set; }

    /// <summary>Whether the output transform stores the end of a row shorter than 32 outputs (all of a 28- or 14-wide
    /// plane's rows, the last 24 of a 56-wide one) as vectors with the last one masked (AVX-512VL), rather than one
    /// output and one epilogue at a time, and the input's split into column phases takes a row's last columns (fewer
    /// than 32) by masked loads, permutes and masked stores rather than one at a time. Tests and the bench switch it.</summary>
    internal static bool MaskedRowEnds { get; set; } = true;

    /// <summary>
    /// Whether the layer's tile-column GEMMs run in blocks of whole tile rows (<see cref="ForwardBlocks"/>): each row
    /// takes <c>TW</c> rounded up to 8 lanes, so it pays where that wastes at most a fifth (planes of 28x28 and
    /// 56x56 waste an eighth, as 32-wide panels of the chunked form do there); 14x14 and 7x7 planes would waste half
    /// and more, and run chunked (or with tiles as rows). Measured on ResNet-18 (bench profile, PROFILE_LEAN=1
    /// PROFILE_WINOGRAD_BLOCKS=1, the two alternating call by call, batch 1): the 64x56x56 layers 0.79-0.94 ms in
    /// blocks against 0.83-1.08 chunked, the 128x28x28 layers 0.76-0.81 against 0.83-0.88.
    /// </summary>
    public static bool InBlocks(ConvShape s)
    {
        int tw = (s.OW + 3) / 4;
        return InBlocksOverride ?? 5 * tw >= 4 * PackedGemm.RoundUp(tw, L);
    }

    /// <summary>GEMM columns <see cref="ForwardBlocks"/> computes for <paramref name="tileRows"/> rows of
    /// <paramref name="tw"/> tiles.</summary>
    private static long BlockLanes(int tileRows, int tw)
    {
        int rowLanes = PackedGemm.RoundUp(tw, L), blockRows = BlockRows(rowLanes);
        return (long)(tileRows + blockRows - 1) / blockRows * blockRows * rowLanes;
    }

    /// <summary>Tile rows per block of <see cref="ForwardBlocks"/>: the fewest whose lanes (<paramref name="rowLanes"/>
    /// each) fill whole 32-wide panels.</summary>
    private static int BlockRows(int rowLanes)
    {
        int rows = 1;
        while (rows * rowLanes % PackedGemm.NR != 0)
            rows++;
        return rows;
    }

    /// <summary>
    /// <see cref="Forward"/> with each block of tile rows carried through all three steps by one task, so its
    /// transformed input and products stay in L2 instead of making three passes over layer-sized buffers: the
    /// input rows of one tile row are split into column phases in a small buffer, transformed into V already laid
    /// out as the GEMM's packed B panels (row rr's tiles at lanes rr*P.., P = TW rounded up to 8), the 36 GEMMs
    /// read those panels in place, and the output transform reads M from the same task's buffer.
    /// <code>V block: [xi][depth block of C][32-lane panel][c][lane]   M block: [xi][k][lane]</code>
    /// </summary>
    private static void ForwardBlocks(float* x, float* packedU, float* bias, float* y, Geometry geo, CpuSimd simd,
        StoreEpilogue epilogue)
    {
        var s = geo.S;
        int rowLanes = geo.J - 1, blockRows = BlockRows(rowLanes), lanes = blockRows * rowLanes;
        // Rows of 9 to 16 tiles (56x56 planes) in 16-lane vectors where AVX-512 runs them.
        bool wide = WideRows && rowLanes == 2 * L && simd == CpuSimd.Vector512 && Avx512F.IsSupported;
        int totalRows = s.N * geo.TH, blocks = (totalRows + blockRows - 1) / blockRows;
        long perU = PackedGemm.PackedALength(s.K, s.C);
        long vStride = XiStride(s.C, lanes), mStride = XiStride(s.K, lanes);
        long vLength = Xi * vStride, mLength = Xi * mStride;
        CpuConv.For(blocks, 2L * s.K * s.C * lanes * blocks * Xi / 64, block =>
        {
            var vArray = Scratch.Rent(vLength + 6 * geo.RowLength + L);
            var mArray = Scratch.Rent(mLength);
            try
            {
                float* v = Scratch.Aligned(vArray), m = Scratch.Aligned(mArray), phases = v + vLength;
                int r0 = block * blockRows, rows = Math.Min(blockRows, totalRows - r0);
                var t = stackalloc Vector256<float>[Xi];
                var o = stackalloc Vector256<float>[6];
                var t16 = stackalloc Vector512<float>[Xi];
                var o16 = stackalloc Vector512<float>[16];
                for (int c = 0; c < s.C; c++)
                {
                    if (Prefetch && c + PrefetchAhead < s.C)
                        PrefetchInputRows(x, geo, c + PrefetchAhead, r0, rows);
                    int k0 = c / PackedGemm.KC * PackedGemm.KC, kc = Math.Min(PackedGemm.KC, s.C - k0);
                    float* dst = v + (long)k0 * lanes + (c - k0) * PackedGemm.NR;
                    long panelStride = (long)kc * PackedGemm.NR;
                    for (int rr = 0; rr < blockRows; rr++)
                    {
                        if (rr < rows)
                        {
                            PatchRows(x, phases, geo, c, r0 + rr);
                            if (wide)
                                InputRow16(phases, dst, vStride, panelStride, rr * rowLanes, geo, t16, o16);
                            else
                                InputRow(phases, dst, vStride, panelStride, rr * rowLanes, geo, t, o);
                            continue;
                        }
                        // Past the last tile row: zero lanes, so the GEMM reads no stale floats.
                        for (int xi = 0; xi < Xi; xi++)
                        for (int t0 = 0; t0 < rowLanes; t0 += L)
                        {
                            int lane = rr * rowLanes + t0;
                            Vector256<float>.Zero.Store(dst + xi * vStride + (lane >> 5) * panelStride + (lane & 31));
                        }
                    }
                }
                for (int xi = 0; xi < Xi; xi++)
                {
                    PackedGemm.Run(s.K, lanes, s.C, packedU + xi * perU, new PrepackedPanels(v + xi * vStride, lanes),
                        m + xi * mStride, lanes, false, simd, serial: true);
                }
                var tt = stackalloc Vector256<float>[24];
                var oo = stackalloc Vector256<float>[16];
                var col = stackalloc Vector256<float>[4];
                var spill = stackalloc float[4 * L];
                var col16 = stackalloc Vector512<float>[4];
                for (int k = 0; k < s.K; k++)
                {
                    if (Prefetch && k + PrefetchAhead < s.K)
                        PrefetchOutputRows(y, epilogue.Residual, geo, k + PrefetchAhead, r0, rows);
                    var b = Vector256.Create(bias == null ? 0f : bias[k]);
                    for (int rr = 0; rr < rows; rr++)
                    {
                        if (wide)
                        {
                            OutputRow16(m + (long)k * lanes + rr * rowLanes, mStride, b, y, geo, k, r0 + rr, epilogue,
                                t16, o16, col16, oo, col, spill);
                            continue;
                        }
                        OutputRow(m + (long)k * lanes + rr * rowLanes, mStride, b, y, geo, k, r0 + rr, epilogue,
                            tt, oo, col, spill);
                    }
                }
            }
            finally
            {
                Scratch.Return(vArray);
                Scratch.Return(mArray);
            }
        });
    }

    /// <summary>
    /// Whether <see cref="ForwardBlocks"/> prefetches the input rows of the channel it transforms
    /// <see cref="PrefetchAhead"/> channels later, and the output (and residual) rows of the output channel it stores
    /// that many later: each channel's rows are a plane apart, where no hardware prefetcher follows, so without it
    /// every row splitting and output store waits on L2 or L3 (bench/perf-breakdown.sh on ResNet-18 batch 8: SplitRow
    /// 11.5% and OutputRow 13.9% of the samples without it, 5.9% and 10.2% with it). Measured with the bench's profile
    /// (PROFILE_LEAN=1 PROFILE_WINOGRAD_PREFETCH=1, 100 ms sleep and 64 MB sweep, the two alternating call by call, sums
    /// of node medians with / without, Zen 5 VM, 2026-12-08): ResNet-18 batch 8 0.870, 0.877, 0.883 (its 56x56 and 28x28
    /// 3x3 layers 0.59-0.75), batch 1 0.952, 0.953, 0.960; ResNet-50 batch 1 and 8 0.979 and 0.980 (its 56x56 3x3s
    /// 0.80-0.86). Two channels ahead: one gave the same (0.877, 0.960), four less (0.910, 0.980).
    /// </summary>
    internal static bool Prefetch { get; set; } = true;

    /// <summary>Whether <see cref="ForwardBlocks"/> transforms rows of 9 to 16 tiles (56x56 planes) in 16-lane vectors
    /// (<see cref="InputRow16"/>, <see cref="OutputRow16"/>) with AVX-512; tests and the bench switch it. Bench profile
    /// (PROFILE_LEAN=1 PROFILE_WINOGRAD_WIDE=1, 100 ms sleep and 64 MB sweep, alternating call by call, Zen 5 VM,
    /// 2026-12-08, two runs): ResNet-18's 64x56x56 layers 0.82-0.98 of the 8-lane transforms' time every time, its
    /// forward 0.969 and 1.009 (batch 8), 0.974 and 0.952 (batch 1), ResNet-50's 0.985 and 0.989; the `ort` mode's
    /// three-way A/B saw ResNet-18's ratio move within its noise (batch 1 1.203 / 1.151, 1.087 / 1.106, 1.058 / 1.014).</summary>
    internal static bool WideRows { get; set; } = true;

    /// <summary>Channels ahead that <see cref="Prefetch"/> asks for.</summary>
    internal static int PrefetchAhead { get; set; } = 2;

    /// <summary>Prefetches (into L1) the rows of channel <paramref name="c"/> under tile rows r0..r0+rows (image-major).</summary>
    private static void PrefetchInputRows(float* x, Geometry geo, int c, int r0, int rows)
    {
        var s = geo.S;
        for (int gr = r0; gr < r0 + rows; gr++)
        {
            int img = gr / geo.TH, ih0 = 4 * (gr - img * geo.TH) - s.PadTop;
            // The patch rows this tile row shares with the next tile row of the same image are asked for once.
            int last = gr + 1 < r0 + rows && (gr + 1) / geo.TH == img ? 4 : 6;
            float* plane = x + ((long)img * s.C + c) * s.H * s.W;
            for (int i = 0; i < last; i++)
            {
                int ih = ih0 + i;
                if (ih >= 0 && ih < s.H)
                    PrefetchLine(plane + (long)ih * s.W, s.W);
            }
        }
    }

    /// <summary>Prefetches the output rows (and the residual's) of output channel <paramref name="k"/> under tile rows
    /// r0..r0+rows.</summary>
    private static void PrefetchOutputRows(float* y, float* residual, Geometry geo, int k, int r0, int rows)
    {
        var s = geo.S;
        for (int gr = r0; gr < r0 + rows; gr++)
        {
            int img = gr / geo.TH, ty = gr - img * geo.TH, outRows = Math.Min(4, s.OH - 4 * ty);
            long at = ((long)img * s.K + k) * s.OH * s.OW + 4L * ty * s.OW;
            for (int i = 0; i < outRows; i++, at += s.OW)
            {
                PrefetchLine(y + at, s.OW);
                if (residual != null)
                    PrefetchLine(residual + at, s.OW);
            }
        }
    }

    /// <summary>One prefetch per cache line of <paramref name="floats"/> floats from <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLine(float* p, int floats)
    {
        for (int o = 0; o < floats; o += 16)
            Sse.Prefetch0(p + o);
        Sse.Prefetch0(p + floats - 1);
    }

    /// <summary>
    /// <see cref="Forward"/> for few tiles, in one chunk: per xi, V_xi^T (tiles x C) is packed as the A operand, the
    /// product with U_xi^T (U's A packing read as B, <see cref="RowPanels"/>) lands in a (tiles x K) temporary, and that
    /// is transposed into M's layout.
    /// </summary>
    private static void ForwardTilesAsRows(float* x, float* packedU, float* bias, float* y, Geometry geo, CpuSimd simd,
        StoreEpilogue epilogue)
    {
        var s = geo.S;
        int tiles = s.N * geo.TH * geo.TW;
        long ld = tiles + L, perA = PackedGemm.PackedALength(tiles, s.C), perU = PackedGemm.PackedALength(s.K, s.C);
        var bufArray = Scratch.Rent((long)s.C * s.N * geo.PlaneLength);
        var vArray = Scratch.Rent(Xi * XiStride(s.C, ld));
        var mArray = Scratch.Rent(Xi * XiStride(s.K, ld));
        var aArray = Scratch.Rent(Xi * perA);
        var tArray = Scratch.Rent((long)Xi * tiles * s.K);
        try
        {
            float* buf = Scratch.Aligned(bufArray), v = Scratch.Aligned(vArray), m = Scratch.Aligned(mArray);
            float* a = Scratch.Aligned(aArray), t = Scratch.Aligned(tArray);
            BuildPhases(x, buf, geo, v, s.N * geo.TH, ld);
            CpuConv.For(Xi, 2L * s.K * s.C * tiles * Xi / 64, xi =>
            {
                float* ax = a + xi * perA, tx = t + (long)xi * tiles * s.K, mx = m + xi * XiStride(s.K, ld);
                PackedGemm.PackA(v + xi * XiStride(s.C, ld), 1, ld, tiles, s.C, 1f, ax);
                PackedGemm.Run(tiles, s.K, s.C, ax, new RowPanels(packedU + xi * perU, s.K), tx, s.K, false, simd,
                    serial: true);
                TransposeInto(tx, tiles, s.K, mx, ld);
            });
            OutputTransform(m, bias, y, geo, 0, s.N * geo.TH, ld, epilogue);
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(vArray);
            Scratch.Return(mArray);
            Scratch.Return(aArray);
            Scratch.Return(tArray);
        }
    }

    /// <summary>dst[k*ld + i] = src[i*cols + k] for i &lt; rows, k &lt; cols: 8x8 register transposes, scalar edges.</summary>
    private static void TransposeInto(float* src, int rows, int cols, float* dst, long ld)
    {
        int i0 = 0;
        for (; i0 <= rows - 8; i0 += 8)
        {
            int k0 = 0;
            for (; k0 <= cols - 8; k0 += 8)
                DirectConv.Transpose8x8(src + (long)i0 * cols + k0, cols, dst + k0 * ld + i0, ld);
            for (; k0 < cols; k0++)
            {
                for (int i = i0; i < i0 + 8; i++)
                    dst[k0 * ld + i] = src[(long)i * cols + k0];
            }
        }
        for (; i0 < rows; i0++)
        {
            for (int k = 0; k < cols; k++)
                dst[k * ld + i0] = src[(long)i0 * cols + k];
        }
    }

    /// <summary>The layer and its tiling: TH x TW tiles per image; the phase buffer holds, per channel and image,
    /// 4*TH + 2 padded rows, each as 4 column phases of <see cref="J"/> floats.</summary>
    private readonly struct Geometry(ConvShape s, int th, int tw)
    {
        public readonly ConvShape S = s;
        public readonly int TH = th, TW = tw;

        /// <summary>Floats per column phase: TW rounded up to whole vectors, plus one (the 5th and 6th patch columns).</summary>
        public readonly int J = PackedGemm.RoundUp(tw, L) + 1;

        public readonly int Rows = 4 * th + 2;

        public long RowLength => 4L * J;

        public long PlaneLength => Rows * RowLength;
    }

    /// <summary>buffer[c][img][ihp][iwp % 4][iwp / 4] = x[img, c, ihp - PT, iwp - PL], zero outside x; with
    /// <paramref name="v"/>, each channel's task then runs its <see cref="InputTransform"/> of tile rows 0..rows while
    /// its planes are still in cache (one parallel loop instead of two).</summary>
    private static void BuildPhases(float* x, float* buf, Geometry geo, float* v = null, int rows = 0, long ld = 0)
    {
        var s = geo.S;
        long plane = (long)s.H * s.W;
        void Channel(int c)
        {
            for (int img = 0; img < s.N; img++)
            {
                float* dst = buf + ((long)c * s.N + img) * geo.PlaneLength;
                new Span<float>(dst, checked((int)geo.PlaneLength)).Clear();
                float* src = x + ((long)img * s.C + c) * plane;
                int rowsIn = Math.Min(s.H, geo.Rows - s.PadTop);
                for (int ih = 0; ih < rowsIn; ih++, src += s.W)
                    SplitRow(src, dst + (ih + s.PadTop) * geo.RowLength, geo);
            }
            if (v != null)
                InputChannel(buf, v, geo, 0, rows, ld, c);
        }
        long work = (long)s.C * s.N * geo.PlaneLength + (v == null ? 0 : (long)Xi * s.C * rows * geo.TW);
        CpuConv.For(s.C, work, Channel);
    }

    /// <summary>row[p][(iw + PL) / 4] = src[iw] for (iw + PL) % 4 == p: one input row split into its column phases
    /// (the row's padding left as it was).</summary>
    private static void SplitRow(float* src, float* row, Geometry geo)
    {
        var s = geo.S;
        int pl = s.PadLeft, j = geo.J;
        // Padded column q = iw + PL goes to phase q % 4, slot q / 4.
        int q = pl, end = pl + Math.Min(s.W, 4 * j - pl);
        if (Avx512F.IsSupported)
        {
            // Up to a multiple of 4 one by one, then 32 columns at a time: two permutes give the four phases' 8 slots.
            for (; q < end && (q & 3) != 0; q++)
                row[(q & 3) * j + (q >> 2)] = src[q - pl];
            var even = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
            var odd = Vector512.Create(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
            for (; q + 32 <= end; q += 32)
            {
                var lo = Vector512.Load(src + q - pl);
                var hi = Vector512.Load(src + q - pl + 16);
                var p01 = Avx512F.PermuteVar16x32x2(lo, even, hi);
                var p23 = Avx512F.PermuteVar16x32x2(lo, odd, hi);
                float* d = row + (q >> 2);
                p01.GetLower().Store(d);
                p01.GetUpper().Store(d + j);
                p23.GetLower().Store(d + 2 * j);
                p23.GetUpper().Store(d + 3 * j);
            }
            if (q < end && MaskedRowEnds && Avx512F.VL.IsSupported)
            {
                // The last columns (all of a 28- or 14-wide row) the same way under masks: columns loaded only up to
                // the row's end, and phase p's slots stored only for the columns it has.
                int n = end - q;
                var lanes = Vector512<int>.Indices;
                var lo = Avx512F.MaskLoad(src + q - pl, Vector512.LessThan(lanes, Vector512.Create(n)).AsSingle(), Vector512<float>.Zero);
                var hi = Avx512F.MaskLoad(src + q - pl + 16, Vector512.LessThan(lanes, Vector512.Create(n - 16)).AsSingle(), Vector512<float>.Zero);
                var p01 = Avx512F.PermuteVar16x32x2(lo, even, hi);
                var p23 = Avx512F.PermuteVar16x32x2(lo, odd, hi);
                float* d = row + (q >> 2);
                var slots = Vector256.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f);
                // Phase p holds columns q + 4s + p for s < (n - p + 3) / 4.
                Avx512F.VL.MaskStore(d, Vector256.LessThan(slots, Vector256.Create((float)((n + 3) >> 2))), p01.GetLower());
                Avx512F.VL.MaskStore(d + j, Vector256.LessThan(slots, Vector256.Create((float)((n + 2) >> 2))), p01.GetUpper());
                Avx512F.VL.MaskStore(d + 2 * j, Vector256.LessThan(slots, Vector256.Create((float)((n + 1) >> 2))), p23.GetLower());
                Avx512F.VL.MaskStore(d + 3 * j, Vector256.LessThan(slots, Vector256.Create((float)(n >> 2))), p23.GetUpper());
                q = end;
            }
        }
        for (; q < end; q++)
            row[(q & 3) * j + (q >> 2)] = src[q - pl];
    }

    /// <summary>The six phase-split input rows under tile row <paramref name="gr"/> (image-major) of channel
    /// <paramref name="c"/>, zero padded, laid out as one tile row of the phase buffer.</summary>
    private static void PatchRows(float* x, float* rows, Geometry geo, int c, int gr)
    {
        var s = geo.S;
        int img = gr / geo.TH, ih0 = 4 * (gr - img * geo.TH) - s.PadTop;
        new Span<float>(rows, checked((int)(6 * geo.RowLength))).Clear();
        float* plane = x + ((long)img * s.C + c) * s.H * s.W;
        for (int i = 0; i < 6; i++)
        {
            int ih = ih0 + i;
            if (ih >= 0 && ih < s.H)
                SplitRow(plane + (long)ih * s.W, rows + i * geo.RowLength, geo);
        }
    }

    /// <summary>V[xi][c][t] = (B^T d B)[xi] for the 6x6 patch d of tile t, per channel (<see cref="InputChannel"/>).</summary>
    private static void InputTransform(float* buf, float* v, Geometry geo, int r0, int rows, long ld) =>
        CpuConv.For(geo.S.C, (long)Xi * geo.S.C * rows * geo.TW, c => InputChannel(buf, v, geo, r0, rows, ld, c));

    /// <summary>V[xi][c][t] = (B^T d B)[xi] for channel c and the 6x6 patch d of each tile t in tile rows r0..r0+rows,
    /// eight tiles of a row at a time; the last vector of a row spills into the next row's first tiles (written again
    /// after) or the slack past the last.</summary>
    private static void InputChannel(float* buf, float* v, Geometry geo, int r0, int rows, long ld, int c)
    {
        var s = geo.S;
        var t = stackalloc Vector256<float>[Xi];
        var o = stackalloc Vector256<float>[6];
        for (int r = 0; r < rows; r++)
        {
            int gr = r0 + r, img = gr / geo.TH, ty = gr - img * geo.TH;
            float* src = buf + ((long)c * s.N + img) * geo.PlaneLength + 4L * ty * geo.RowLength;
            InputRow(src, v + c * ld, XiStride(s.C, ld), PackedGemm.NR, r * geo.TW, geo, t, o);
        }
    }

    /// <summary>
    /// The transformed patches of one tile row, eight tiles at a time: tile t0 + l goes to lane
    /// <c>laneBase + t0 + l</c> of each xi's row, lane q stored at <c>dst + xi*xiStride + (q / 32) * panelStride + q % 32</c>
    /// (plain rows: <paramref name="panelStride"/> 32; packed panels: depth x 32).
    /// </summary>
    private static void InputRow(float* src, float* dst, long xiStride, long panelStride, int laneBase, Geometry geo,
        Vector256<float>* t, Vector256<float>* o)
    {
        for (int t0 = 0; t0 < geo.TW; t0 += L)
        {
            // Rows: t[i][b] = (d[i] B)[b].
            for (int i = 0; i < 6; i++)
            {
                float* p = src + i * geo.RowLength + t0;
                int j = geo.J;
                BT<Lanes8, Vector256<float>>(Vector256.Load(p), Vector256.Load(p + j), Vector256.Load(p + 2 * j), Vector256.Load(p + 3 * j),
                    Vector256.Load(p + 1), Vector256.Load(p + j + 1), t + i * 6);
            }
            int lane = laneBase + t0;
            float* at = dst + (lane >> 5) * panelStride + (lane & 31);
            // Columns: V[a][b] = (B^T t)[a][b].
            for (int b = 0; b < 6; b++)
            {
                BT<Lanes8, Vector256<float>>(t[b], t[6 + b], t[12 + b], t[18 + b], t[24 + b], t[30 + b], o);
                for (int a = 0; a < 6; a++)
                    Vector256.Store(o[a], at + (a * 6 + b) * xiStride);
            }
        }
    }

    /// <summary>
    /// <see cref="InputRow"/> for a tile row of 9 to 16 tiles (a 56x56 plane's 14) with AVX-512: all its tiles in one
    /// 16-lane vector, so each transform is half the instructions of two 8-lane ones; the lanes go to
    /// <c>laneBase..laneBase+16</c>, which must lie in one 32-wide panel (<paramref name="laneBase"/> a multiple of 16).
    /// The phase rows hold 17 floats (<see cref="Geometry.J"/>), so the shifted loads stay inside them.
    /// </summary>
    private static void InputRow16(float* src, float* dst, long xiStride, long panelStride, int laneBase, Geometry geo,
        Vector512<float>* t, Vector512<float>* o)
    {
        int j = geo.J;
        for (int i = 0; i < 6; i++)
        {
            float* p = src + i * geo.RowLength;
            BT<Lanes16, Vector512<float>>(Vector512.Load(p), Vector512.Load(p + j), Vector512.Load(p + 2 * j), Vector512.Load(p + 3 * j),
                Vector512.Load(p + 1), Vector512.Load(p + j + 1), t + i * 6);
        }
        float* at = dst + (laneBase >> 5) * panelStride + (laneBase & 31);
        for (int b = 0; b < 6; b++)
        {
            BT<Lanes16, Vector512<float>>(t[b], t[6 + b], t[12 + b], t[18 + b], t[24 + b], t[30 + b], o);
            for (int a = 0; a < 6; a++)
                Vector512.Store(o[a], at + (a * 6 + b) * xiStride);
        }
    }

    /// <summary>
    /// <see cref="OutputRow"/> for a tile row of 9 to 16 tiles with AVX-512: the transform of all its tiles in 16-lane
    /// vectors (half the instructions), then each half's eight tiles stored as <see cref="OutputRow"/> stores them.
    /// t, o, col16 and half are scratch (24, 16, 4 and 16 vectors), col and lanes as for <see cref="OutputRow"/>.
    /// </summary>
    private static void OutputRow16(float* src, long xiStride, Vector256<float> b, float* y, Geometry geo, int k, int gr,
        StoreEpilogue epilogue, Vector512<float>* t, Vector512<float>* o, Vector512<float>* col16, Vector256<float>* half,
        Vector256<float>* col, float* lanes)
    {
        var s = geo.S;
        int img = gr / geo.TH, ty = gr - img * geo.TH;
        float* dst = y + ((long)img * s.K + k) * s.OH * s.OW + 4L * ty * s.OW;
        int outRows = Math.Min(4, s.OH - 4 * ty);
        for (int a = 0; a < 6; a++)
        {
            float* p = src + a * 6 * xiStride;
            AT<Lanes16, Vector512<float>>(Vector512.Load(p), Vector512.Load(p + xiStride), Vector512.Load(p + 2 * xiStride),
                Vector512.Load(p + 3 * xiStride), Vector512.Load(p + 4 * xiStride), Vector512.Load(p + 5 * xiStride),
                t + a * 4);
        }
        var b16 = Vector512.Create(b, b);
        for (int j = 0; j < 4; j++)
        {
            AT<Lanes16, Vector512<float>>(t[j], t[4 + j], t[8 + j], t[12 + j], t[16 + j], t[20 + j], col16);
            for (int i = 0; i < 4; i++)
                o[i * 4 + j] = col16[i] + b16;
        }
        for (int q = 0; q < 16; q++)
            half[q] = o[q].GetLower();
        StoreTiles(half, y, dst, outRows, 0, s.OW, epilogue, col, lanes);
        for (int q = 0; q < 16; q++)
            half[q] = o[q].GetUpper();
        StoreTiles(half, y, dst, outRows, 4 * L, s.OW, epilogue, col, lanes);
    }

    /// <summary>The vector arithmetic of the transforms at one width; the JIT specializes <see cref="BT{TL, TV}"/> and
    /// <see cref="AT{TL, TV}"/> per width and inlines these.</summary>
    private interface ILanes<TV>
        where TV : unmanaged
    {
        static abstract TV Add(TV a, TV b);

        static abstract TV Sub(TV a, TV b);

        static abstract TV Scale(float k, TV a);
    }

    /// <summary>Eight tiles a vector (AVX).</summary>
    private readonly struct Lanes8 : ILanes<Vector256<float>>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Scale(float k, Vector256<float> a) => Vector256.Create(k) * a;
    }

    /// <summary>Sixteen tiles a vector (AVX-512).</summary>
    private readonly struct Lanes16 : ILanes<Vector512<float>>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Scale(float k, Vector512<float> a) => Vector512.Create(k) * a;
    }

    /// <summary>o = B^T d for F(4x4, 3x3): rows 4 0 -5 0 1 0, 0 -4 -4 1 1 0, 0 4 -4 -1 1 0, 0 -2 -1 2 1 0,
    /// 0 2 -1 -2 1 0, 0 4 0 -5 0 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BT<TL, TV>(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, TV* o)
        where TL : struct, ILanes<TV>
        where TV : unmanaged
    {
        var d42 = TL.Sub(d4, d2);
        var d31 = TL.Sub(d3, d1);
        o[0] = TL.Add(TL.Sub(TL.Scale(4f, d0), TL.Scale(5f, d2)), d4);
        o[1] = TL.Sub(TL.Add(d3, d4), TL.Scale(4f, TL.Add(d1, d2)));
        o[2] = TL.Add(TL.Sub(d4, d3), TL.Scale(4f, TL.Sub(d1, d2)));
        o[3] = TL.Add(d42, TL.Scale(2f, d31));
        o[4] = TL.Sub(d42, TL.Scale(2f, d31));
        o[5] = TL.Add(TL.Sub(TL.Scale(4f, d1), TL.Scale(5f, d3)), d5);
    }

    /// <summary>o = A^T m for F(4x4, 3x3): rows 1 1 1 1 1 0, 0 1 -1 2 -2 0, 0 1 1 4 4 0, 0 1 -1 8 -8 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AT<TL, TV>(TV m0, TV m1, TV m2, TV m3, TV m4, TV m5, TV* o)
        where TL : struct, ILanes<TV>
        where TV : unmanaged
    {
        var s12 = TL.Add(m1, m2);
        var d12 = TL.Sub(m1, m2);
        var s34 = TL.Add(m3, m4);
        var d34 = TL.Sub(m3, m4);
        o[0] = TL.Add(TL.Add(m0, s12), s34);
        o[1] = TL.Add(d12, TL.Scale(2f, d34));
        o[2] = TL.Add(s12, TL.Scale(4f, s34));
        o[3] = TL.Add(TL.Add(d12, TL.Scale(8f, d34)), m5);
    }

    /// <summary>y[img, k, 4ty + i, 4tx + j] = (A^T M[k, t] A)[i, j] + b[k], then the epilogue (residual at the same
    /// index, activation), eight tiles at a time.</summary>
    private static void OutputTransform(float* m, float* bias, float* y, Geometry geo, int r0, int rows, long ld,
        StoreEpilogue epilogue)
    {
        var s = geo.S;
        void Channel(int k)
        {
            var t = stackalloc Vector256<float>[24];
            var o = stackalloc Vector256<float>[16];
            var col = stackalloc Vector256<float>[4];
            var lanes = stackalloc float[4 * L];
            var b = Vector256.Create(bias == null ? 0f : bias[k]);
            for (int r = 0; r < rows; r++)
                OutputRow(m + k * ld + (long)r * geo.TW, XiStride(s.K, ld), b, y, geo, k, r0 + r, epilogue, t, o, col, lanes);
        }
        CpuConv.For(s.K, (long)Xi * s.K * rows * geo.TW, Channel);
    }

    /// <summary>The outputs of output channel <paramref name="k"/> under tile row <paramref name="gr"/> (image-major)
    /// from its products, tile t0 + l at <c>src[xi*xiStride + t0 + l]</c>, eight tiles at a time; t, o, col and
    /// lanes are the caller's scratch (24, 16, 4 vectors and 32 floats).</summary>
    private static void OutputRow(float* src, long xiStride, Vector256<float> b, float* y, Geometry geo, int k, int gr,
        StoreEpilogue epilogue, Vector256<float>* t, Vector256<float>* o, Vector256<float>* col, float* lanes)
    {
        var s = geo.S;
        int img = gr / geo.TH, ty = gr - img * geo.TH;
        float* dst = y + ((long)img * s.K + k) * s.OH * s.OW + 4L * ty * s.OW;
        int outRows = Math.Min(4, s.OH - 4 * ty);
        for (int t0 = 0; t0 < geo.TW; t0 += L)
        {
            // Rows: t[a][j] = (M[a] A)[j].
            for (int a = 0; a < 6; a++)
            {
                float* p = src + a * 6 * xiStride + t0;
                AT<Lanes8, Vector256<float>>(Vector256.Load(p), Vector256.Load(p + xiStride), Vector256.Load(p + 2 * xiStride),
                    Vector256.Load(p + 3 * xiStride), Vector256.Load(p + 4 * xiStride), Vector256.Load(p + 5 * xiStride),
                    t + a * 4);
            }
            // Columns: o[i][j] = (A^T t)[i][j].
            for (int j = 0; j < 4; j++)
            {
                AT<Lanes8, Vector256<float>>(t[j], t[4 + j], t[8 + j], t[12 + j], t[16 + j], t[20 + j], col);
                for (int i = 0; i < 4; i++)
                    o[i * 4 + j] = col[i] + b;
            }
            StoreTiles(o, y, dst, outRows, 4 * t0, s.OW, epilogue, col, lanes);
        }
    }

    /// <summary>The outputs of eight tiles of a tile row, o[i*4 + j] holding row i and column j of each tile, stored from
    /// column <paramref name="x0"/> of the <paramref name="outRows"/> output rows at <paramref name="dst"/> (rows
    /// <paramref name="ow"/> apart) with the epilogue; col and lanes are scratch (4 vectors, 32 floats).</summary>
    private static void StoreTiles(Vector256<float>* o, float* y, float* dst, int outRows, int x0, int ow,
        StoreEpilogue epilogue, Vector256<float>* col, float* lanes)
    {
        bool plain = epilogue.IsNone;
        bool full = x0 + 4 * L <= ow;
        for (int i = 0; i < outRows; i++)
        {
            float* row = dst + (long)i * ow + x0;
            long at = row - y;
            if (full || MaskedRowEnds && Avx512F.VL.IsSupported)
            {
                // The 32 outputs of eight tiles in order, whole vectors; a row's last run (planes of 28 or 14 columns
                // are nothing else) ends in a vector under a mask, the epilogue read and applied at the vector width.
                Interleave(o[i * 4], o[i * 4 + 1], o[i * 4 + 2], o[i * 4 + 3], col);
                int left = Math.Min(4 * L, ow - x0);
                for (int q = 0; q * L < left; q++)
                {
                    int here = left - q * L;
                    if (here >= L)
                    {
                        (plain ? col[q] : epilogue.Apply(col[q], at + q * L)).Store(row + q * L);
                        continue;
                    }
                    var mask = Vector256.LessThan(Vector256.Create(0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f), Vector256.Create((float)here));
                    Avx512F.VL.MaskStore(row + q * L, mask, plain ? col[q] : epilogue.ApplyMasked(col[q], at + q * L, mask));
                }
                continue;
            }
            for (int j = 0; j < 4; j++)
                Vector256.Store(o[i * 4 + j], lanes + j * L);
            int n = ow - x0;
            for (int q = 0; q < n; q++)
            {
                float v = lanes[(q & 3) * L + (q >> 2)];
                row[q] = plain ? v : epilogue.Apply(v, at + q);
            }
        }
    }

    /// <summary>dst[q][l'] = v_j[l] with 8q + l' = 4l + j: four vectors of eight tiles' columns j as 32 consecutive outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d,
        Vector256<float>* dst)
    {
        var acLo = Avx.UnpackLow(a, c);   // a0 c0 a1 c1 | a4 c4 a5 c5
        var acHi = Avx.UnpackHigh(a, c);  // a2 c2 a3 c3 | a6 c6 a7 c7
        var bdLo = Avx.UnpackLow(b, d);
        var bdHi = Avx.UnpackHigh(b, d);
        var p0 = Avx.UnpackLow(acLo, bdLo);   // tile 0 | tile 4
        var p1 = Avx.UnpackHigh(acLo, bdLo);  // tile 1 | tile 5
        var p2 = Avx.UnpackLow(acHi, bdHi);   // tile 2 | tile 6
        var p3 = Avx.UnpackHigh(acHi, bdHi);  // tile 3 | tile 7
        dst[0] = Avx.Permute2x128(p0, p1, 0x20);
        dst[1] = Avx.Permute2x128(p2, p3, 0x20);
        dst[2] = Avx.Permute2x128(p0, p1, 0x31);
        dst[3] = Avx.Permute2x128(p2, p3, 0x31);
    }
}
