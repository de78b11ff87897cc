using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Max and average pooling, NCHW, with stride, asymmetric padding, dilation (max only) and ceil mode:
/// forward kernels, then their first-order backward kernels written as gathers (no atomics).
/// <code>x: (N, C, H, W)   y, argmax: (N, C, OH, OW)   window origin (oh*SH - PT, ow*SW - PL)</code>
/// Kink convention for max: the gradient goes to the first maximum in row-major scan order of the window
/// (PyTorch's rule); argmax stores its flat index ih*W + iw within the (n, c) plane. Max-pool is piecewise
/// linear: higher-order Taylor coefficients are routed by the same argmax.
/// </summary>
internal static class Pooling
{
    /// <summary>Max-pool forward: y = max over the window (padding never wins), argmax = its first position.
    /// A window holding no input element (possible only with dilation) gives y = 0 and argmax = -1.
    /// Index: one per element of y.</summary>
    public static void MaxForward(
        Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax, PoolShape s)
    {
        int oh_ = s.OH, ow_ = s.OW;
        int ow = i % ow_;
        int t = i / ow_;
        int oh = t % oh_;
        int nc = t / oh_;
        int xBase = nc * s.H * s.W;
        int ih0 = oh * s.StrideH - s.PadTop;
        int iw0 = ow * s.StrideW - s.PadLeft;
        float best = 0f;
        int bestIndex = -1;
        for (int ky = 0; ky < s.KH; ky++)
        {
            int ih = ih0 + ky * s.DilationH;
            if (ih < 0 || ih >= s.H)
                continue;
            for (int kx = 0; kx < s.KW; kx++)
            {
                int iw = iw0 + kx * s.DilationW;
                if (iw < 0 || iw >= s.W)
                    continue;
                float v = x[xBase + ih * s.W + iw];
                // Strictly greater keeps the first maximum; a NaN is taken and then kept, as PyTorch does.
#pragma warning disable CS1718 // x != x is the NaN test that compiles on every ILGPU backend
                if (bestIndex < 0 || v > best || (v != v && best == best))
#pragma warning restore CS1718
                {
                    best = v;
                    bestIndex = ih * s.W + iw;
                }
            }
        }
        y[i] = bestIndex < 0 ? 0f : best;
        argmax[i] = bestIndex;
    }

    /// <summary>
    /// Max-pool backward: for <c>y[o] = x[argmax[o]]</c>, <c>dx[p] = sum_{o : argmax[o] = p} dy[o]</c> over the
    /// windows that can contain p. Index: one per element of dx.
    /// </summary>
    public static void MaxBackward(
        Index1D i, ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx, PoolShape s)
    {
        int oh_ = s.OH, ow_ = s.OW;
        int iw = i % s.W;
        int t = i / s.W;
        int ih = t % s.H;
        int nc = t / s.H;
        int p = ih * s.W + iw;
        int ohLo = FirstWindow(ih + s.PadTop - (s.KH - 1) * s.DilationH, s.StrideH);
        int ohHi = IntMin((ih + s.PadTop) / s.StrideH, oh_ - 1);
        int owLo = FirstWindow(iw + s.PadLeft - (s.KW - 1) * s.DilationW, s.StrideW);
        int owHi = IntMin((iw + s.PadLeft) / s.StrideW, ow_ - 1);
        int oBase = nc * oh_ * ow_;
        float acc = 0f;
        for (int oh = ohLo; oh <= ohHi; oh++)
        {
            for (int ow = owLo; ow <= owHi; ow++)
            {
                int o = oBase + oh * ow_ + ow;
                if (argmax[o] == p)
                    acc += dy[o];
            }
        }
        dx[i] = acc;
    }

    /// <summary>
    /// Max-pool Taylor coefficient of order k &gt;= 1: the routing of the order-0 input, applied to the order-k
    /// input, <c>y_k[o] = x_k[argmax[o]]</c> (0 for an empty window). Max-pool is piecewise linear; at a tie the
    /// first maximum is kept, the same convention as the backward pass. Index: one per element of y.
    /// </summary>
    public static void MaxRoute(Index1D i, ArrayView<float> x, ArrayView<int> argmax, ArrayView<float> y, PoolShape s)
    {
        int a = argmax[i];
        y[i] = a < 0 ? 0f : x[i / (s.OH * s.OW) * s.H * s.W + a];
    }

