using System.Runtime.CompilerServices;
using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// The operands of one block-tiled matrix product <c>out[m, n] = sum_r A[m, r] * B[r, n]</c> as an implicit GEMM:
/// a conv, its two derivatives, or a dense layer describes how to read A and B from its tensors (im2col without
/// the copy) and how to write each result (the fused epilogue), and <see cref="TiledGemm.Run{TOps}"/> does the rest.
/// <c>z</c> is the slice of the grid's Z dimension the element belongs to (a conv group); every index passed in
/// is in range (the core handles the tails).
/// </summary>
internal interface ITileOperands
{
    /// <summary>M: rows of the product per slice.</summary>
    int Rows { get; }

    /// <summary>N: columns of the product per slice.</summary>
    int Cols { get; }

    /// <summary>R: the reduction length (C*KH*KW for a conv forward).</summary>
    int Depth { get; }

    /// <summary>Number of slices along grid Z (conv groups).</summary>
    int Slices { get; }

    /// <summary>Split-K factor: the reduction is cut into this many chunks, each a grid Z slice of its own, whose
    /// partial sums <see cref="Store"/> adds atomically into an output zeroed beforehand (1: plain stores).</summary>
    int Splits { get; }

    /// <summary>True when consecutive rows m of A are adjacent in memory (then threads adjacent in m load A, so the
    /// loads coalesce); false when A is contiguous along r.</summary>
    bool AAlongRows { get; }

    /// <summary>True when consecutive columns n of B are adjacent in memory; false when B is contiguous along r.</summary>
    bool BAlongCols { get; }

    /// <summary>A[m, r] of slice z.</summary>
    float A(int z, int m, int r);

    /// <summary>B[r, n] of slice z.</summary>
    float B(int z, int r, int n);

    /// <summary>Writes the finished sum of element (m, n) of slice z through the epilogue (or adds a split-K part).</summary>
    void Store(int z, int m, int n, float acc);
}

/// <summary>
/// The block-tiled GEMM core shared by the tiled conv and dense kernels (one source for CUDA and OpenCL).
/// <code>
/// block tile   BM x BN = 128 x 64 of the output, K step BK = 8
/// threads      256 per group, thread (tx, ty) = (t % 16, t / 16) owns rows tx + 16 i (i &lt; 8) and columns
///              ty + 16 j (j &lt; 4): an 8x4 register micro-tile, 32 accumulators
/// shared       A tile [2][BK][BM + 4] and B tile [2][BK][BN + 4], double-buffered: 3200 floats, 12.5 KiB; the
///              4 floats of padding per row keep a warp's stores conflict-free when an operand is loaded along k
/// global loads per K step and thread: 4 of A, 2 of B, against 8 * 32 = 256 FMAs
/// </code>
/// Each K step prefetches the next A and B tiles from global memory into registers, computes on the current shared
/// tile, then stores the prefetched values into the other buffer: one barrier per K step. Threads adjacent in t
/// load adjacent addresses along whichever axis the operand is contiguous in. Rows, columns and the reduction may
/// end anywhere: out-of-range elements load as zero and are not stored, in this same kernel.
/// Grid: (ceil(Rows / BM), ceil(Cols / BN), Slices * Splits) groups of 256 threads; see <see cref="Config"/>.
/// </summary>
internal static class TiledGemm
{
    /// <summary>Block tile rows.</summary>
    public const int BM = 128;

    /// <summary>Block tile columns.</summary>
    public const int BN = 64;

    /// <summary>Reduction step.</summary>
    public const int BK = 8;

    /// <summary>Threads per group.</summary>
    public const int Threads = 256;

    /// <summary>Row stride of the shared A tile (padded).</summary>
    private const int AS = BM + 4;

    /// <summary>Row stride of the shared B tile (padded).</summary>
    private const int BS = BN + 4;

    /// <summary>Shared memory per group in bytes.</summary>
    public const int SharedBytes = 2 * BK * (AS + BS) * sizeof(float);

    private const int TX = 16;

