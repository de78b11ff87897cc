using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
    /// <summary>
    /// Max-pool values without routing for the 3x3, stride-2, undilated windows with pads of at most 1 (ResNet's
    /// stem pool), AVX-512: per output row the three input rows' maximum is taken first (contiguous vectors), then
    /// each window's three columns of it (even and odd lanes of two loads), the padding as -infinity. A NaN in a
    /// window wins, as in <see cref="MaxForward"/>; where a window holds both +0 and -0 the sign may differ from its
    /// first-in-scan-order rule. A row whose length is not a multiple of 16 ends with one more vector overlapping the
    /// last (the same values again), not a scalar tail (ResNet's 56 outputs a row: 8 of them were scalar; 64x112x112,
    /// alternating in one process on the 2-core Zen 4 VM: 0.14-0.19 ms against 0.25 with the input in cache, 0.27 against
    /// 0.38-0.48 after a 64 MB sweep). False (nothing
    /// written) for any other geometry or without AVX-512.
    /// </summary>
    public static bool MaxValues(float* x, float* y, PoolShape s)
    {
        if (!ValuesPath(s))
            return false;
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * planeOut * 9, nc =>
        {
            int len = ValuesRowScratch(s.OW);
            float* m = stackalloc float[len];
            new Span<float>(m, len).Fill(float.NegativeInfinity);
            float* xp = x + (long)nc * planeIn, yp = y + (long)nc * planeOut;
            for (int oh = 0; oh < s.OH; oh++)
            {
                int ih0 = Math.Max(0, 2 * oh - s.PadTop), ih1 = Math.Min(s.H, 2 * oh - s.PadTop + 3);
                float* r0 = xp + (long)ih0 * s.W;
                ValuesRow(r0, r0 + s.W, r0 + 2 * s.W, ih1 - ih0, s.W, s.PadLeft, s.OW, yp + (long)oh * s.OW, m);
            }
        });
        return true;
    }

    /// <summary>Whether <see cref="MaxValues"/> takes the layer (the last two tests: a window with no input element,
    /// which outputs 0).</summary>
    internal static bool ValuesPath(PoolShape s) =>
        Avx512F.IsSupported && s.KH == 3 && s.KW == 3 && s.StrideH == 2 && s.StrideW == 2 && s.DilationH == 1
        && s.DilationW == 1 && s.PadTop <= 1 && s.PadLeft <= 1 && s.PadBottom <= 1 && s.PadRight <= 1 && s.H >= 3 && s.W >= 3
        && 2 * (s.OH - 1) - s.PadTop < s.H && 2 * (s.OW - 1) - s.PadLeft < s.W;

    /// <summary>Floats of the scratch row <see cref="ValuesRow"/> takes for <paramref name="ow"/> outputs.</summary>
    internal static int ValuesRowScratch(int ow) => PackedGemm.RoundUp(2 * ow + 3 + 32, 16);

    /// <summary>
    /// One output row of <see cref="MaxValues"/>' windows (3x3, stride 2): the maximum over the window's
    /// <paramref name="rows"/> (1-3) input rows <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/> (in
    /// that order; those past <paramref name="rows"/> are not read) of <paramref name="w"/> pixels is taken first
    /// (contiguous vectors, into <paramref name="m"/>, <see cref="ValuesRowScratch"/> floats), then each window's three
    /// columns of it, <paramref name="pl"/> columns of left padding as -infinity, into the <paramref name="ow"/> outputs
    /// at <paramref name="yr"/>. The caller fills <paramref name="m"/> with -infinity once; each row writes
    /// m[1 .. w] only. The fused stem (<see cref="PlanarConv.ForwardMaxPool"/>) calls it on rows it keeps in
    /// a ring buffer.
    /// </summary>
    internal static void ValuesRow(float* a, float* b, float* c, int rows, int w, int pl, int ow, float* yr, float* m)
    {
        // Row maxima at m[1 .. w], -infinity at m[0] and past the row (the left and right padding).
        int iw = 0;
        if (w >= 16)
        {
            // The last vector starts at w - 16, overlapping the one before it with the same maxima: no scalar tail.
            for (; iw < w; iw += 16)
            {
                int at = Math.Min(iw, w - 16);
                var v = Vector512.Load(a + at);
                if (rows > 1)
                    v = Max(v, Vector512.Load(b + at));
                if (rows > 2)
                    v = Max(v, Vector512.Load(c + at));
                v.Store(m + 1 + at);
            }
        }
        for (; iw < w; iw++)
        {
            float v = a[iw];
            if (rows > 1)
                v = Max(v, b[iw]);
            if (rows > 2)
                v = Max(v, c[iw]);
            m[1 + iw] = v;
        }
        // Window o covers padded columns 2o .. 2o+2, i.e. m[2o + 1 - pl ..].
        float* mw = m + 1 - pl;
        int o = 0;
        if (ow >= 16)
        {
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            // As above: the last 16 outputs overlap those before them with the same values.
            for (; o < ow; o += 16)
            {
                float* p = mw + 2 * Math.Min(o, ow - 16);
                var lo = Vector512.Load(p);
                var hi = Vector512.Load(p + 16);
                var ev = Avx512F.PermuteVar16x32x2(lo, even, hi);
                var od = Avx512F.PermuteVar16x32x2(lo, odd, hi);
                var third = Avx512F.PermuteVar16x32x2(Vector512.Load(p + 2), even, Vector512.Load(p + 18));
                Max(Max(ev, od), third).Store(yr + Math.Min(o, ow - 16));
            }
        }
        for (; o < ow; o++)
            yr[o] = Max(Max(mw[2 * o], mw[2 * o + 1]), mw[2 * o + 2]);
    }

    /// <summary>The larger of two values, NaN if either is (<see cref="MaxForward"/>'s rule without the order).</summary>
    private static float Max(float a, float b) => a > b || float.IsNaN(a) ? a : b;

    private static Vector512<float> Max(Vector512<float> a, Vector512<float> b) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(a, b) | ~Vector512.Equals(a, a), a, b);

    /// <summary>Max-pool forward with argmax. Windows that lie wholly inside the input take a loop without bounds
    /// tests; the scan order and tie rule are the same on both paths.</summary>
    public static void MaxForward(float* x, float* y, int* argmax, PoolShape s)
    {
        int planeIn = s.H * s.W, planeOut = s.OH * s.OW;
        CpuConv.For(s.N * s.C, (long)s.N * s.C * planeOut * s.KH * s.KW, nc =>
        {
            int h = s.H, w = s.W, oh1 = s.OH, ow1 = s.OW, kh1 = s.KH, kw1 = s.KW;
            int sh = s.StrideH, sw = s.StrideW, pt = s.PadTop, pl = s.PadLeft, dh = s.DilationH, dw = s.DilationW;
            // Output columns whose windows stay inside a row: iw0 >= 0 and iw0 + (KW-1)*DW < W.
            int owLo = Math.Min(ow1, (pl + sw - 1) / sw);
            int owHi = Math.Max(owLo, Math.Min(ow1, (w - 1 - (kw1 - 1) * dw + pl) / sw + 1));
            if (w - 1 - (kw1 - 1) * dw + pl < 0)
                owHi = owLo;
            float* xp = x + (long)nc * planeIn;
            float* yp = y + (long)nc * planeOut;
            int* ap = argmax + (long)nc * planeOut;
            for (int oh = 0; oh < oh1; oh++)
            {
                int ih0 = oh * sh - pt;
                bool rowsInside = ih0 >= 0 && ih0 + (kh1 - 1) * dh < h;
                int ow = 0;
                // Stride 1 or 2, no dilation: sixteen windows at once from contiguous loads (stride 2 takes the
                // even lanes of two loads); one float past the last tap is read, so the block stops a column early.
                int owHi16 = Math.Max(owLo, Math.Min(owHi, (w - 2 - (kw1 - 1) + pl) / Math.Max(sw, 1) + 1));
                if (rowsInside && Avx512F.IsSupported && dw == 1 && sw is 1 or 2 && owHi16 - owLo >= 16
                    && w - 2 - (kw1 - 1) + pl >= 0)
                {
                    for (; ow < owLo; ow++)
                        MaxWindow(xp, yp, ap, oh, ow, s);
                    var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) * sw;
                    var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                    for (; ow < owHi16; ow += 16)
                    {
                        ow = Math.Min(ow, owHi16 - 16);
                        int iw0 = ow * sw - pl;
                        Vector512<float> best = default;
                        Vector512<int> at = default;
                        for (int ky = 0; ky < kh1; ky++)
                        {
                            int rowAt = (ih0 + ky * dh) * w + iw0;
                            for (int kx = 0; kx < kw1; kx++)
                            {
                                float* p = xp + rowAt + kx;
                                var v = sw == 1 ? Vector512.Load(p)
                                    : Avx512F.PermuteVar16x32x2(Vector512.Load(p), even, Vector512.Load(p + 16));
                                var idx = lane + Vector512.Create(rowAt + kx);
                                if (ky == 0 && kx == 0)
                                {
                                    best = v;
                                    at = idx;
                                    continue;
                                }
                                var take = Vector512.GreaterThan(v, best)
                                           | (~Vector512.Equals(v, v) & Vector512.Equals(best, best));
                                best = Vector512.ConditionalSelect(take, v, best);
                                at = Vector512.ConditionalSelect(take.AsInt32(), idx, at);
                            }
                        }
                        best.Store(yp + oh * ow1 + ow);
                        at.Store(ap + oh * ow1 + ow);
                    }
                }
                else if (rowsInside && Avx2.IsSupported)
                {
                    // Eight interior windows at once, branch-free (random data mispredicts the scalar compares).
                    for (; ow < owLo; ow++)
                        MaxWindow(xp, yp, ap, oh, ow, s);
                    var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * sw;
                    for (; ow < owHi && owHi - owLo >= 8; ow += 8)
                    {
                        // The last block overlaps the one before it so the row ends without a scalar tail.
                        ow = Math.Min(ow, owHi - 8);
                        var col = lane + Vector256.Create(ow * sw - pl);
                        Vector256<float> best = default;
                        Vector256<int> at = default;
                        for (int ky = 0; ky < kh1; ky++)
                        {
                            var rowIdx = col + Vector256.Create((ih0 + ky * dh) * w);
                            for (int kx = 0; kx < kw1; kx++)
                            {
                                var idx = rowIdx + Vector256.Create(kx * dw);
                                var v = Avx2.GatherVector256(xp, idx, 4);
                                if (ky == 0 && kx == 0)
                                {
                                    best = v;
                                    at = idx;
                                    continue;
                                }
                                var take = Vector256.GreaterThan(v, best)
                                           | (~Vector256.Equals(v, v) & Vector256.Equals(best, best));
                                best = Vector256.ConditionalSelect(take, v, best);
                                at = Vector256.ConditionalSelect(take.AsInt32(), idx, at);
                            }
                        }
                        best.Store(yp + oh * ow1 + ow);
                        at.Store(ap + oh * ow1 + ow);
                    }
                }
                for (; ow < ow1; ow++)
                {
                    int iw0 = ow * sw - pl;
                    float best = 0f;
                    int at = -1;
                    if (rowsInside && ow >= owLo && ow < owHi)
                    {
                        at = ih0 * w + iw0;
                        best = xp[at];
                        for (int ky = 0; ky < kh1; ky++)
                        {
                            int rowAt = (ih0 + ky * dh) * w + iw0;
                            float* row = xp + rowAt;
                            for (int kx = ky == 0 ? 1 : 0; kx < kw1; kx++)
                            {
                                float v = row[kx * dw];
                                if (v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                                {
                                    best = v;
                                    at = rowAt + kx * dw;
                                }
                            }
                        }
                        yp[oh * ow1 + ow] = best;
                        ap[oh * ow1 + ow] = at;
                        continue;
                    }
                    for (int ky = 0; ky < kh1; ky++)
                    {
                        int ih = ih0 + ky * dh;
                        if ((uint)ih >= (uint)h)
                            continue;
                        for (int kx = 0; kx < kw1; kx++)
                        {
                            int iw = iw0 + kx * dw;
                            if ((uint)iw >= (uint)w)
                                continue;
                            float v = xp[ih * w + iw];
                            // Strictly greater keeps the first maximum; a NaN is taken and then kept (PyTorch).
                            if (at < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                            {
                                best = v;
                                at = ih * w + iw;
                            }
                        }
                    }
                    yp[oh * ow1 + ow] = at < 0 ? 0f : best;
                    ap[oh * ow1 + ow] = at;
                }
            }
        });
    }

    /// <summary>One output of the max pool, bounds-tested (the border windows).</summary>
    private static void MaxWindow(float* xp, float* yp, int* ap, int oh, int ow, PoolShape s)
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
                if (at < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                {
                    best = v;
                    at = ih * s.W + iw;
                }
            }
        }
        int o = oh * (s.OW) + ow;
        yp[o] = at < 0 ? 0f : best;
        ap[o] = at;
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
                var (hs, he, ws, we, div) = s.AvgWindow(oh, ow);
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
                var (hs, he, ws, we, div) = s.AvgWindow(oh, ow);
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