    /// <summary>
    /// Average-pool forward (no dilation). Window rows [hs, he) with hs = oh*SH - PT and he = min(hs + KH, H + PB);
    /// with <c>countIncludePad</c> the divisor is the window area clipped to the padded input (PyTorch's rule),
    /// otherwise the number of input elements inside it. Index: one per element of y.
    /// </summary>
    public static void AvgForward(Index1D i, ArrayView<float> x, ArrayView<float> y, PoolShape s)
    {
        int oh_ = s.OH, ow_ = s.OW;
        int ow = i % ow_;
        int t = i / ow_;
        int oh = t % oh_;
        int nc = t / oh_;
        int hs = oh * s.StrideH - s.PadTop;
        int ws = ow * s.StrideW - s.PadLeft;
        int he = IntMin(hs + s.KH, s.H + s.PadBottom);
        int we = IntMin(ws + s.KW, s.W + s.PadRight);
        int area = (he - hs) * (we - ws);
        hs = IntMax(hs, 0);
        ws = IntMax(ws, 0);
        he = IntMin(he, s.H);
        we = IntMin(we, s.W);
        int xBase = nc * s.H * s.W;
        float acc = 0f;
        for (int ih = hs; ih < he; ih++)
        {
            for (int iw = ws; iw < we; iw++)
                acc += x[xBase + ih * s.W + iw];
        }
        int divisor = s.CountIncludePad ? area : (he - hs) * (we - ws);
        y[i] = divisor > 0 ? acc / divisor : 0f;
    }

    /// <summary>
    /// Average-pool backward: for <c>y[o] = sum_{p in window(o)} x[p] / divisor(o)</c>,
    /// <c>dx[p] = sum_{o : p in window(o)} dy[o] / divisor(o)</c>. Index: one per element of dx.
    /// </summary>
    public static void AvgBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, PoolShape s)
    {
        int oh_ = s.OH, ow_ = s.OW;
        int iw = i % s.W;
        int t = i / s.W;
        int ih = t % s.H;
        int nc = t / s.H;
        int ohLo = FirstWindow(ih + s.PadTop - (s.KH - 1), s.StrideH);
        int ohHi = IntMin((ih + s.PadTop) / s.StrideH, oh_ - 1);
        int owLo = FirstWindow(iw + s.PadLeft - (s.KW - 1), s.StrideW);
        int owHi = IntMin((iw + s.PadLeft) / s.StrideW, ow_ - 1);
        int oBase = nc * oh_ * ow_;
        float acc = 0f;
        for (int oh = ohLo; oh <= ohHi; oh++)
        {
            int hs = oh * s.StrideH - s.PadTop;
            int he = IntMin(hs + s.KH, s.H + s.PadBottom);
            for (int ow = owLo; ow <= owHi; ow++)
            {
                int ws = ow * s.StrideW - s.PadLeft;
                int we = IntMin(ws + s.KW, s.W + s.PadRight);
                int divisor = s.CountIncludePad
                    ? (he - hs) * (we - ws)
                    : (IntMin(he, s.H) - IntMax(hs, 0)) * (IntMin(we, s.W) - IntMax(ws, 0));
                if (divisor > 0)
                    acc += dy[oBase + oh * ow_ + ow] / divisor;
            }
        }
        dx[i] = acc;
    }

    /// <summary>Smallest window index o &gt;= 0 with o * stride &gt;= numerator (ceil division, clamped at 0).</summary>
    private static int FirstWindow(int numerator, int stride) =>
        numerator <= 0 ? 0 : (numerator + stride - 1) / stride;

    private static int IntMin(int a, int b) => a < b ? a : b;

    private static int IntMax(int a, int b) => a > b ? a : b;
}