    /// <summary>Grid and group of a launch over <paramref name="ops"/>.</summary>
    public static KernelConfig Config<TOps>(TOps ops) where TOps : struct, ITileOperands =>
        new(new Index3D((ops.Rows + BM - 1) / BM, (ops.Cols + BN - 1) / BN, ops.Slices * ops.Splits),
            new Index3D(Threads, 1, 1));

    /// <summary>The reduction range [start, end) of split <paramref name="split"/> of <paramref name="splits"/>,
    /// each a multiple of BK long except the last.</summary>
    private static void SplitRange(int depth, int splits, int split, out int start, out int end)
    {
        int steps = (depth + BK - 1) / BK;
        int per = (steps + splits - 1) / splits;
        start = Math.Min(depth, split * per * BK);
        end = Math.Min(depth, start + per * BK);
    }

    /// <summary>The kernel. Launch with <see cref="Config"/>; explicitly grouped.</summary>
    public static void Run<TOps>(TOps ops) where TOps : struct, ITileOperands
    {
        var aS = SharedMemory.Allocate<float>(2 * BK * AS);
        var bS = SharedMemory.Allocate<float>(2 * BK * BS);
        int t = Group.IdxX;
        int tx = t % TX, ty = t / TX;
        int m0 = Grid.IdxX * BM, n0 = Grid.IdxY * BN;
        int splits = ops.Splits;
        int z = Grid.IdxZ / splits;
        SplitRange(ops.Depth, splits, Grid.IdxZ % splits, out int r0, out int rEnd);
        int steps = (rEnd - r0 + BK - 1) / BK;

        // Prologue: tile 0 into buffer 0.
        var pa = LoadA(ops, z, m0, r0, rEnd, t);
        var pb = LoadB(ops, z, n0, r0, rEnd, t);
        StoreA(aS, 0, pa, ops.AAlongRows, t);
        StoreB(bS, 0, pb, ops.BAlongCols, t);
        Group.Barrier();

        var acc = default(Micro);
        for (int step = 0; step < steps; step++)
        {
            int cur = step & 1;
            bool more = step + 1 < steps;
            if (more)
            {
                // Global loads of the next tile are in flight while this one is multiplied.
                int rn = r0 + (step + 1) * BK;
                pa = LoadA(ops, z, m0, rn, rEnd, t);
                pb = LoadB(ops, z, n0, rn, rEnd, t);
            }
            int aBase = cur * BK * AS + tx, bBase = cur * BK * BS + ty;
            acc = Fma(acc, aS, bS, aBase + 0 * AS, bBase + 0 * BS);
            acc = Fma(acc, aS, bS, aBase + 1 * AS, bBase + 1 * BS);
            acc = Fma(acc, aS, bS, aBase + 2 * AS, bBase + 2 * BS);
            acc = Fma(acc, aS, bS, aBase + 3 * AS, bBase + 3 * BS);
            acc = Fma(acc, aS, bS, aBase + 4 * AS, bBase + 4 * BS);
            acc = Fma(acc, aS, bS, aBase + 5 * AS, bBase + 5 * BS);
            acc = Fma(acc, aS, bS, aBase + 6 * AS, bBase + 6 * BS);
            acc = Fma(acc, aS, bS, aBase + 7 * AS, bBase + 7 * BS);
            if (more)
            {
                StoreA(aS, 1 - cur, pa, ops.AAlongRows, t);
                StoreB(bS, 1 - cur, pb, ops.BAlongCols, t);
            }
            Group.Barrier();
        }

        int rows = ops.Rows, cols = ops.Cols;
        for (int i = 0; i < 8; i++)
        {
            int m = m0 + tx + TX * i;
            if (m >= rows)
                break;
            for (int j = 0; j < 4; j++)
            {
                int n = n0 + ty + TX * j;
                if (n < cols)
                    ops.Store(z, m, n, acc.Get(i, j));
            }
        }
    }

