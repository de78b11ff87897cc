using CamEngine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace CamEngine.Backends;

/// <summary>
/// The CAM operations on the device (<see cref="CamMaps"/>): masks, masked batches, channel weights and weighted
/// channel sums are kernels queued on the stream like a layer, so a method's masked batches and per-channel
/// products never pass through the host. The min-max normalization of the masks is the group reduction
/// <see cref="Reductions.MinMaxNormalize"/> on the GPU-shaped devices and a one-thread-per-row loop on the plain CPU
/// accelerator (whose groups are one thread).
/// </summary>
internal sealed partial class IlgpuBackend
{
    /// <inheritdoc/>
    protected override void ActivationMasksCore(Tensor a, Tensor masks, bool normalizeFirst, bool alignCorners, float eps)
    {
        int rows = a.Shape[0] * a.Shape[1], h = a.Shape[2], w = a.Shape[3], bigH = masks.Shape[2], bigW = masks.Shape[3];
        var resize = ResizeShape.Create(rows, h, w, bigH, bigW, alignCorners);
        if (normalizeFirst)
        {
            using var low = Allocate(a.Shape);
            NormalizeRows(F(a), F(low), rows, h * w, eps);
            Launch(CamMaps.Upsample, masks.Length, F(low), F(masks), resize);
        }
        else
        {
            Launch(CamMaps.Upsample, masks.Length, F(a), F(masks), resize);
            NormalizeRows(F(masks), F(masks), rows, bigH * bigW, eps);
        }
    }

    private void NormalizeRows(ArrayView<float> x, ArrayView<float> y, int rows, int length, float eps)
    {
        if (_tiled)
            MinMaxRows(x, y, rows, length, eps);
        else
            Launch(CamMaps.MinMaxRow, rows, x, y, length, eps);
    }

    /// <inheritdoc/>
    protected override void MaskedInputsCore(Tensor x, Tensor masks, Tensor? noise, ReadOnlySpan<MaskedRow> rows, Tensor y,
        MaskedShape s)
    {
        // The row table (three indices and a scale per row) is the only thing that goes up.
        var table = new int[rows.Length * 3];
        var scales = new float[rows.Length];
        for (int r = 0; r < rows.Length; r++)
        {
            table[3 * r] = rows[r].Image;
            table[3 * r + 1] = rows[r].Mask;
            table[3 * r + 2] = rows[r].Noise;
            scales[r] = rows[r].Scale;
        }
        using var items = AllocateIndices(table.Length);
        using var scale = Allocate(scales.Length);
        Interlocked.Increment(ref _hostWrites);
        Interlocked.Add(ref _hostWriteBytes, 4L * table.Length);
        I(items).SubView(0, table.Length).CopyFromCPU(table);
        Write(scale.Storage, scales);
        Launch(CamMaps.Masked, y.Length, F(x), F(masks), F(noise, masks), I(items), F(scale), F(y), s);
    }

    /// <inheritdoc/>
    protected override void WindowedInputsCore(Tensor x, Tensor baseline, ReadOnlySpan<WindowRow> rows, Tensor y, MaskedShape s,
        int width)
    {
        var table = new int[rows.Length * 5];
        for (int r = 0; r < rows.Length; r++)
        {
            table[5 * r] = rows[r].Image;
            table[5 * r + 1] = rows[r].Y0;
            table[5 * r + 2] = rows[r].Y1;
            table[5 * r + 3] = rows[r].X0;
            table[5 * r + 4] = rows[r].X1;
        }
        using var items = AllocateIndices(table.Length);
        Interlocked.Increment(ref _hostWrites);
        Interlocked.Add(ref _hostWriteBytes, 4L * table.Length);
        I(items).SubView(0, table.Length).CopyFromCPU(table);
        Launch(CamMaps.Windowed, y.Length, F(x), F(baseline), I(items), F(y), s, width);
    }

    /// <inheritdoc/>
    protected override void CamChannelWeightsCore(Tensor a, Tensor g, Tensor weights, CamWeightRule rule, double eps, int plane)
    {
        if (_tiled && rule == CamWeightRule.GradCam)
            RowMeans(g, weights, weights.Length, plane); // a warp per channel (float sums)
        else
            Launch(CamMaps.ChannelWeights, weights.Length, F(a), F(g), F(weights), plane, (int)rule, eps);
    }

    /// <inheritdoc/>
    protected override void WeightedChannelSumCore(Tensor a, Tensor weights, Tensor map, int channels, int plane) =>
        Launch(CamMaps.WeightedChannelSum, map.Length, F(a), F(weights), F(map), channels, plane);

    /// <inheritdoc/>
    protected override void ProductChannelSumCore(Tensor a, Tensor g, Tensor map, int channels, int plane, bool reluGradient) =>
        Launch(CamMaps.ProductChannelSum, map.Length, F(a), F(g), F(map), channels, plane, reluGradient ? 1 : 0);
}
