using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// ReLU, y = max(x, 0), and its backward rules.
/// Kink convention: ReLU'(0) = 0 (PyTorch's rule), so a zero input passes no gradient under any rule.
/// ReLU is piecewise linear: its second and third derivatives are zero wherever they exist, and its
/// Taylor coefficients of order 1 to 3 are the incoming coefficients times the same mask [x &gt; 0].
/// <code>x, y, dy, dx: any shape, same length</code>
/// </summary>
internal static class Relu
{
    /// <summary>Forward: <c>y = x &lt; 0 ? 0 : x</c>, so a NaN passes through (as in PyTorch) instead of being
    /// silently turned into 0.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        float v = x[i];
        y[i] = v < 0f ? 0f : v;
    }

    /// <summary>
    /// Backward of <c>y = x &gt; 0 ? x : 0</c> under a <see cref="ReluRule"/> (passed as its int value):
    /// standard <c>dx = dy [x &gt; 0]</c>; guided <c>dx = dy [x &gt; 0][dy &gt; 0]</c>; deconvnet <c>dx = dy [dy &gt; 0]</c>.
    /// </summary>
    public static void Backward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int rule)
    {
        float g = dy[i];
        bool pass = rule == 2 ? g > 0f : x[i] > 0f && (rule == 0 || g > 0f);
        dx[i] = pass ? g : 0f;
    }
}
