using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Permutation of axes, rank up to 6 (<see cref="TransposeShape"/>): channels-last views (ConvNeXt, Swin),
/// ShuffleNet's channel shuffle, token sequences (ViT).
/// <code>x: (X0..X5)   y: (X[perm[0]]..X[perm[5]])</code>
/// The backward is the same kernel with the inverse permutation: <c>dx = transpose(dy, perm^-1)</c>.
/// </summary>
internal static class Transpose
{
    /// <summary><c>y[i] = x[source(i)]</c>. Index: one per element of y.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, TransposeShape s)
    {
        y[i] = x[s.Source(i)];
    }
}