    /// <summary>Position (row or column within the tile, k within the step) of load <paramref name="l"/> of thread t:
    /// along the tile's long axis when the operand is contiguous there, else along k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Slot(int l, int t, int width, bool alongWidth, out int w, out int k)
    {
        int idx = t + l * Threads;
        if (alongWidth)
        {
            w = idx % width;
            k = idx / width;
        }
        else
        {
            k = idx % BK;
            w = idx / BK;
        }
    }

    private static Quad LoadA<TOps>(TOps ops, int z, int m0, int r0, int rEnd, int t) where TOps : struct, ITileOperands
    {
        bool along = ops.AAlongRows;
        Quad q;
        q.V0 = LoadA(ops, z, m0, r0, rEnd, t, 0, along);
        q.V1 = LoadA(ops, z, m0, r0, rEnd, t, 1, along);
        q.V2 = LoadA(ops, z, m0, r0, rEnd, t, 2, along);
        q.V3 = LoadA(ops, z, m0, r0, rEnd, t, 3, along);
        return q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadA<TOps>(TOps ops, int z, int m0, int r0, int rEnd, int t, int l, bool along)
        where TOps : struct, ITileOperands
    {
        Slot(l, t, BM, along, out int w, out int k);
        int m = m0 + w, r = r0 + k;
        return m < ops.Rows && r < rEnd ? ops.A(z, m, r) : 0f;
    }

    private static Quad LoadB<TOps>(TOps ops, int z, int n0, int r0, int rEnd, int t) where TOps : struct, ITileOperands
    {
        bool along = ops.BAlongCols;
        Quad q;
        q.V0 = LoadB(ops, z, n0, r0, rEnd, t, 0, along);
        q.V1 = LoadB(ops, z, n0, r0, rEnd, t, 1, along);
        q.V2 = 0f;
        q.V3 = 0f;
        return q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadB<TOps>(TOps ops, int z, int n0, int r0, int rEnd, int t, int l, bool along)
        where TOps : struct, ITileOperands
    {
        Slot(l, t, BN, along, out int w, out int k);
        int n = n0 + w, r = r0 + k;
        return n < ops.Cols && r < rEnd ? ops.B(z, r, n) : 0f;
    }

    private static void StoreA(ArrayView<float> aS, int buffer, Quad q, bool along, int t)
    {
        Put(aS, buffer * BK * AS, BM, AS, 0, t, along, q.V0);
        Put(aS, buffer * BK * AS, BM, AS, 1, t, along, q.V1);
        Put(aS, buffer * BK * AS, BM, AS, 2, t, along, q.V2);
        Put(aS, buffer * BK * AS, BM, AS, 3, t, along, q.V3);
    }

    private static void StoreB(ArrayView<float> bS, int buffer, Quad q, bool along, int t)
    {
        Put(bS, buffer * BK * BS, BN, BS, 0, t, along, q.V0);
        Put(bS, buffer * BK * BS, BN, BS, 1, t, along, q.V1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(ArrayView<float> tile, int offset, int width, int stride, int l, int t, bool along, float v)
    {
        Slot(l, t, width, along, out int w, out int k);
        tile[offset + k * stride + w] = v;
    }

    /// <summary>One k of the micro-tile: 8 values of A and 4 of B from shared memory, 32 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Micro Fma(Micro c, ArrayView<float> aS, ArrayView<float> bS, int a, int b)
    {
        float a0 = aS[a], a1 = aS[a + 16], a2 = aS[a + 32], a3 = aS[a + 48];
        float a4 = aS[a + 64], a5 = aS[a + 80], a6 = aS[a + 96], a7 = aS[a + 112];
        float b0 = bS[b], b1 = bS[b + 16], b2 = bS[b + 32], b3 = bS[b + 48];
        c.C00 += a0 * b0; c.C01 += a0 * b1; c.C02 += a0 * b2; c.C03 += a0 * b3;
        c.C10 += a1 * b0; c.C11 += a1 * b1; c.C12 += a1 * b2; c.C13 += a1 * b3;
        c.C20 += a2 * b0; c.C21 += a2 * b1; c.C22 += a2 * b2; c.C23 += a2 * b3;
        c.C30 += a3 * b0; c.C31 += a3 * b1; c.C32 += a3 * b2; c.C33 += a3 * b3;
        c.C40 += a4 * b0; c.C41 += a4 * b1; c.C42 += a4 * b2; c.C43 += a4 * b3;
        c.C50 += a5 * b0; c.C51 += a5 * b1; c.C52 += a5 * b2; c.C53 += a5 * b3;
        c.C60 += a6 * b0; c.C61 += a6 * b1; c.C62 += a6 * b2; c.C63 += a6 * b3;
        c.C70 += a7 * b0; c.C71 += a7 * b1; c.C72 += a7 * b2; c.C73 += a7 * b3;
        return c;
    }

    /// <summary>Up to four prefetched tile values in registers (A uses four, B two).</summary>
    private struct Quad
    {
        public float V0, V1, V2, V3;
    }

    /// <summary>The 8x4 register micro-tile: C{i}{j} accumulates row tx + 16 i, column ty + 16 j.</summary>
    private struct Micro
    {
        public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;
        public float C40, C41, C42, C43, C50, C51, C52, C53, C60, C61, C62, C63, C70, C71, C72, C73;

        public readonly float Get(int i, int j)
        {
            float r0 = j == 0 ? C00 : j == 1 ? C01 : j == 2 ? C02 : C03;
            float r1 = j == 0 ? C10 : j == 1 ? C11 : j == 2 ? C12 : C13;
            float r2 = j == 0 ? C20 : j == 1 ? C21 : j == 2 ? C22 : C23;
            float r3 = j == 0 ? C30 : j == 1 ? C31 : j == 2 ? C32 : C33;
            float r4 = j == 0 ? C40 : j == 1 ? C41 : j == 2 ? C42 : C43;
            float r5 = j == 0 ? C50 : j == 1 ? C51 : j == 2 ? C52 : C53;
            float r6 = j == 0 ? C60 : j == 1 ? C61 : j == 2 ? C62 : C63;
            float r7 = j == 0 ? C70 : j == 1 ? C71 : j == 2 ? C72 : C73;
            return i == 0 ? r0 : i == 1 ? r1 : i == 2 ? r2 : i == 3 ? r3 : i == 4 ? r4 : i == 5 ? r5 : i == 6 ? r6 : r7;
        }
    }
}

/// <summary>Activation applied by a fused epilogue after the bias and the residual.</summary>
internal enum EpilogueActivation
{
    /// <summary>y = v.</summary>
    None = 0,

    /// <summary>y = max(v, 0) (NaN passes, as <see cref="Relu.Forward"/>).</summary>
    Relu = 1,

    /// <summary>y = min(max(v, Lo), Hi) (ReLU6 with Lo = 0, Hi = 6).</summary>
    Clip = 2,

    /// <summary>y = v * sigmoid(v).</summary>
    Silu = 3,
}

/// <summary>
/// The output stage fused into a tiled conv or dense kernel: <c>y = act(acc + bias[k] + residual[i])</c>, where
/// residual has y's shape (a ResNet shortcut). Flags are ints: kernel parameters must be blittable.
/// </summary>
internal readonly record struct Epilogue(int Activation, float Lo, float Hi, int HasBias, int HasResidual)
{
    /// <summary>No bias, no residual, no activation.</summary>
    public static Epilogue Plain => new(0, 0f, 0f, 0, 0);

    /// <summary>Applies the activation to <paramref name="v"/>.</summary>
    public float Activate(float v)
    {
        if (Activation == (int)EpilogueActivation.Relu)
            return v < 0f ? 0f : v;
        if (Activation == (int)EpilogueActivation.Clip)
            return v < Lo ? Lo : v > Hi ? Hi : v;
        if (Activation == (int)EpilogueActivation.Silu)
            return v / (1f + MathF.Exp(-v));
        return v;
    }
}
