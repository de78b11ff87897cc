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
/// The simple kernels (one thread per output element) come first as the readable reference; the tiled
/// implicit-GEMM operands for <see cref="TiledGemm"/>, and the depthwise kernel follow (the bias gradient on a GPU is
/// <see cref="Reductions.ChannelSum"/>). Every launcher validates the shape and buffer lengths first.
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

    // ---- tiled: implicit GEMM through TiledGemm, one operand struct per pass ----

    /// <summary>
    /// Forward as <c>out[p, k] = sum_r im2col(x)[p, r] * w[k, r]</c> per group, with p = (n, oh, ow) the output
    /// pixel, r = (c, ky, kx) and k the output channel within the group; the epilogue adds the bias and the residual
    /// and applies the activation: <c>y[n, g*K/G + k, oh, ow] = act(out + b + residual)</c>.
    /// Rows are pixels, so threads adjacent in a tile read adjacent x (stride 1) and write adjacent y.
    /// </summary>
    public struct TiledForward : ITileOperands
    {
        private readonly ArrayView<float> _x, _w, _b, _res, _y;
        private readonly Geometry _s;
        private readonly Epilogue _e;

        /// <summary>x: (N,C,H,W), w: (K,C/G,KH,KW), b: (K) or a stand-in, residual: y's shape or a stand-in.</summary>
        public TiledForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> residual,
            ArrayView<float> y, ConvShape s, Epilogue e)
        {
            (_x, _w, _b, _res, _y, _s, _e) = (x, w, b, residual, y, new Geometry(s), e);
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.N * _s.OH * _s.OW;

        /// <inheritdoc/>
        public readonly int Cols => _s.KPerGroup;

        /// <inheritdoc/>
        public readonly int Depth => _s.CPerGroup * _s.Taps;

        /// <inheritdoc/>
        public readonly int Slices => _s.Groups;

        /// <inheritdoc/>
        public readonly int Splits => 1;

        /// <inheritdoc/>
        public readonly bool AAlongRows => true;

        /// <inheritdoc/>
        public readonly bool BAlongCols => false;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r) => _s.Im2col(_x, z, m, r);

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n) => _w[(z * _s.KPerGroup + n) * (_s.CPerGroup * _s.Taps) + r];

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc)
        {
            int k = z * _s.KPerGroup + n;
            int plane = _s.OH * _s.OW;
            int img = m / plane;
            int i = (img * _s.K + k) * plane + m % plane;
            float v = acc;
            if (_e.HasBias != 0)
                v += _b[k];
            if (_e.HasResidual != 0)
                v += _res[i];
            _y[i] = _e.Activate(v);
        }
    }

    /// <summary>
    /// dL/dx as <c>dx[q, c] = sum_r D[q, r] * w[r, c]</c> per group, with q = (n, ih, iw) the input pixel,
    /// r = (k, ky, kx) over the group's output channels and taps, and <c>D[q, r] = dy[n, k, oh, ow]</c> where
    /// <c>ih = oh*SH - PT + ky*DH</c> has an integer solution oh in range (zero otherwise): the gather form of
    /// <c>y[n,k,oh,ow] += x[n,c,ih,iw] * w[k,c,ky,kx]</c>, so no atomics.
    /// </summary>
    public struct TiledBackwardData : ITileOperands
    {
        private readonly ArrayView<float> _dy, _w, _dx;
        private readonly Geometry _s;

        /// <summary>dy: (N,K,OH,OW), w: (K,C/G,KH,KW), dx: (N,C,H,W).</summary>
        public TiledBackwardData(ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, ConvShape s)
        {
            (_dy, _w, _dx, _s) = (dy, w, dx, new Geometry(s));
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.N * _s.H * _s.W;

        /// <inheritdoc/>
        public readonly int Cols => _s.CPerGroup;

        /// <inheritdoc/>
        public readonly int Depth => _s.KPerGroup * _s.Taps;

        /// <inheritdoc/>
        public readonly int Slices => _s.Groups;

        /// <inheritdoc/>
        public readonly int Splits => 1;

        /// <inheritdoc/>
        public readonly bool AAlongRows => true;

        /// <inheritdoc/>
        public readonly bool BAlongCols => false;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r)
        {
            int hw = _s.H * _s.W;
            int n = m / hw, p = m % hw;
            int ih = p / _s.W, iw = p % _s.W;
            int kl = r / _s.Taps, tap = r % _s.Taps;
            int ky = tap / _s.KW, kx = tap % _s.KW;
            int th = ih + _s.PadTop - ky * _s.DilationH;
            int tw = iw + _s.PadLeft - kx * _s.DilationW;
            if (th < 0 || tw < 0 || th % _s.StrideH != 0 || tw % _s.StrideW != 0)
                return 0f;
            int oh = th / _s.StrideH, ow = tw / _s.StrideW;
            if (oh >= _s.OH || ow >= _s.OW)
                return 0f;
            return _dy[((n * _s.K + z * _s.KPerGroup + kl) * _s.OH + oh) * _s.OW + ow];
        }

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n)
        {
            int kl = r / _s.Taps, tap = r % _s.Taps;
            return _w[((z * _s.KPerGroup + kl) * _s.CPerGroup + n) * _s.Taps + tap];
        }

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc)
        {
            int hw = _s.H * _s.W;
            int img = m / hw;
            _dx[(img * _s.C + z * _s.CPerGroup + n) * hw + m % hw] = acc;
        }
    }

    /// <summary>
    /// dL/dw as <c>dw[k, q] = sum_p im2col(x)[q, p] * dy[p, k]</c> per group, with q = (c, ky, kx) the weight's
    /// position within a filter, p = (n, oh, ow) the output pixel: rows are q, so the stores of adjacent threads are
    /// adjacent in dw. The reduction (N*OH*OW, long) is cut into <see cref="Splits"/> chunks added atomically into a
    /// zeroed dw, so that layers with few weights still fill the device.
    /// </summary>
    public struct TiledBackwardWeights : ITileOperands
    {
        private readonly ArrayView<float> _x, _dy, _dw;
        private readonly Geometry _s;
        private readonly int _splits;

        /// <summary>x: (N,C,H,W), dy: (N,K,OH,OW), dw: (K,C/G,KH,KW), zeroed first when <paramref name="splits"/> &gt; 1.</summary>
        public TiledBackwardWeights(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, ConvShape s, int splits)
        {
            (_x, _dy, _dw, _s, _splits) = (x, dy, dw, new Geometry(s), splits);
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.CPerGroup * _s.Taps;

        /// <inheritdoc/>
        public readonly int Cols => _s.KPerGroup;

        /// <inheritdoc/>
        public readonly int Depth => _s.N * _s.OH * _s.OW;

        /// <inheritdoc/>
        public readonly int Slices => _s.Groups;

        /// <inheritdoc/>
        public readonly int Splits => _splits;

        /// <inheritdoc/>
        public readonly bool AAlongRows => false;

        /// <inheritdoc/>
        public readonly bool BAlongCols => false;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r) => _s.Im2col(_x, z, r, m);

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n)
        {
            int plane = _s.OH * _s.OW;
            return _dy[((r / plane) * _s.K + z * _s.KPerGroup + n) * plane + r % plane];
        }

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc)
        {
            int i = (z * _s.KPerGroup + n) * (_s.CPerGroup * _s.Taps) + m;
            if (_splits > 1)
                Atomic.Add(ref _dw[i], acc);
            else
                _dw[i] = acc;
        }
    }

    /// <summary>
    /// A conv geometry with the derived sizes computed once on the host (the kernels read them, never divide
    /// by the stride to get them), and the im2col read shared by the forward and weight-gradient operands.
    /// </summary>
    public readonly struct Geometry
    {
        /// <summary>Sizes as in <see cref="ConvShape"/>.</summary>
        public readonly int N, C, H, W, K, KH, KW, StrideH, StrideW, PadTop, PadLeft, DilationH, DilationW, Groups;

        /// <summary>Derived: output size, channels per group, taps KH*KW.</summary>
        public readonly int OH, OW, CPerGroup, KPerGroup, Taps;

        /// <summary>Copies <paramref name="s"/> and derives the rest.</summary>
        public Geometry(ConvShape s)
        {
            (N, C, H, W, K, KH, KW) = (s.N, s.C, s.H, s.W, s.K, s.KH, s.KW);
            (StrideH, StrideW, PadTop, PadLeft, DilationH, DilationW, Groups) =
                (s.StrideH, s.StrideW, s.PadTop, s.PadLeft, s.DilationH, s.DilationW, s.Groups);
            (OH, OW, CPerGroup, KPerGroup, Taps) = (s.OH, s.OW, s.CPerGroup, s.KPerGroup, s.KH * s.KW);
        }

        /// <summary><c>im2col(x)[p, r]</c> of group z: x at output pixel p = (n, oh, ow) under tap r = (c, ky, kx),
        /// zero in the padding.</summary>
        public float Im2col(ArrayView<float> x, int z, int p, int r)
        {
            int plane = OH * OW;
            int n = p / plane, q = p % plane;
            int oh = q / OW, ow = q % OW;
            int c = r / Taps, tap = r % Taps;
            int ih = oh * StrideH - PadTop + tap / KW * DilationH;
            int iw = ow * StrideW - PadLeft + tap % KW * DilationW;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                return 0f;
            return x[((n * C + z * CPerGroup + c) * H + ih) * W + iw];
        }
    }

    // ---- depthwise (C/G = 1): register strips, no shared memory ----

    /// <summary>Output pixels along ow per thread of <see cref="DepthwiseForward"/>.</summary>
    public const int DepthwiseStrip = 4;

    /// <summary>
    /// Forward of a depthwise conv (one input channel per group, K/G output channels each): each thread computes
    /// <see cref="DepthwiseStrip"/> adjacent outputs of one row, reading each weight once into a register and
    /// reusing it for the strip; the epilogue is the tiled kernels'.
    /// Index: one per strip, N*K*OH*ceil(OW/strip).
    /// </summary>
    public static void DepthwiseForward(
        Index1D i, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> residual,
        ArrayView<float> y, Geometry s, Epilogue e)
    {
        int strips = (s.OW + DepthwiseStrip - 1) / DepthwiseStrip;
        int ow0 = i % strips * DepthwiseStrip;
        int t = i / strips;
        int oh = t % s.OH;
        t /= s.OH;
        int k = t % s.K;
        int n = t / s.K;
        int ci = k / s.KPerGroup;
        int xBase = (n * s.C + ci) * s.H * s.W;
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
        int ih0 = oh * s.StrideH - s.PadTop;
        for (int ky = 0; ky < s.KH; ky++)
        {
            int ih = ih0 + ky * s.DilationH;
            if (ih < 0 || ih >= s.H)
                continue;
            int row = xBase + ih * s.W;
            for (int kx = 0; kx < s.KW; kx++)
            {
                float wv = w[(k * s.KH + ky) * s.KW + kx];
                int iw = ow0 * s.StrideW - s.PadLeft + kx * s.DilationW;
                a0 += DepthwiseTap(x, row, iw, s.W) * wv;
                a1 += DepthwiseTap(x, row, iw + s.StrideW, s.W) * wv;
                a2 += DepthwiseTap(x, row, iw + 2 * s.StrideW, s.W) * wv;
                a3 += DepthwiseTap(x, row, iw + 3 * s.StrideW, s.W) * wv;
            }
        }
        int yBase = ((n * s.K + k) * s.OH + oh) * s.OW + ow0;
        float bias = e.HasBias != 0 ? b[k] : 0f;
        DepthwiseStore(y, residual, e, yBase, bias + a0, ow0 < s.OW);
        DepthwiseStore(y, residual, e, yBase + 1, bias + a1, ow0 + 1 < s.OW);
        DepthwiseStore(y, residual, e, yBase + 2, bias + a2, ow0 + 2 < s.OW);
        DepthwiseStore(y, residual, e, yBase + 3, bias + a3, ow0 + 3 < s.OW);
    }

    private static float DepthwiseTap(ArrayView<float> x, int row, int iw, int width) =>
        iw >= 0 && iw < width ? x[row + iw] : 0f;

    private static void DepthwiseStore(ArrayView<float> y, ArrayView<float> residual, Epilogue e, int i, float v, bool inside)
    {
        if (!inside)
            return;
        if (e.HasResidual != 0)
            v += residual[i];
        y[i] = e.Activate(v);
    }

    /// <summary>
    /// dL/dw of a depthwise conv with one group per weight element (k, ky, kx): the reduction over N*OH*OW is long
    /// and the weights are few, so each group's threads take strided shares and ILGPU.Algorithms' group reduction adds
    /// them. <c>dw[k,0,ky,kx] = sum_{n,oh,ow} dy[n,k,oh,ow] * x[n, k/(K/G), oh*SH - PT + ky*DH, ow*SW - PL + kx*DW]</c>.
    /// Grid: K*KH*KW groups of any size.
    /// </summary>
    public static void DepthwiseBackwardWeights(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, Geometry s)
    {
        int i = Grid.IdxX;
        int kx = i % s.KW;
        int t = i / s.KW;
        int ky = t % s.KH;
        int k = t / s.KH;
        int ci = k / s.KPerGroup;
        int plane = s.OH * s.OW;
        int count = s.N * plane;
        float acc = 0f;
        for (int j = Group.IdxX; j < count; j += Group.DimX)
        {
            int n = j / plane, q = j % plane;
            int ih = q / s.OW * s.StrideH - s.PadTop + ky * s.DilationH;
            int iw = q % s.OW * s.StrideW - s.PadLeft + kx * s.DilationW;
            if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                acc += dy[(n * s.K + k) * plane + q] * x[((n * s.C + ci) * s.H + ih) * s.W + iw];
        }
        float sum = ILGPU.Algorithms.GroupExtensions.Reduce<float, ILGPU.Algorithms.ScanReduceOperations.AddFloat>(acc);
        if (Group.IsFirstThread)
            dw[i] = sum;
    }
}
