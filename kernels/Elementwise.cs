using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Element-wise arithmetic on tensors of equal length. Add is linear (its backward passes dy to both
/// operands unchanged); <see cref="Accumulate"/> sums gradients where an activation fans out (residual
/// connections).
/// <code>a, b, y, dst, src: same length</code>
/// </summary>
internal static class Elementwise
{
    /// <summary><c>y = a + b</c>.</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        y[i] = a[i] + b[i];
    }

    /// <summary><c>dst += src</c>.</summary>
    public static void Accumulate(Index1D i, ArrayView<float> dst, ArrayView<float> src)
    {
        dst[i] += src[i];
    }

    /// <summary><c>y = x * scale</c>.</summary>
    public static void Scale(Index1D i, ArrayView<float> x, ArrayView<float> y, float scale)
    {
        y[i] = x[i] * scale;
    }
}
