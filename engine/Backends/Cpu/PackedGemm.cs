using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Supplies the B operand of <see cref="PackedGemm"/> a block at a time, already packed, so convolution can
/// gather its implicit im2col columns straight into the panels the micro-kernel reads.
/// </summary>
internal interface IPanelSource
{
    /// <summary>
    /// Packs rows [k0, k0+kc) and columns [j0, j0+nc) of B into panels of <see cref="PackedGemm.NR"/> columns:
    /// panel p starts at <c>dst + p*kc*NR</c> and holds element (kk, lane) at <c>kk*NR + lane</c>. Lanes past the
    /// last column of B are zero.
    /// </summary>
    unsafe void Pack(float* dst, int k0, int kc, int j0, int nc);

    /// <summary>
    /// The block of rows [k0, k0+kc) from column <paramref name="j0"/> (a multiple of <see cref="PackedGemm.NR"/>)
    /// when the source already holds it in packed form, laid out as <see cref="Pack"/> writes it; otherwise null
    /// and the GEMM calls <see cref="Pack"/>.
    /// </summary>
    unsafe float* Packed(int k0, int kc, int j0);
}

/// <summary>
/// A B operand packed once (<see cref="PackedGemm.PackB"/>), e.g. transposed conv weights: block k0 starts at
/// <c>p + k0*npad</c> with its panels back to back, so the GEMM reads it in place.
/// </summary>
internal readonly unsafe struct PrepackedPanels(float* p, int npad) : IPanelSource
{
    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        long len = (long)kc * PackedGemm.RoundUp(nc, PackedGemm.NR);
        Buffer.MemoryCopy(Packed(k0, kc, j0), dst, len * 4, len * 4);
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => p + (long)k0 * npad + (long)j0 * kc;
}

