using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// 2-D convolution, NCHW, with stride, asymmetric padding, dilation and groups: the forward kernel, then
/// the three first-order derivative kernels (input, weights, bias). Conv is linear in x and in w, so its
/// higher-order Taylor coefficients reuse the same kernels.
/// <code>
/// x: (N, C, H, W)   w: (K, C/G, KH, KW)   b: (K)   y: (N, K, OH, OW)
/// y[n,k,oh,ow] = b[k] + sum_{c,ky,kx} x[n, g*C/G + c, oh*SH - PT + ky*DH, ow*SW - PL + kx*DW] * w[k,c,ky,kx]
/// </code>
/// with g = k / (K/G) and out-of-range x read as zero (padding).
/// One thread per output element; every launcher validates the shape and buffer lengths first.
/// </summary>
internal static class Conv2d
{
    /// <summary>Forward. Index: one per element of y (N*K*OH*OW). <paramref name="hasBias"/> 0 ignores b.</summary>
    public static void Forward(
        Index1D i, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        ConvShape s, int hasBias)
    {
        int oh_ = s.OH, ow_ = s.OW, cpg = s.CPerGroup;
        int ow = i % ow_;
        int t = i / ow_;
        int oh = t % oh_;
        t /= oh_;
        int k = t % s.K;
        int n = t / s.K;
        int g = k / s.KPerGroup;
        float acc = hasBias != 0 ? b[k] : 0f;
        int ih0 = oh * s.StrideH - s.PadTop;
        int iw0 = ow * s.StrideW - s.PadLeft;
        for (int c = 0; c < cpg; c++)
        {
            int xBase = (n * s.C + g * cpg + c) * s.H * s.W;
            int wBase = (k * cpg + c) * s.KH * s.KW;
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
                    acc += x[xBase + ih * s.W + iw] * w[wBase + ky * s.KW + kx];
                }
            }
        }
        y[i] = acc;
    }

    /// <summary>
    /// dL/dx, a transposed convolution written as a gather (no atomics): for
    /// <c>y[n,k,oh,ow] += x[n,ci,ih,iw] * w[k,c,ky,kx]</c> with <c>ih = oh*SH - PT + ky*DH</c>,
    /// <c>dx[n,ci,ih,iw] = sum_{k in group, ky, kx} dy[n,k,oh,ow] * w[k,c,ky,kx]</c> over the (oh, ow) that solve it.
    /// Index: one per element of dx (N*C*H*W).
    /// </summary>
    public static void BackwardData(
        Index1D i, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, ConvShape s)
    {
        int oh_ = s.OH, ow_ = s.OW, cpg = s.CPerGroup, kpg = s.KPerGroup;
        int iw = i % s.W;
        int t = i / s.W;
        int ih = t % s.H;
        t /= s.H;
        int ci = t % s.C;
        int n = t / s.C;
        int g = ci / cpg;
        int c = ci % cpg;
        float acc = 0f;
        for (int kl = 0; kl < kpg; kl++)
        {
            int k = g * kpg + kl;
            int dyBase = (n * s.K + k) * oh_ * ow_;
            int wBase = (k * cpg + c) * s.KH * s.KW;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int th = ih + s.PadTop - ky * s.DilationH;
                if (th < 0 || th % s.StrideH != 0)
                    continue;
                int oh = th / s.StrideH;
                if (oh >= oh_)
                    continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int tw = iw + s.PadLeft - kx * s.DilationW;
                    if (tw < 0 || tw % s.StrideW != 0)
                        continue;
                    int ow = tw / s.StrideW;
                    if (ow >= ow_)
                        continue;
                    acc += dy[dyBase + oh * ow_ + ow] * w[wBase + ky * s.KW + kx];
                }
            }
        }
        dx[i] = acc;
    }

    /// <summary>
    /// dL/dw: <c>dw[k,c,ky,kx] = sum_{n,oh,ow} dy[n,k,oh,ow] * x[n, g*C/G + c, oh*SH - PT + ky*DH, ow*SW - PL + kx*DW]</c>.
    /// Index: one per weight element (K * C/G * KH * KW).
    /// </summary>
    public static void BackwardWeights(
        Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, ConvShape s)
    {
        int oh_ = s.OH, ow_ = s.OW, cpg = s.CPerGroup;
        int kx = i % s.KW;
        int t = i / s.KW;
        int ky = t % s.KH;
        t /= s.KH;
        int c = t % cpg;
        int k = t / cpg;
        int ci = k / s.KPerGroup * cpg + c;
        float acc = 0f;
        for (int n = 0; n < s.N; n++)
        {
            int xBase = (n * s.C + ci) * s.H * s.W;
            int dyBase = (n * s.K + k) * oh_ * ow_;
            for (int oh = 0; oh < oh_; oh++)
            {
                int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH;
                if (ih < 0 || ih >= s.H)
                    continue;
                for (int ow = 0; ow < ow_; ow++)
                {
                    int iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                    if (iw < 0 || iw >= s.W)
                        continue;
                    acc += dy[dyBase + oh * ow_ + ow] * x[xBase + ih * s.W + iw];
                }
            }
        }
        dw[i] = acc;
    }

    /// <summary>dL/db: <c>db[k] = sum_{n,oh,ow} dy[n,k,oh,ow]</c>. Index: one per output channel (K).</summary>
    public static void BackwardBias(Index1D i, ArrayView<float> dy, ArrayView<float> db, ConvShape s)
    {
        int plane = s.OH * s.OW;
        float acc = 0f;
        for (int n = 0; n < s.N; n++)
        {
            int baseIndex = (n * s.K + i) * plane;
            for (int j = 0; j < plane; j++)
                acc += dy[baseIndex + j];
        }
        db[i] = acc;
    }
}
