using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Global average pooling and its backward.
/// <code>x: (N, C, H, W)   y: (N, C, 1, 1)   y[n,c] = sum_{h,w} x[n,c,h,w] / (H*W)</code>
/// Linear: higher-order Taylor coefficients use the same kernels.
/// </summary>
internal static class GlobalAvgPool
{
    /// <summary>Forward. Index: one per (n, c); <paramref name="plane"/> = H*W.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, int plane)
    {
        int baseIndex = i * plane;
        float acc = 0f;
        for (int j = 0; j < plane; j++)
            acc += x[baseIndex + j];
        y[i] = acc / plane;
    }

    /// <summary>Backward of <c>y[n,c] = sum x[n,c,:,:] / (H*W)</c>: <c>dx[n,c,h,w] = dy[n,c] / (H*W)</c>.
    /// Index: one per element of dx.</summary>
    public static void Backward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int plane)
    {
        dx[i] = dy[i / plane] / plane;
    }
}