/// <summary>B(k, j) = p[k*rowStride + j*colStride]: a plain matrix, either orientation.</summary>
internal readonly unsafe struct StridedPanels(float* p, long rowStride, long colStride, int columns) : IPanelSource
{
    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        for (int jp = 0; jp < nc; jp += PackedGemm.NR, dst += (long)kc * PackedGemm.NR)
        {
            int valid = Math.Min(PackedGemm.NR, columns - (j0 + jp));
            float* src = p + (long)k0 * rowStride + (long)(j0 + jp) * colStride;
            if (colStride == 1 && valid == PackedGemm.NR)
            {
                for (int kk = 0; kk < kc; kk++, src += rowStride)
                    PackedGemm.Copy32(src, dst + kk * PackedGemm.NR);
                continue;
            }
            for (int kk = 0; kk < kc; kk++, src += rowStride)
            {
                float* d = dst + kk * PackedGemm.NR;
                int lane = 0;
                for (; lane < valid; lane++)
                    d[lane] = src[lane * colStride];
                for (; lane < PackedGemm.NR; lane++)
                    d[lane] = 0f;
            }
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

/// <summary>
/// B's rows read in place by the AVX-512 kernel, 32 columns a k, with no packed copy (<see cref="PackedGemm.Run"/>): a
/// 1x1 conv's x, whose channel planes are B's rows. Column j is pixel j % perImage of image j / perImage:
/// B(k, j) = p[(j / perImage)*imageStride + k*ld + j % perImage] (one image: perImage = columns). The packed copy cost
/// 5-10% of those layers (bench `gemm`); reading the rows where they lie measured as fast as reading a packed panel
/// (one thread, panels in L2). A panel that crosses from one image into the next or ends short of 32 columns, and
/// other instruction sets, go through <see cref="Pack"/>.
/// </summary>
internal readonly unsafe struct InPlaceRows(float* p, long ld, int columns, int perImage, long imageStride) : IPanelSource
{
    /// <summary>One image's rows: B(k, j) = p[k*ld + j].</summary>
    public InPlaceRows(float* p, long ld, int columns) : this(p, ld, columns, columns, 0)
    {
    }

    /// <summary>Whether the 32-column panel from column <paramref name="j"/> lies whole in one image, readable in place.</summary>
    public bool InPlace(int j) => j % perImage + PackedGemm.NR <= perImage;

    /// <summary>Row <paramref name="k0"/> at column <paramref name="j"/>.</summary>
    public float* At(int k0, int j) => p + (long)(j / perImage) * imageStride + k0 * ld + j % perImage;

    /// <summary>Floats from one row to the next.</summary>
    public long Ld => ld;

    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        const int NR = PackedGemm.NR;
        for (int jp = 0; jp < nc; jp += NR, dst += (long)kc * NR)
        {
            int valid = Math.Min(NR, Math.Min(nc, columns - j0) - jp);
            int first = Math.Min(valid, perImage - (j0 + jp) % perImage);
            if (PackedGemm.MaskedCrossings && Avx512F.IsSupported && valid - first <= perImage)
            {
                PackTwoRuns(dst, At(k0, j0 + jp), valid > first ? At(k0, j0 + jp + first) : null, kc, first, valid);
                continue;
            }
            for (int lane = 0; lane < NR;)
            {
                if (lane >= valid)
                {
                    // Lanes past the last column are zero.
                    for (int kk = 0; kk < kc; kk++)
                        new Span<float>(dst + kk * NR + lane, NR - lane).Clear();
                    break;
                }
                // A run of the panel's columns within one image.
                int j = j0 + jp + lane, len = Math.Min(valid - lane, perImage - j % perImage);
                float* src = At(k0, j);
                for (int kk = 0; kk < kc; kk++, src += ld)
                    new ReadOnlySpan<float>(src, len).CopyTo(new Span<float>(dst + kk * NR + lane, len));
                lane += len;
            }
        }
    }

    /// <summary>
    /// One panel of <paramref name="kc"/> rows whose lanes [0, <paramref name="first"/>) are read from
    /// <paramref name="run1"/> and lanes [first, <paramref name="valid"/>) from <paramref name="run2"/> (the next
    /// image's first column; null when there is no second run), lanes past <paramref name="valid"/> zero: two 512-bit
    /// vectors a row under lane masks (AVX-512).
    /// </summary>
    private void PackTwoRuns(float* dst, float* run1, float* run2, int kc, int first, int valid)
    {
        var (lo1, hi1, lo2, hi2) = PackedGemm.TwoRunMasks(first, valid);
        // Lane l of the second run lies at run2 + (l - first): its vectors are addressed from run2 - first (the lanes
        // below first masked off; a missing run has every lane masked off).
        float* s2 = (run2 == null ? run1 : run2) - first;
        for (int kk = 0; kk < kc; kk++, run1 += ld, s2 += ld, dst += PackedGemm.NR)
        {
            Avx512F.MaskLoad(s2, lo2, Avx512F.MaskLoad(run1, lo1, Vector512<float>.Zero)).Store(dst);
            Avx512F.MaskLoad(s2 + 16, hi2, Avx512F.MaskLoad(run1 + 16, hi1, Vector512<float>.Zero)).Store(dst + 16);
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

/// <summary>
/// B read from a matrix packed by <see cref="PackedGemm.PackA"/> as an A operand of <paramref name="rows"/> rows: B is
/// that matrix transposed, B(kk, j) = A(j, kk). Winograd's U, packed once as the A operand of its tiles-as-columns
/// GEMMs, is so the B operand of its tiles-as-rows ones. A 32-column panel of B is four consecutive 8-row panels of A;
/// with AVX-512 the GEMM reads them in place (<see cref="PackedGemm.Run"/>), else, and for a last panel short of 32
/// columns, <see cref="Pack"/> copies them into the usual layout.
/// </summary>
internal readonly unsafe struct RowPanels(float* p, int rows) : IPanelSource
{
    /// <summary>Block <paramref name="k0"/> of the A packing (its panels of 8 rows back to back).</summary>
    public float* Block(int k0) => p + (long)k0 * PackedGemm.RoundUp(rows, PackedGemm.MR);

    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        float* block = Block(k0);
        for (int jp = 0; jp < nc; jp += PackedGemm.NR, dst += (long)kc * PackedGemm.NR)
        {
            for (int q = 0; q < PackedGemm.NR; q += PackedGemm.MR)
            {
                int r0 = j0 + jp + q; // a multiple of MR: j0 and jp are multiples of NR
                float* d = dst + q;
                if (r0 >= rows)
                {
                    for (int kk = 0; kk < kc; kk++)
                        Vector256<float>.Zero.Store(d + kk * PackedGemm.NR);
                    continue;
                }
                float* src = block + (long)r0 * kc;
                for (int kk = 0; kk < kc; kk++)
                    Vector256.Load(src + kk * PackedGemm.MR).Store(d + kk * PackedGemm.NR);
            }
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

/// <summary>
/// What <see cref="PackedGemm"/>'s AVX-512 kernel applies to a full tile's final sums in registers, before its one
/// store: the row or column bias, the residual (indexed like C) and the activation of a <see cref="StoreEpilogue"/>, in the
/// order and with the operations of <see cref="StoreEpilogue.ApplyRange(float*, long, long, float)"/>, so the bits are
/// the same as with the second pass over the stored tile.
/// </summary>
internal readonly unsafe struct TileEnd
{
    /// <summary>Whether anything is applied (default: a plain store).</summary>
    public readonly bool Active;

    /// <summary>The tile's first row's bias, or null.</summary>
    public readonly float* Bias;

    /// <summary>The tile's first column's bias (a bias per column of C, as a linear layer's over its outputs), or null.</summary>
    public readonly float* ColumnBias;

    /// <summary>The residual at the tile's first element, rows <c>ldc</c> apart, or null.</summary>
    public readonly float* Residual;

    /// <summary>The activation after the residual.</summary>
    public readonly StoreEpilogue Epilogue;

    /// <summary>Whether rows on a 64-byte boundary are stored past the caches (<see cref="PackedGemm.StreamBytes"/>).</summary>
    public readonly bool Stream;

    /// <summary>Whether the exact GELU (<see cref="GeluOp"/>) follows the epilogue: applied to the stored tile while it
    /// is in L1 (<see cref="PackedGemm.GeluTile"/>), not in registers, where the accumulators would live across its
    /// calls.</summary>
    public readonly bool Gelu;

    /// <summary>The end of the tile at C row <paramref name="i"/> and column <paramref name="j"/>, <paramref name="at"/>
    /// floats into C.</summary>
    public TileEnd(StoreEpilogue epilogue, float* rowBias, float* columnBias, int i, int j, long at, bool stream, bool gelu)
    {
        Active = true;
        Stream = stream;
        Gelu = gelu;
        Bias = rowBias == null ? null : rowBias + i;
        ColumnBias = columnBias == null ? null : columnBias + j;
        Residual = epilogue.Residual == null ? null : epilogue.Residual + at;
        Epilogue = epilogue;
    }

    /// <summary>Row <paramref name="r"/>'s two vectors, final sums in, outputs out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Finish(ref Vector512<float> v0, ref Vector512<float> v1, int r, long ldc)
    {
        if (Bias != null)
        {
            var b = Vector512.Create(Bias[r]);
            v0 += b;
            v1 += b;
        }
        if (ColumnBias != null)
        {
            v0 += Vector512.Load(ColumnBias);
            v1 += Vector512.Load(ColumnBias + 16);
        }
        if (Residual != null)
        {
            float* at = Residual + r * ldc;
            v0 += Vector512.Load(at);
            v1 += Vector512.Load(at + 16);
        }
        v0 = Epilogue.Activate(v0);
        v1 = Epilogue.Activate(v1);
    }
}

/// <summary>
/// Single-precision GEMM in the GotoBLAS/BLIS structure: <c>C[m,n] (+)= A[m,k] B[k,n]</c> with A packed once per
/// call into MR-row panels (k-blocks of <see cref="KC"/>), B packed per task into NR-column panels (or read in place:
/// prepacked weights, <see cref="RowPanels"/>, a 1x1 conv's x as <see cref="InPlaceRows"/>), and an
/// MR x NR = 8 x 32 register-blocked micro-kernel (16 zmm accumulators with AVX-512, A broadcast, two B
/// loads and sixteen FMAs per k). Tasks are (row block x column block) tiles run with <see cref="Parallel"/>;
/// under <see cref="SerialFlops"/> the call stays on the calling thread.
/// </summary>
internal static unsafe class PackedGemm
{
    /// <summary>Micro-tile rows (A broadcast).</summary>
    public const int MR = 8;

    /// <summary>Micro-tile columns (two 512-bit vectors).</summary>
    public const int NR = 32;

    /// <summary>Depth of a packed block: an 8 x 256 A panel (8 KB) stays in L1 while B panels stream from L2.</summary>
    public const int KC = 256;

    /// <summary>
    /// Whether the AVX-512 kernel prefetches (into L2, two lines per k) the 32 KB the next tiles will read from memory:
    /// a network's weights (100 MB for ResNet-50) do not stay in cache between calls, and the first tile to read a
    /// panel otherwise waits on DRAM. Measured with the bench's profile (PROFILE_PREFETCH=1, with
    /// <see cref="DirectConv.Prefetch"/>, alternating call by call, sums of node medians): ResNet-50 batch 1
    /// 44.03 against 44.50 ms back to back and 44.45 against 45.76 after a 100 ms sleep; ResNet-18 batch 1 20.18
    /// against 20.33 (sleep); batch 8 ResNet-18 137.5 against 139.1, ResNet-50 347.5 against 351.6.
    /// </summary>
    internal static bool Prefetch { get; set; } = true;

    /// <summary>
    /// Whether the AVX-512 kernel applies a full tile's bias, residual and activation in registers before its store
    /// (<see cref="TileEnd"/>) instead of in a second pass over the stored tile. Tests and the bench switch it.
    /// </summary>
    internal static bool FusedStores { get; set; } = true;

    /// <summary>Below this many flops a GEMM runs serially (DESIGN.md section 8: 10-20 MFLOP).</summary>
    public const double SerialFlops = 12e6;

    /// <summary>Floats in A packed by <see cref="PackA"/>.</summary>
    public static long PackedALength(int m, int k) => (long)RoundUp(m, MR) * k;

    /// <summary>Rounds up to a multiple.</summary>
    public static int RoundUp(int v, int multiple) => (v + multiple - 1) / multiple * multiple;

    /// <summary>
    /// Packs <c>alpha * A</c>, A(i, kk) = a[i*rs + kk*cs], for every k-block: block k0 starts at
    /// <c>dst + k0*mpad</c> and holds panel ip at <c>ip*MR*kc</c>, element (r, kk) at <c>kk*MR + r</c>;
    /// rows past m are zero.
    /// </summary>
    public static void PackA(float* a, long rs, long cs, int m, int k, float alpha, float* dst)
    {
        int panels = (m + MR - 1) / MR;
        int mpad = panels * MR;
        void PackPanel(int ip)
        {
            int i0 = ip * MR, rows = Math.Min(MR, m - i0);
            for (int k0 = 0; k0 < k; k0 += KC)
            {
                int kc = Math.Min(KC, k - k0);
                float* d = dst + (long)k0 * mpad + (long)ip * MR * kc;
                int kk0 = 0;
                if (cs == 1 && rows == MR && alpha == 1f && System.Runtime.Intrinsics.X86.Avx.IsSupported)
                {
                    // Rows contiguous in k (a row-major activation matrix): eight rows by eight k at a time, one 8x8
                    // register transpose instead of 64 strided loads.
                    for (; kk0 + 8 <= kc; kk0 += 8, d += 8 * MR)
                        DirectConv.Transpose8x8(a + (long)i0 * rs + k0 + kk0, rs, d, MR);
                }
                for (int kk = kk0; kk < kc; kk++, d += MR)
                {
                    float* s = a + (long)i0 * rs + (long)(k0 + kk) * cs;
                    int r = 0;
                    for (; r < rows; r++)
                        d[r] = alpha * s[r * rs];
                    for (; r < MR; r++)
                        d[r] = 0f;
                }
            }
        }
        if ((long)m * k < 1 << 18 || panels == 1)
        {
            for (int ip = 0; ip < panels; ip++)
                PackPanel(ip);
        }
        else
        {
            CpuParallel.For(panels, PackPanel);
        }
    }

    /// <summary>
    /// <c>C = A B</c>, or <c>C += A B</c> when <paramref name="accumulate"/>; A packed by <see cref="PackA"/>,
    /// C(i, j) at <c>c[i*ldc + j]</c> (with <paramref name="colsPerImage"/>, the columns of several images' planes:
    /// <c>c[(j / colsPerImage)*cImageStride + i*ldc + j % colsPerImage]</c>, a tile that crosses into the next image
    /// summed in a stack tile and stored in pieces), then <paramref name="rowBias"/>[i] or <paramref name="columnBias"/>[j]
    /// added (when given; not both, and no column bias with image columns) and the
    /// <paramref name="epilogue"/> (its residual indexed like C) applied on each tile as its last block of k is summed,
    /// while the tile is in L1. <paramref name="serial"/> keeps it on the calling thread (for callers that run many
    /// GEMMs in parallel themselves).
    /// </summary>
    public static void Run<TB>(int m, int n, int k, float* packedA, TB b, float* c, long ldc, bool accumulate, CpuSimd simd,
        bool serial = false, StoreEpilogue epilogue = default, float* rowBias = null, bool streamOutput = false,
        int colsPerImage = 0, long cImageStride = 0, float* columnBias = null, bool gelu = false, long lda = 0)
        where TB : struct, IPanelSource
    {
        if (columnBias != null && (rowBias != null || colsPerImage > 0))
            throw new ArgumentException("a column bias goes with neither a row bias nor image columns");
        if (gelu && colsPerImage > 0)
            throw new ArgumentException("the GELU store does not take image columns");
        // Columns in images (a batch of 1x1 convs): C(i, j) at c[(j / colsPerImage)*cImageStride + i*ldc + j % colsPerImage].
        bool images = colsPerImage > 0;
        int mPanels = (m + MR - 1) / MR, nPanels = (n + NR - 1) / NR;
        int mpad = mPanels * MR;
        bool parallel = !serial && 2.0 * m * n * k >= SerialFlops && Environment.ProcessorCount > 1;
        // Task tiles: up to 128 rows x 256 columns (B block 256 KB in L2), split further until every thread
        // has several tasks so the last ones balance.
        int mcP = Math.Min(mPanels, 16), ncP = Math.Min(nPanels, 8);
        if (parallel)
        {
            int want = 4 * Environment.ProcessorCount;
            while (Ceil(mPanels, mcP) * Ceil(nPanels, ncP) < want && ncP > 1)
                ncP = (ncP + 1) / 2;
            while (Ceil(mPanels, mcP) * Ceil(nPanels, ncP) < want && mcP > 1)
                mcP = (mcP + 1) / 2;
        }
        int mTasks = Ceil(mPanels, mcP), nTasks = Ceil(nPanels, ncP);
        var bSource = b;
        // B in the row panels of an A packing, read in place by the AVX-512 kernel (full 32-column panels).
        bool rowPanels = typeof(TB) == typeof(RowPanels) && simd == CpuSimd.Vector512;
        // B's rows read in place by the AVX-512 kernel: only panels that cross into the next image or end short are packed.
        bool inPlaceRows = typeof(TB) == typeof(InPlaceRows) && simd == CpuSimd.Vector512;
        // A read in place from its rows (lda > 0: packedA is then the row-major A, alpha 1): full 8-row panels by the
        // AVX-512 kernel straight from the rows, a last short panel packed per block of k.
        bool rowsA = lda > 0;
        if (rowsA && (simd != CpuSimd.Vector512 || rowPanels || inPlaceRows || images))
            throw new ArgumentException("A read in place takes the AVX-512 kernel and a packed or prepacked B only");

        void Task(int t)
        {
            int it = t % mTasks, jt = t / mTasks;
            int p0 = it * mcP, p1 = Math.Min(mPanels, p0 + mcP);
            int j0 = jt * ncP * NR, nc = Math.Min(n - j0, ncP * NR);
            float* panel = Scratch.Panel(KC * ncP * NR);
            float* shortA = stackalloc float[rowsA ? MR * KC : 1];
            for (int k0 = 0; k0 < k; k0 += KC)
            {
                int kc = Math.Min(KC, k - k0);
                float* bp = rowPanels ? Unsafe.As<TB, RowPanels>(ref bSource).Block(k0) + (long)j0 * kc : bSource.Packed(k0, kc, j0);
                if (inPlaceRows)
                {
                    // Only the panels that cross into the next image or end short are packed, each into its own place.
                    bp = panel;
                    var rows = Unsafe.As<TB, InPlaceRows>(ref bSource);
                    for (int jp = 0; jp * NR < nc; jp++)
                    {
                        if (!rows.InPlace(j0 + jp * NR))
                            rows.Pack(panel + (long)jp * kc * NR, k0, kc, j0 + jp * NR, Math.Min(NR, nc - jp * NR));
                    }
                }
                else if (bp == null)
                {
                    bp = panel;
                    bSource.Pack(bp, k0, kc, j0, nc);
                }
                float* aBlock = rowsA ? null : packedA + (long)k0 * mpad;
                bool acc = accumulate || k0 > 0, last = (!epilogue.IsNone || rowBias != null || columnBias != null || gelu) && k0 + kc >= k;
                // B read in place is a weight operand (Winograd's U, transposed conv weights) that comes from memory
                // on its first tile row; a B packed here is in L2.
                bool bFromMemory = bp != panel && !inPlaceRows;
                int nPanelsHere = (nc + NR - 1) / NR;
                for (int ip = p0; ip < p1; ip++)
                {
                    int i = ip * MR, mv = Math.Min(MR, m - i);
                    bool aInPlace = rowsA && mv == MR;
                    float* ap = aInPlace ? packedA + (long)i * lda + k0
                        : rowsA ? PackShortPanel(packedA + (long)i * lda + k0, lda, mv, kc, shortA)
                        : aBlock + (long)ip * MR * kc;
                    for (int jp = 0; jp < nPanelsHere; jp++)
                    {
                        int j = j0 + jp * NR, nv = Math.Min(NR, n - j);
                        float* bj = bp + (long)jp * kc * NR;
                        // What the next tiles read from memory, prefetched into L2 under this tile's FMAs (32 KB):
                        // the next B panel on the first row of tiles when B is read in place, else the next A panels
                        // on the first tile of a row. Elsewhere the current panel (already in L1) is named.
                        float* pf = bFromMemory
                            ? ip == p0 && jp + 1 < nPanelsHere ? bj + (long)kc * NR : bj
                            : jp == 0 && !rowsA ? ap + (long)MR * kc : bj;
                        if (!Prefetch)
                            pf = bj;
                        long at = images ? ImageOffset(i, j, ldc, colsPerImage, cImageStride) : i * ldc + j;
                        // The next tile's output lines on their way while this one computes (see PrefetchOutput).
                        if (k0 == 0 && PrefetchOutput && jp + 1 < nPanelsHere)
                            PrefetchTile(c + (images ? ImageOffset(i, j + NR, ldc, colsPerImage, cImageStride) : at + NR), ldc, mv);
                        // And its residual's, on the block of k whose epilogue reads them (see PrefetchResidual).
                        if (last && PrefetchResidual && epilogue.Residual != null && jp + 1 < nPanelsHere)
                            PrefetchTile(epilogue.Residual + (images ? ImageOffset(i, j + NR, ldc, colsPerImage, cImageStride) : at + NR), ldc, mv);
                        if (images && j % colsPerImage + nv > colsPerImage)
                        {
                            CrossingTile(simd, ap, bj, kc, c, i, j, ldc, mv, nv, acc, pf, colsPerImage, cImageStride, last,
                                epilogue, rowBias);
                            continue;
                        }
                        // A full tile's epilogue in registers before its one store (AVX-512), else a pass over the
                        // stored tile.
                        bool inRegisters = last && FusedStores && simd == CpuSimd.Vector512 && mv == MR && nv == NR;
                        var end = inRegisters ? new TileEnd(epilogue, rowBias, columnBias, i, j, at, streamOutput, gelu) : default;
                        if (inPlaceRows && nv == NR && Unsafe.As<TB, InPlaceRows>(ref bSource).InPlace(j))
                        {
                            var rows = Unsafe.As<TB, InPlaceRows>(ref bSource);
                            // On the task's first row of tiles the next panel's rows are prefetched as this one's are
                            // read (x comes from memory or L3 there); on the others the panel's own rows (in L2).
                            float* here = rows.At(k0, j);
                            WideTile<RowB>(ap, here, rows.Ld, kc, c + at, ldc, mv, acc,
                                ip == p0 && Prefetch ? here + NR : here, end);
                        }
                        else if (rowPanels)
                            RowPanelTile(ap, bj, kc, c + at, ldc, mv, nv, acc, ref bSource, k0, j, panel, pf, end);
                        else if (aInPlace)
                            RowsATile(ap, lda, bj, kc, c + at, ldc, nv, acc, pf, end);
                        else
                            Tile(simd, ap, bj, kc, c + at, ldc, mv, nv, acc, pf, end);
                        if (last && !inRegisters)
                        {
                            // The tile's sums are final: its epilogue while the tile is still in L1.
                            for (int r = 0; r < mv; r++)
                            {
                                if (columnBias != null)
                                {
                                    // The column bias first, as the register path adds it before the epilogue.
                                    float* cr = c + at + r * ldc, cb = columnBias + j;
                                    for (int q = 0; q < nv; q++)
                                        cr[q] += cb[q];
                                }
                                if (rowBias == null)
                                    epilogue.ApplyRange(c, at + r * ldc, nv);
                                else
                                    epilogue.ApplyRange(c, at + r * ldc, nv, rowBias[i + r]);
                                if (gelu)
                                    GeluRange(c + at + r * ldc, nv, simd);
                            }
                        }
                    }
                }
            }
            if (streamOutput && Sse.IsSupported)
                Sse.StoreFence(); // the streamed rows are visible before the task counts as done
        }

        int total = mTasks * nTasks;
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

    /// <summary>A full 8-row tile with A read from its rows in place (<see cref="RowsA"/>); a tile short of 32 columns
    /// goes through a stack tile.</summary>
    private static void RowsATile(float* a, long lda, float* b, int kc, float* c, long ldc, int nv, bool acc, float* pf, TileEnd end)
    {
        if (nv == NR)
        {
            Kernel512<RowB, RowsA>(a, lda, b, NR, kc, c, ldc, acc, pf, end);
            return;
        }
        float* t = stackalloc float[MR * NR];
        Kernel512<RowB, RowsA>(a, lda, b, NR, kc, t, NR, false, pf, default);
        StoreEdge(t, c, ldc, MR, nv, acc);
    }

    /// <summary>The last, short panel of an A read in place, packed as <see cref="PackA"/> packs one panel of one block
    /// of k (rows past <paramref name="rows"/> zero) into <paramref name="dst"/>.</summary>
    private static float* PackShortPanel(float* a, long lda, int rows, int kc, float* dst)
    {
        for (int kk = 0; kk < kc; kk++)
        {
            float* d = dst + kk * MR;
            int r = 0;
            for (; r < rows; r++)
                d[r] = a[r * lda + kk];
            for (; r < MR; r++)
                d[r] = 0f;
        }
        return dst;
    }

    /// <summary>GELU in place on a stored full tile (MR rows of 32 floats, <paramref name="ldc"/> apart), in L1.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void GeluTile(float* c, long ldc)
    {
        for (int r = 0; r < MR; r++, c += ldc)
        {
            new GeluOp().Apply(Vector512.Load(c)).Store(c);
            new GeluOp().Apply(Vector512.Load(c + 16)).Store(c + 16);
        }
    }

    /// <summary>GELU in place on <paramref name="count"/> floats of an edge tile's row, with the vector form at every
    /// lane (a short run through a stack vector), so edge and full tiles give the same values for the same sums.</summary>
    private static void GeluRange(float* p, int count, CpuSimd simd)
    {
        if (simd == CpuSimd.Scalar)
        {
            for (int q = 0; q < count; q++)
                p[q] = new Kernels.Gelu().Value(p[q]);
            return;
        }
        float* t = stackalloc float[16];
        for (int q = 0; q < count; q += 16)
        {
            int len = Math.Min(16, count - q);
            for (int l = 0; l < len; l++)
                t[l] = p[q + l];
            if (simd == CpuSimd.Vector512)
                new GeluOp().Apply(Vector512.Load(t)).Store(t);
            else
            {
                new GeluOp().Apply(Vector256.Load(t)).Store(t);
                new GeluOp().Apply(Vector256.Load(t + 8)).Store(t + 8);
            }
            for (int l = 0; l < len; l++)
                p[q + l] = t[l];
        }
    }

    /// <summary>
    /// Whether each tile's first block of k prefetches the next tile's sixteen lines of C: a layer's output is
    /// usually not in cache (a pooled buffer last used a pass ago), and a tile's sixteen stores to lines that are not
    /// there fill the store queue. Measured with the bench's `gemm` (in one process, alternating, after a 64 MB
    /// sweep): 64->256 at 56x56 with its residual 0.858 / 0.766 ms against 0.908 / 0.833 without, in two runs; the
    /// three other ResNet-50 shapes and every shape in cache within 1-3% either way. In the lean forward after a 64 MB
    /// sweep (PROFILE_PREFETCH_OUTPUT=1, alternating, sums of node medians), prefetched / not: ResNet-18 b1 16.76 /
    /// 17.01 ms, b8 105.0 / 105.9; ResNet-50 b1 41.3 / 41.8, b8 410.8 / 407.5 (within the noise).
    /// </summary>
    internal static bool PrefetchOutput { get; set; } = true;

    /// <summary>
    /// Whether each tile's last block of k prefetches the next tile's sixteen lines of the residual its epilogue adds
    /// (<see cref="TileEnd"/>): the residual was written a block earlier, and at a batch it is out of L2 (ResNet-50's
    /// 56x56 expansions at batch 8 add 25.7 MB); read first in the epilogue, after the tile's FMAs, its lines arrive with nothing
    /// left to overlap. Lean forward after a 100 ms sleep and a 64 MB sweep (PROFILE_RESIDUAL_PREFETCH=1, alternating,
    /// 2-vCPU EPYC Zen 4 VM, 2026-12-07 20:40 UTC), ResNet-50 batch 8: its 64->256 (56x56) and 128->512 (28x28)
    /// expansions 6.3-6.4 / 5.1-5.3 ms against 6.7-6.8 / 5.6-5.8 without, node sums 0.987 and 0.988 of their time; batch
    /// 1 within the noise (0.992, 0.995, 1.002).
    /// </summary>
    internal static bool PrefetchResidual { get; set; } = true;

    /// <summary>
    /// Outputs of at least this many bytes (the whole tensor, as the caller counts it) may be stored past the caches
    /// (<c>streamOutput</c> of <see cref="Run"/>): larger than the last-level cache, they would otherwise be read
    /// from memory before each line is overwritten. 24 MB: of ResNet-50's outputs only layer1's 256-channel ones at
    /// batch 8 (25.7 MB). Lean forward after a 64 MB sweep, batch 8 (PROFILE_STREAM=1, alternating, node medians,
    /// streamed / not, two runs): layer1.0's conv3 5.19 / 6.22 and 4.78 / 5.11 ms, its downsample 6.84 / 7.30 and
    /// 6.00 / 6.62, the other two conv3s within 0.15 either way; the forward's node sums 399.9 / 402.1 and 323.6 /
    /// 324.3. The next layer reads the streamed output from memory, as it would have anyway at that size. Tests and
    /// the bench switch it.
    /// </summary>
    internal static long StreamBytes { get; set; } = 24L << 20;

    /// <summary>Brings the rows of the tile at <paramref name="c"/> into L1 before it is first stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, long ldc, int rows)
    {
        if (!Sse.IsSupported)
            return;
        for (int r = 0; r < rows; r++, c += ldc)
        {
            Sse.Prefetch0(c);
            Sse.Prefetch0(c + 16);
        }
    }

    /// <summary>Floats in B packed by <see cref="PackB"/>.</summary>
    public static long PackedBLength(int k, int n) => (long)RoundUp(n, NR) * k;

    /// <summary>Packs all of B (k x n) once, in the layout <see cref="PrepackedPanels"/> reads: block by block of k, a
    /// large B (as <see cref="PackA"/> decides) in parallel over (block of k, group of panels).</summary>
    public static void PackB<TB>(TB b, int k, int n, float* dst) where TB : struct, IPanelSource
    {
        int npad = RoundUp(n, NR), panels = npad / NR, kBlocks = Ceil(k, KC);
        int groups = (long)k * n < 1 << 18 ? 1 : Math.Min(panels, 8), perGroup = Ceil(panels, groups);
        void Part(int t)
        {
            int k0 = t / groups * KC, p0 = t % groups * perGroup, p1 = Math.Min(panels, p0 + perGroup);
            if (p0 >= p1)
                return;
            int kc = Math.Min(KC, k - k0), j0 = p0 * NR;
            b.Pack(dst + (long)k0 * npad + (long)j0 * kc, k0, kc, j0, Math.Min(n, p1 * NR) - j0);
        }
        if (groups == 1)
        {
            for (int t = 0; t < kBlocks; t++)
                Part(t);
        }
        else
        {
            CpuParallel.For(kBlocks * groups, Part);
        }
    }

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    /// <summary>
    /// One tile whose B panel is four 8-row panels of an A packing (<see cref="RowPanels"/>) at <paramref name="b"/>,
    /// kc x 8 floats each: a full panel is read in place; a last one short of 32 columns is copied into
    /// <paramref name="scratch"/> in the usual layout (zero lanes past the last column) first.
    /// </summary>
    private static void RowPanelTile<TB>(float* a, float* b, int kc, float* c, long ldc, int mv, int nv, bool acc,
        ref TB source, int k0, int j, float* scratch, float* pf, TileEnd end)
        where TB : struct, IPanelSource
    {
        if (nv < NR)
        {
            source.Pack(scratch, k0, kc, j, nv);
            Tile(CpuSimd.Vector512, a, scratch, kc, c, ldc, mv, nv, acc, scratch, default);
            return;
        }
        WideTile<RowPanelB>(a, b, (long)kc * MR, kc, c, ldc, mv, acc, pf, end);
    }

    /// <summary>Where C(i, j) lies when the columns are images' planes (<see cref="Run"/>'s colsPerImage).</summary>
    private static long ImageOffset(int i, int j, long ldc, int colsPerImage, long cImageStride) =>
        (long)(j / colsPerImage) * cImageStride + i * ldc + j % colsPerImage;

    /// <summary>
    /// A tile whose columns cross from one image into the next (<see cref="Run"/>'s colsPerImage): summed into a stack
    /// tile, added into C (or stored, the first block of k) one image's run of columns at a time, each run's rows then,
    /// on the <paramref name="last"/> block of k, given the row bias and the <paramref name="epilogue"/> as an edge
    /// tile's are.
    /// </summary>
    private static void CrossingTile(CpuSimd simd, float* a, float* b, int kc, float* c, int i, int j, long ldc, int mv,
        int nv, bool acc, float* pf, int colsPerImage, long cImageStride, bool last, StoreEpilogue epilogue, float* rowBias)
    {
        float* t = stackalloc float[MR * NR];
        Tile(simd, a, b, kc, t, NR, mv, NR, false, pf, default);
        int first = colsPerImage - j % colsPerImage;
        if (MaskedCrossings && simd == CpuSimd.Vector512 && nv - first <= colsPerImage)
        {
            SplitStore(t, c, ImageOffset(i, j, ldc, colsPerImage, cImageStride),
                ImageOffset(i, j + first, ldc, colsPerImage, cImageStride), ldc, mv, first, nv, acc, last, epilogue,
                rowBias == null ? null : rowBias + i);
            return;
        }
        for (int q = 0; q < nv;)
        {
            int jj = j + q, len = Math.Min(nv - q, colsPerImage - jj % colsPerImage);
            long at = ImageOffset(i, jj, ldc, colsPerImage, cImageStride);
            for (int r = 0; r < mv; r++)
            {
                float* cr = c + at + r * ldc, tr = t + r * NR + q;
                for (int x = 0; x < len; x++)
                    cr[x] = acc ? cr[x] + tr[x] : tr[x];
                if (!last)
                    continue;
                if (rowBias == null)
                    epilogue.ApplyRange(c, at + r * ldc, len);
                else
                    epilogue.ApplyRange(c, at + r * ldc, len, rowBias[i + r]);
            }
            q += len;
        }
    }

    /// <summary>
    /// Whether a tile whose columns cross from one image into the next (and a B panel that does) moves as whole vectors
    /// under lane masks, each row's 32 sums going to the two images' rows at once (<see cref="SplitStore"/>,
    /// <see cref="InPlaceRows.Pack"/>), rather than one image's run of columns at a time, one float at a time. A batch of
    /// 14x14 planes (196 columns an image) has one such panel in seven. Tests and the bench switch it.
    /// </summary>
    internal static bool MaskedCrossings { get; set; } = true;

    /// <summary>The lane masks of a 32-lane row split in two runs: lanes [0, <paramref name="first"/>) in the first
    /// (low and high 16 lanes), lanes [first, <paramref name="count"/>) in the second.</summary>
    internal static (Vector512<float> Lo1, Vector512<float> Hi1, Vector512<float> Lo2, Vector512<float> Hi2) TwoRunMasks(
        int first, int count)
    {
        var lanes = Vector512<int>.Indices;
        var hiLanes = lanes + Vector512.Create(16);
        var f = Vector512.Create(first);
        var n = Vector512.Create(count);
        return (Vector512.LessThan(lanes, f).AsSingle(), Vector512.LessThan(hiLanes, f).AsSingle(),
            (Vector512.GreaterThanOrEqual(lanes, f) & Vector512.LessThan(lanes, n)).AsSingle(),
            (Vector512.GreaterThanOrEqual(hiLanes, f) & Vector512.LessThan(hiLanes, n)).AsSingle());
    }

    /// <summary>
    /// Lanes [0, <paramref name="first"/>) of each row of the stack tile <paramref name="t"/> to C at
    /// <paramref name="at1"/> and lanes [first, <paramref name="nv"/>) to C at <paramref name="at2"/> (the next image's
    /// first column), whole 512-bit vectors under lane masks (AVX-512): added to C's values when <paramref name="acc"/>,
    /// then on the <paramref name="last"/> block of k the row bias, the residual (indexed like C) and the activation, in
    /// the order and with the operations of <see cref="StoreEpilogue.ApplyRange(float*, long, long, float)"/>.
    /// </summary>
    private static void SplitStore(float* t, float* c, long at1, long at2, long ldc, int mv, int first, int nv, bool acc,
        bool last, StoreEpilogue epilogue, float* rowBias)
    {
        var (lo1, hi1, lo2, hi2) = TwoRunMasks(first, nv);
        // Lane l of the second run lies at at2 + (l - first): its vectors are addressed from at2 - first.
        long shift = at2 - first;
        float* residual = last ? epilogue.Residual : null;
        for (int r = 0; r < mv; r++)
        {
            float* p1 = c + at1 + r * ldc, p2 = c + shift + r * ldc;
            var v0 = Vector512.Load(t + r * NR);
            var v1 = Vector512.Load(t + r * NR + 16);
            if (acc)
            {
                v0 += Avx512F.MaskLoad(p2, lo2, Avx512F.MaskLoad(p1, lo1, Vector512<float>.Zero));
                v1 += Avx512F.MaskLoad(p2 + 16, hi2, Avx512F.MaskLoad(p1 + 16, hi1, Vector512<float>.Zero));
            }
            if (last)
            {
                if (rowBias != null)
                {
                    var b = Vector512.Create(rowBias[r]);
                    v0 += b;
                    v1 += b;
                }
                if (residual != null)
                {
                    float* q1 = residual + at1 + r * ldc, q2 = residual + shift + r * ldc;
                    v0 += Avx512F.MaskLoad(q2, lo2, Avx512F.MaskLoad(q1, lo1, Vector512<float>.Zero));
                    v1 += Avx512F.MaskLoad(q2 + 16, hi2, Avx512F.MaskLoad(q1 + 16, hi1, Vector512<float>.Zero));
                }
                v0 = epilogue.Activate(v0);
                v1 = epilogue.Activate(v1);
            }
            Avx512F.MaskStore(p1, lo1, v0);
            Avx512F.MaskStore(p1 + 16, hi1, v1);
            Avx512F.MaskStore(p2, lo2, v0);
            Avx512F.MaskStore(p2 + 16, hi2, v1);
        }
    }

    /// <summary>A tile of 32 columns by <see cref="Kernel512{TLoad}"/> (B's values for one k where
    /// <typeparamref name="TLoad"/> finds them, <paramref name="sub"/> passed on); a tile short of MR rows goes through a
    /// stack tile.</summary>
    private static void WideTile<TLoad>(float* a, float* b, long sub, int kc, float* c, long ldc, int mv, bool acc, float* pf,
        TileEnd end)
        where TLoad : struct, IKernelB
    {
        if (mv == MR)
        {
            Kernel512<TLoad>(a, b, sub, kc, c, ldc, acc, pf, end);
            return;
        }
        float* t = stackalloc float[MR * NR];
        Kernel512<TLoad>(a, b, sub, kc, t, NR, false, pf, default);
        StoreEdge(t, c, ldc, mv, NR, acc);
    }

    /// <summary>Where <see cref="Kernel512{TLoad}"/> finds the 32 B values of one k, and how far the next k's are.</summary>
    private interface IKernelB
    {
        static abstract Vector512<float> Low(float* b, long sub);

        static abstract Vector512<float> High(float* b, long sub);

        /// <summary>Floats from one k's B values to the next's (<paramref name="sub"/> as the tile passes it).</summary>
        static abstract long Step(long sub);

        /// <summary>Floats from one k's two prefetched lines to the next's.</summary>
        static abstract long PrefetchStep(long sub);
    }

    /// <summary>Four 8-float rows <c>sub</c> floats apart (<see cref="RowPanels"/>), two 256-bit loads joined per 512-bit
    /// vector (measured faster than two 8 x 16 halves of 256-bit FMAs, which read A twice).</summary>
    private readonly struct RowPanelB : IKernelB
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Low(float* b, long sub) =>
            Avx512F.InsertVector256(Vector256.Load(b).ToVector512Unsafe(), Vector256.Load(b + sub), 1);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> High(float* b, long sub) =>
            Avx512F.InsertVector256(Vector256.Load(b + 2 * sub).ToVector512Unsafe(), Vector256.Load(b + 3 * sub), 1);

        public static long Step(long sub) => MR;

        public static long PrefetchStep(long sub) => NR;
    }

    /// <summary>32 consecutive floats of B for one k, the next k's <c>sub</c> floats on: a packed panel row
    /// (<see cref="PackB"/>'s layout, <c>sub</c> = <see cref="NR"/>) or a row of B read in place
    /// (<see cref="InPlaceRows"/>, <c>sub</c> its row stride).</summary>
    private readonly struct RowB : IKernelB
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Low(float* b, long sub) => Vector512.Load(b);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> High(float* b, long sub) => Vector512.Load(b + 16);

        public static long Step(long sub) => sub;

        public static long PrefetchStep(long sub) => sub;
    }

    /// <summary>Adds (or copies) the valid <paramref name="mv"/> x <paramref name="nv"/> part of a stack tile into C.</summary>
    private static void StoreEdge(float* t, float* c, long ldc, int mv, int nv, bool acc)
    {
        for (int r = 0; r < mv; r++)
        {
            float* cr = c + r * ldc;
            float* tr = t + r * NR;
            for (int j = 0; j < nv; j++)
                cr[j] = acc ? cr[j] + tr[j] : tr[j];
        }
    }

    /// <summary>One MR x NR tile; edge tiles go through a stack tile and store only the valid part.</summary>
    private static void Tile(CpuSimd simd, float* a, float* b, int kc, float* c, long ldc, int mv, int nv, bool acc, float* pf,
        TileEnd end)
    {
        if (mv == MR && nv == NR)
        {
            Kernel(simd, a, b, kc, c, ldc, acc, pf, end);
            return;
        }
        float* t = stackalloc float[MR * NR];
        Kernel(simd, a, b, kc, t, NR, false, pf, default);
        StoreEdge(t, c, ldc, mv, nv, acc);
    }

    private static void Kernel(CpuSimd simd, float* a, float* b, int kc, float* c, long ldc, bool acc, float* pf, TileEnd end)
    {
        switch (simd)
        {
            case CpuSimd.Vector512:
                Kernel512<RowB>(a, b, NR, kc, c, ldc, acc, pf, end);
                break;
            case CpuSimd.Vector256:
                for (int r0 = 0; r0 < MR; r0 += 4)
                {
                    Kernel256(a + r0, b, kc, c + r0 * ldc, ldc, acc);
                    Kernel256(a + r0, b + 16, kc, c + r0 * ldc + 16, ldc, acc);
                }
                break;
            default:
                KernelScalar(a, b, kc, c, ldc, acc);
                break;
        }
    }

    /// <summary>8 x 32 in sixteen 512-bit accumulators: per k two B loads (<typeparamref name="TLoad"/>), eight A
    /// broadcasts, sixteen FMAs, and two cache lines from <paramref name="pf"/> prefetched into L2 (see
    /// <see cref="Prefetch"/>; a panel already in L1 where nothing is to come); the tile's <paramref name="end"/>
    /// applied in registers when active.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512<TLoad>(float* a, float* b, long sub, int kc, float* c, long ldc, bool acc, float* pf,
        TileEnd end)
        where TLoad : struct, IKernelB =>
        Kernel512<TLoad, PackedA>(a, 0, b, sub, kc, c, ldc, acc, pf, end);

    /// <summary>Where <see cref="Kernel512{TLoad, TA}"/> finds a tile row's A value for one k, and how far the next k's is.</summary>
    private interface IKernelA
    {
        static abstract float At(float* a, long lda, int r);

        static abstract long Step();
    }

    /// <summary>A packed by <see cref="PackA"/>: one k's MR values side by side.</summary>
    private readonly struct PackedA : IKernelA
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float At(float* a, long lda, int r) => a[r];

        public static long Step() => MR;
    }

    /// <summary>A read in place from its rows, <c>lda</c> floats apart, k contiguous in each (a row-major activation).</summary>
    private readonly struct RowsA : IKernelA
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float At(float* a, long lda, int r) => a[r * lda];

        public static long Step() => 1;
    }

    /// <summary>The kernel with A's values where <typeparamref name="TA"/> finds them (<paramref name="lda"/> passed on).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512<TLoad, TA>(float* a, long lda, float* b, long sub, int kc, float* c, long ldc, bool acc,
        float* pf, TileEnd end)
        where TLoad : struct, IKernelB
        where TA : struct, IKernelA
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int kk = 0; kk < kc; kk++, a += TA.Step(), b += TLoad.Step(sub), pf += TLoad.PrefetchStep(sub))
        {
            Sse.Prefetch1(pf);
            Sse.Prefetch1(pf + 16);
            var b0 = TLoad.Low(b, sub);
            var b1 = TLoad.High(b, sub);
            var x = Vector512.Create(TA.At(a, lda, 0));
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(TA.At(a, lda, 1));
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(TA.At(a, lda, 2));
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(TA.At(a, lda, 3));
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(TA.At(a, lda, 4));
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(TA.At(a, lda, 5));
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(TA.At(a, lda, 6));
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(TA.At(a, lda, 7));
            c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        if (end.Active)
        {
            StoreEnd(c, ldc, c00, c01, acc, end, 0);
            StoreEnd(c, ldc, c10, c11, acc, end, 1);
            StoreEnd(c, ldc, c20, c21, acc, end, 2);
            StoreEnd(c, ldc, c30, c31, acc, end, 3);
            StoreEnd(c, ldc, c40, c41, acc, end, 4);
            StoreEnd(c, ldc, c50, c51, acc, end, 5);
            StoreEnd(c, ldc, c60, c61, acc, end, 6);
            StoreEnd(c, ldc, c70, c71, acc, end, 7);
            if (end.Gelu)
                GeluTile(c, ldc);
            return;
        }
        Store512(c, c00, c01, acc);
        Store512(c + ldc, c10, c11, acc);
        Store512(c + 2 * ldc, c20, c21, acc);
        Store512(c + 3 * ldc, c30, c31, acc);
        Store512(c + 4 * ldc, c40, c41, acc);
        Store512(c + 5 * ldc, c50, c51, acc);
        Store512(c + 6 * ldc, c60, c61, acc);
        Store512(c + 7 * ldc, c70, c71, acc);
    }

    /// <summary>Row <paramref name="r"/> of a final tile: the sums (plus C's when <paramref name="acc"/>), then the
    /// tile's end, stored once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreEnd(float* c, long ldc, Vector512<float> v0, Vector512<float> v1, bool acc, in TileEnd end, int r)
    {
        float* cr = c + r * ldc;
        if (acc)
        {
            v0 += Vector512.Load(cr);
            v1 += Vector512.Load(cr + 16);
        }
        end.Finish(ref v0, ref v1, r, ldc);
        if (end.Stream && ((nint)cr & 63) == 0)
        {
            Avx512F.StoreAlignedNonTemporal(cr, v0);
            Avx512F.StoreAlignedNonTemporal(cr + 16, v1);
            return;
        }
        v0.Store(cr);
        v1.Store(cr + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, bool acc)
    {
        if (acc)
        {
            v0 += Vector512.Load(c);
            v1 += Vector512.Load(c + 16);
        }
        v0.Store(c);
        v1.Store(c + 16);
    }

    /// <summary>4 rows x 16 columns of the tile in eight 256-bit accumulators (fits AVX2's 16 registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a, float* b, int kc, float* c, long ldc, bool acc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int kk = 0; kk < kc; kk++, a += MR, b += NR)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
        }
        Store256(c, c00, c01, acc);
        Store256(c + ldc, c10, c11, acc);
        Store256(c + 2 * ldc, c20, c21, acc);
        Store256(c + 3 * ldc, c30, c31, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, bool acc)
    {
        if (acc)
        {
            v0 += Vector256.Load(c);
            v1 += Vector256.Load(c + 8);
        }
        v0.Store(c);
        v1.Store(c + 8);
    }

    private static void KernelScalar(float* a, float* b, int kc, float* c, long ldc, bool acc)
    {
        float* t = stackalloc float[MR * NR];
        new Span<float>(t, MR * NR).Clear();
        for (int kk = 0; kk < kc; kk++, a += MR, b += NR)
        {
            for (int r = 0; r < MR; r++)
            {
                float x = a[r];
                float* tr = t + r * NR;
                for (int j = 0; j < NR; j++)
                    tr[j] = MathF.FusedMultiplyAdd(x, b[j], tr[j]);
            }
        }
        for (int r = 0; r < MR; r++)
        {
            float* cr = c + r * ldc;
            for (int j = 0; j < NR; j++)
                cr[j] = acc ? cr[j] + t[r * NR + j] : t[r * NR + j];
        }
    }

    /// <summary>Copies 32 floats (one packed panel row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy32(float* src, float* dst)
    {
        Vector256.Store(Vector256.Load(src), dst);
        Vector256.Store(Vector256.Load(src + 8), dst + 8);
        Vector256.Store(Vector256.Load(src + 16), dst + 16);
        Vector256.Store(Vector256.Load(src + 24), dst + 24);
    }
}
