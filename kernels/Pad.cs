using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Constant padding of the two spatial axes. Linear in x (the constant does not depend on it); the backward
/// crops the gradient.
/// <code>x: (N, C, H, W)   y: (N, C, H + PT + PB, W + PL + PR)   y[n,c,h,w] = x[n,c,h-PT,w-PL] inside, value outside</code>
/// </summary>
internal static class Pad
{
    /// <summary>Forward. Index: one per element of y.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, PadShape s, float value)
    {
        int ow = s.W + s.PadLeft + s.PadRight, oh = s.H + s.PadTop + s.PadBottom;
        int w = i % ow - s.PadLeft;
        int t = i / ow;
        int h = t % oh - s.PadTop;
        int nc = t / oh;
        y[i] = h >= 0 && h < s.H && w >= 0 && w < s.W ? x[(nc * s.H + h) * s.W + w] : value;
    }

    /// <summary>Backward of the line above: <c>dx[n,c,h,w] = dy[n,c,h+PT,w+PL]</c>. Index: one per element of dx.</summary>
    public static void Backward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, PadShape s)
    {
        int ow = s.W + s.PadLeft + s.PadRight, oh = s.H + s.PadTop + s.PadBottom;
        int w = i % s.W;
        int t = i / s.W;
        int h = t % s.H;
        int nc = t / s.H;
        dx[i] = dy[(nc * oh + h + s.PadTop) * ow + w + s.PadLeft];
    }
}
