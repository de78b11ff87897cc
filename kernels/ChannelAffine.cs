using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Per-channel affine map: inference-mode BatchNormalization with its statistics folded into a scale and a
/// shift, <c>scale = gamma / sqrt(var + eps)</c>, <c>shift = beta - mean * scale</c>. Linear in x: higher-order
/// Taylor coefficients use the same scale.
/// <code>x, y, dy, dx: (N, C, inner)   scale, shift: (C)   y[n,c,j] = x[n,c,j] * scale[c] + shift[c]</code>
/// </summary>
internal static class ChannelAffine
{
    /// <summary>Forward. Index: one per element; <paramref name="inner"/> = H*W (1 for flat inputs).</summary>
    public static void Forward(
        Index1D i, ArrayView<float> x, ArrayView<float> scale, ArrayView<float> shift, ArrayView<float> y, int channels, int inner)
    {
        int c = i / inner % channels;
        y[i] = x[i] * scale[c] + shift[c];
    }

    /// <summary>dx of <c>y = x * scale[c] + shift[c]</c>: <c>dx = dy * scale[c]</c>. Index: one per element.</summary>
    public static void BackwardData(
        Index1D i, ArrayView<float> dy, ArrayView<float> scale, ArrayView<float> dx, int channels, int inner)
    {
        dx[i] = dy[i] * scale[i / inner % channels];
    }

    /// <summary>
    /// Parameter gradients: <c>dscale[c] = sum_{n,j} dy[n,c,j] x[n,c,j]</c>, <c>dshift[c] = sum_{n,j} dy[n,c,j]</c>.
    /// Index: one per channel; <paramref name="batch"/> = N.
    /// </summary>
    public static void BackwardParams(
        Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dscale, ArrayView<float> dshift,
        int channels, int inner, int batch)
    {
        float gs = 0f, gb = 0f;
        for (int n = 0; n < batch; n++)
        {
            int baseIndex = (n * channels + i) * inner;
            for (int j = 0; j < inner; j++)
            {
                float g = dy[baseIndex + j];
                gs += g * x[baseIndex + j];
                gb += g;
            }
        }
        dscale[i] = gs;
        dshift[i] = gb;
    }
}
