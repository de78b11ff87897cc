using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Max, average and global-average pooling on the managed CPU backend, NCHW, one task per (n, c) plane.
/// Memory-bound: plain loops, no SIMD. Conventions as in <c>kernels/Pooling.cs</c>: max routes to the first
/// maximum in row-major window order (argmax = ih*W + iw within the plane, -1 for a window with no input
/// element, which outputs 0), a NaN wins and is kept; average pooling divides by the window clipped to the
/// padded input (count_include_pad) or to the input (PyTorch's divisor rule).
/// <code>x, dx: (N, C, H, W)   y, dy, argmax: (N, C, OH, OW)</code>
/// </summary>
internal static unsafe class CpuPooling
{
    /// <summary>Max-pool forward with argmax.</summary>
    public static void MaxForward(float* x, float* y, int* argmax, PoolShape s)
    {
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * planeOut * s.KH * s.KW, nc =>
        {
            float* xp = x + (long)nc * planeIn;
            long o = (long)nc * planeOut;
            for (int oh = 0; oh < s.OH; oh++)
            for (int ow = 0; ow < s.OW; ow++, o++)
            {
                int ih0 = oh * s.StrideH - s.PadTop, iw0 = ow * s.StrideW - s.PadLeft;
                float best = 0f;
                int at = -1;
                for (int ky = 0; ky < s.KH; ky++)
                {
                    int ih = ih0 + ky * s.DilationH;
                    if ((uint)ih >= (uint)s.H)
                        continue;
                    for (int kx = 0; kx < s.KW; kx++)
                    {
                        int iw = iw0 + kx * s.DilationW;
                        if ((uint)iw >= (uint)s.W)
                            continue;
                        float v = xp[ih * s.W + iw];
                        // Strictly greater keeps the first maximum; a NaN is taken and then kept (PyTorch).
                        if (at < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                        {
                            best = v;
                            at = ih * s.W + iw;
                        }
                    }
                }
                y[o] = at < 0 ? 0f : best;
                argmax[o] = at;
            }
        });
    }

    /// <summary>Max-pool backward: dx[argmax[o]] += dy[o] within each plane.</summary>
    public static void MaxBackward(float* dy, int* argmax, float* dx, PoolShape s)
    {
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * (planeIn + planeOut), nc =>
        {
            float* d = dx + (long)nc * planeIn;
            new Span<float>(d, planeIn).Clear();
            long o0 = (long)nc * planeOut;
            for (int o = 0; o < planeOut; o++)
            {
                int at = argmax[o0 + o];
                if (at >= 0)
                    d[at] += dy[o0 + o];
            }
        });
    }

    /// <summary>The window [hs, he) x [ws, we) clipped to the input, and its divisor.</summary>
    private static (int Hs, int He, int Ws, int We, int Divisor) AvgWindow(PoolShape s, int oh, int ow)
    {
        int hs = oh * s.StrideH - s.PadTop, ws = ow * s.StrideW - s.PadLeft;
        int he = Math.Min(hs + s.KH, s.H + s.PadBottom), we = Math.Min(ws + s.KW, s.W + s.PadRight);
        int area = (he - hs) * (we - ws);
        hs = Math.Max(hs, 0);
        ws = Math.Max(ws, 0);
        he = Math.Min(he, s.H);
        we = Math.Min(we, s.W);
        return (hs, he, ws, we, s.CountIncludePad ? area : (he - hs) * (we - ws));
    }

    /// <summary>Average-pool forward.</summary>
    public static void AvgForward(float* x, float* y, PoolShape s)
    {
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * planeOut * s.KH * s.KW, nc =>
        {
            float* xp = x + (long)nc * planeIn;
            float* yp = y + (long)nc * planeOut;
            for (int oh = 0; oh < s.OH; oh++)
            for (int ow = 0; ow < s.OW; ow++)
            {
                var (hs, he, ws, we, div) = AvgWindow(s, oh, ow);
                float acc = 0f;
                for (int ih = hs; ih < he; ih++)
                for (int iw = ws; iw < we; iw++)
                    acc += xp[ih * s.W + iw];
                yp[oh * s.OW + ow] = div > 0 ? acc / div : 0f;
            }
        });
    }

    /// <summary>Average-pool backward: each dy spread evenly over its window's input elements.</summary>
    public static void AvgBackward(float* dy, float* dx, PoolShape s)
    {
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * planeOut * s.KH * s.KW, nc =>
        {
            float* d = dx + (long)nc * planeIn;
            float* g = dy + (long)nc * planeOut;
            new Span<float>(d, planeIn).Clear();
            for (int oh = 0; oh < s.OH; oh++)
            for (int ow = 0; ow < s.OW; ow++)
            {
                var (hs, he, ws, we, div) = AvgWindow(s, oh, ow);
                if (div <= 0)
                    continue;
                float v = g[oh * s.OW + ow] / div;
                for (int ih = hs; ih < he; ih++)
                for (int iw = ws; iw < we; iw++)
                    d[ih * s.W + iw] += v;
            }
        });
    }

    /// <summary>y[i] = mean of plane i.</summary>
    public static void GlobalAvgForward(float* x, float* y, int planes, int plane)
    {
        CpuConv.For(planes, (long)planes * plane, i => y[i] = (float)(CpuElementwise.Sum(x + (long)i * plane, plane) / plane));
    }

    /// <summary>dx[i, :] = dy[i] / plane.</summary>
    public static void GlobalAvgBackward(float* dy, float* dx, int planes, int plane)
    {
        CpuConv.For(planes, (long)planes * plane, i => new Span<float>(dx + (long)i * plane, plane).Fill(dy[i] / plane));
    }
}
