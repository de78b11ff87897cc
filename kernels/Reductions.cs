using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.ScanReduceOperations;

namespace CamEngine.Kernels;

/// <summary>
/// Reductions over the channel planes of an NCHW tensor with ILGPU.Algorithms' warp and group reductions: the
/// sums behind bias gradients, the means behind global average pooling and CAM channel weights, and the min-max
/// normalization of saliency maps. The GPU versions of <see cref="GlobalAvgPool.Forward"/> and
/// <see cref="Conv2d.BackwardBias"/>, which give one thread a whole plane.
/// <code>x: (N, C, P) with P = H*W</code>
/// </summary>
internal static class Reductions
{
    /// <summary>Threads per group of these kernels (8 warps of 32 on a GPU).</summary>
    public const int GroupSize = 256;

    /// <summary>
    /// <c>sums[c] = scale * sum_{n, j} x[n, c, j]</c> with one group per channel: each thread adds a strided share,
    /// the group reduction adds the shares. Also the bias gradient of a dense layer (P = 1, C = features).
    /// Grid: C groups of <see cref="GroupSize"/>.
    /// </summary>
    public static void ChannelSum(ArrayView<float> x, ArrayView<float> sums, int n, int channels, int plane, float scale)
    {
        int c = Grid.IdxX;
        int count = n * plane;
        float acc = 0f;
        for (int j = Group.IdxX; j < count; j += Group.DimX)
            acc += x[(j / plane * channels + c) * plane + j % plane];
        float sum = GroupExtensions.Reduce<float, AddFloat>(acc);
        if (Group.IsFirstThread)
            sums[c] = scale * sum;
    }

    /// <summary>
    /// <c>means[r] = sum_j x[r, j] / P</c> for every row r = (n, c), one warp per row (coalesced reads, a warp
    /// reduction, no barrier): global average pooling, and the channel means of gradients that Grad-CAM's weights
    /// are. Grid: ceil(rows / warps per group) groups of <see cref="GroupSize"/>.
    /// </summary>
    public static void RowMeans(ArrayView<float> x, ArrayView<float> means, int rows, int plane)
    {
        int warps = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warps + Warp.WarpIdx;
        float acc = 0f;
        if (row < rows)
        {
            for (int j = Warp.LaneIdx; j < plane; j += Warp.WarpSize)
                acc += x[row * plane + j];
        }
        // Every lane takes part in the reduction, also in a warp past the last row.
        float sum = WarpExtensions.Reduce<float, AddFloat>(acc);
        if (row < rows && Warp.IsFirstLane)
            means[row] = sum / plane;
    }

    /// <summary>
    /// Min-max normalization of each row (one saliency map per row): <c>y[r, j] = (x[r, j] - min_r) / (max_r - min_r + eps)</c>,
    /// and 0 for a constant row, with one group per row: two group all-reductions, then every thread writes its share.
    /// eps is 0 for saliency maps, 1e-8 for pytorch-grad-cam's Score-CAM masks. Grid: rows groups of <see cref="GroupSize"/>.
    /// </summary>
    public static void MinMaxNormalize(ArrayView<float> x, ArrayView<float> y, int length, float eps)
    {
        int row = Grid.IdxX;
        int start = row * length;
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        for (int j = Group.IdxX; j < length; j += Group.DimX)
        {
            float v = x[start + j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        lo = GroupExtensions.AllReduce<float, MinFloat>(lo);
        // The second reduction reuses the first one's shared memory: every thread has its minimum first.
        Group.Barrier();
        hi = GroupExtensions.AllReduce<float, MaxFloat>(hi);
        float range = hi - lo;
        float denominator = range + eps;
        for (int j = Group.IdxX; j < length; j += Group.DimX)
            y[start + j] = range > 0f ? (x[start + j] - lo) / denominator : 0f;
    }
}
