using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Padding of the two spatial axes (<see cref="PadShape.Mode"/>: a constant, reflect or edge). Linear in x (the
/// constant does not depend on it); the backward sums dy over the output elements that read each x element (a crop
/// in constant mode).
/// <code>x: (N, C, H, W)   y: (N, C, H + PT + PB, W + PL + PR)   y[n,c,h,w] = x[n,c,src(h),src(w)], value where src is outside</code>
/// </summary>
internal static class Pad
{
    /// <summary>Forward. Index: one per element of y.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, PadShape s, float value)
    {
        int ow = s.W + s.PadLeft + s.PadRight, oh = s.H + s.PadTop + s.PadBottom;
        int w = s.Source(i % ow, s.PadLeft, s.W);
        int t = i / ow;
        int h = s.Source(t % oh, s.PadTop, s.H);
        int nc = t / oh;
        y[i] = h >= 0 && w >= 0 ? x[(nc * s.H + h) * s.W + w] : value;
    }

    /// <summary>Backward: <c>dx[n,c,h,w] = sum of dy[n,c,a,b]</c> over the a reading h and the b reading w
    /// (<see cref="PadShape.Reader"/>). Index: one per element of dx.</summary>
    public static void Backward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, PadShape s)
    {
        int ow = s.W + s.PadLeft + s.PadRight, oh = s.H + s.PadTop + s.PadBottom;
        int w = i % s.W;
        int t = i / s.W;
        int h = t % s.H;
        int nc = t / s.H;
        int rh = s.Readers(h, s.PadTop, s.H, s.PadBottom), rw = s.Readers(w, s.PadLeft, s.W, s.PadRight);
        float acc = 0f;
        for (int a = 0; a < rh; a++)
        {
            int row = (nc * oh + s.Reader(a, h, s.PadTop, s.H, s.PadBottom)) * ow;
            for (int b = 0; b < rw; b++)
                acc += dy[row + s.Reader(b, w, s.PadLeft, s.W, s.PadRight)];
        }
        dx[i] = acc;
    }
}
