using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The managed CPU backend's Score-CAM masks and masked batches, computed in place on the tensors' host memory with the
/// host arithmetic every backend reproduces (<see cref="Backend.HostMask"/>, <see cref="Backend.HostMasked"/>): the
/// base class reads whole tensors into fresh arrays, which here would copy a 512-channel mask set (100 MB at 224x224)
/// and its noise for every masked batch. Planes and rows are independent, so they run in parallel with the same numbers.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void ActivationMasksCore(Tensor a, Tensor masks, bool normalizeFirst, bool alignCorners, float eps)
    {
        // a: (N, C, h, w)   masks: (N, C, H, W)
        int h = a.Shape[2], w = a.Shape[3], bigH = masks.Shape[2], bigW = masks.Shape[3];
        int planes = a.Shape[0] * a.Shape[1], plane = h * w, big = bigH * bigW;
        nint src = (nint)In(a), dst = (nint)Over(masks);
        CpuConv.For(planes, (long)planes * big * 8, p =>
        {
            var channel = new ReadOnlySpan<float>((float*)src + (long)p * plane, plane);
            var mask = new Span<float>((float*)dst + (long)p * big, big);
            HostMask(channel, h, w, mask, bigH, bigW, normalizeFirst, alignCorners, eps);
        });
    }

    /// <inheritdoc/>
    protected override void MaskedInputsCore(Tensor x, Tensor masks, Tensor? noise, ReadOnlySpan<MaskedRow> rows, Tensor y,
        MaskedShape s)
    {
        // x: (N, C, H, W)   masks, noise: (R, H, W)   y: (rows, C, H, W)
        nint px = (nint)In(x), pm = (nint)In(masks), pn = noise != null ? (nint)In(noise) : 0, py = (nint)Over(y);
        var items = rows.ToArray();
        int image = s.Channels * s.Plane;
        CpuConv.For(items.Length, (long)items.Length * image * 4, r =>
        {
            var item = items[r];
            HostMasked(new ReadOnlySpan<float>((float*)px + (long)item.Image * image, image),
                new ReadOnlySpan<float>((float*)pm + (long)item.Mask * s.Plane, s.Plane),
                item.Noise >= 0 ? new ReadOnlySpan<float>((float*)pn + (long)item.Noise * s.Plane, s.Plane) : default,
                item.Scale, new Span<float>((float*)py + (long)r * image, image));
        });
    }
}
