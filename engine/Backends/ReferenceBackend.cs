using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>
/// The oracle: straight loops in double precision, written from the operator definitions and never
/// optimized. Every fast kernel is tested against it, and gradient checks by finite differences run on it.
/// Readable on purpose, for people studying the algorithms.
/// </summary>
internal sealed partial class ReferenceBackend : Backend
{
    /// <inheritdoc/>
    public override string Name => "reference";

    /// <inheritdoc/>
    public override string DeviceDescription => "reference loops in double precision (host CPU, one thread)";

    /// <summary>Copies double-precision host data into a new tensor (no rounding to float).</summary>
    public Tensor UploadDouble(ReadOnlySpan<double> data, params int[] shape)
    {
        var t = Allocate(shape);
        if (data.Length != t.Length)
        {
            t.Dispose();
            throw new ArgumentException($"upload: {data.Length} values for {t.ShapeText}");
        }
        data.CopyTo(D(t));
        return t;
    }

    /// <summary>The tensor's values in double precision.</summary>
    public static double[] DownloadDouble(Tensor t) => (double[])D(t).Clone();

    /// <summary>Direct access to the double storage (tests perturb single elements through it).</summary>
    public static double[] D(Tensor t) => ((Storage)t.Storage).Data;

    private static int[] I(Tensor t) => ((IndexStorage)t.Storage).Data;

    private sealed class Storage(int length) : TensorStorage
    {
        public double[] Data { get; } = new double[length];
    }

    private sealed class IndexStorage(int length) : TensorStorage
    {
        public int[] Data { get; } = new int[length];
    }

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(int length, ElementType type) =>
        type == ElementType.Int32 ? new IndexStorage(length) : new Storage(length);

    /// <inheritdoc/>
    protected override void Write(TensorStorage storage, ReadOnlySpan<float> data)
    {
        var d = ((Storage)storage).Data;
        for (int i = 0; i < data.Length; i++)
            d[i] = data[i];
    }

    /// <inheritdoc/>
    protected override float[] Read(TensorStorage storage, int length)
    {
        var d = ((Storage)storage).Data;
        var r = new float[length];
        for (int i = 0; i < length; i++)
            r[i] = (float)d[i];
        return r;
    }

    /// <inheritdoc/>
    protected override void Conv2dCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        double[] X = D(x), Wt = D(w), Y = D(y);
        double[]? B = b == null ? null : D(b);
        int cpg = s.CPerGroup, kpg = s.KPerGroup;
        for (int n = 0; n < s.N; n++)
        for (int k = 0; k < s.K; k++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            double acc = B?[k] ?? 0;
            int g = k / kpg;
            for (int c = 0; c < cpg; c++)
            for (int ky = 0; ky < s.KH; ky++)
            for (int kx = 0; kx < s.KW; kx++)
            {
                int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH;
                int iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                    acc += X[((n * s.C + g * cpg + c) * s.H + ih) * s.W + iw] * Wt[((k * cpg + c) * s.KH + ky) * s.KW + kx];
            }
            Y[((n * s.K + k) * s.OH + oh) * s.OW + ow] = acc;
        }
    }

    // The reference backward passes scatter: they walk the forward loops and add each product's partial
    // derivative, so they share no index algebra with the gather-style kernels they check.

    /// <inheritdoc/>
    protected override void Conv2dBackwardDataCore(Tensor dy, Tensor w, Tensor dx, ConvShape s)
    {
        double[] DY = D(dy), Wt = D(w), DX = D(dx);
        Array.Clear(DX);
        int cpg = s.CPerGroup, kpg = s.KPerGroup;
        for (int n = 0; n < s.N; n++)
        for (int k = 0; k < s.K; k++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            double g_ = DY[((n * s.K + k) * s.OH + oh) * s.OW + ow];
            int g = k / kpg;
            for (int c = 0; c < cpg; c++)
            for (int ky = 0; ky < s.KH; ky++)
            for (int kx = 0; kx < s.KW; kx++)
            {
                int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH;
                int iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                    DX[((n * s.C + g * cpg + c) * s.H + ih) * s.W + iw] += g_ * Wt[((k * cpg + c) * s.KH + ky) * s.KW + kx];
            }
        }
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        double[] X = D(x), DY = D(dy), DW = D(dw);
        Array.Clear(DW);
        int cpg = s.CPerGroup, kpg = s.KPerGroup;
        for (int n = 0; n < s.N; n++)
        for (int k = 0; k < s.K; k++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            double g_ = DY[((n * s.K + k) * s.OH + oh) * s.OW + ow];
            int g = k / kpg;
            for (int c = 0; c < cpg; c++)
            for (int ky = 0; ky < s.KH; ky++)
            for (int kx = 0; kx < s.KW; kx++)
            {
                int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH;
                int iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                    DW[((k * cpg + c) * s.KH + ky) * s.KW + kx] += g_ * X[((n * s.C + g * cpg + c) * s.H + ih) * s.W + iw];
            }
        }
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardBiasCore(Tensor dy, Tensor db, ConvShape s)
    {
        double[] DY = D(dy), DB = D(db);
        Array.Clear(DB);
        int plane = s.OH * s.OW;
        for (int i = 0; i < DY.Length; i++)
            DB[i / plane % s.K] += DY[i];
    }

    /// <inheritdoc/>
    protected override void ReluCore(Tensor x, Tensor y)
    {
        double[] X = D(x), Y = D(y);
        for (int i = 0; i < X.Length; i++)
            Y[i] = X[i] < 0 ? 0 : X[i]; // NaN passes through, as in the kernel and PyTorch
    }

    /// <inheritdoc/>
    protected override void ReluBackwardCore(Tensor x, Tensor dy, Tensor dx, ReluRule rule)
    {
        double[] X = D(x), DY = D(dy), DX = D(dx);
        for (int i = 0; i < X.Length; i++)
        {
            bool pass = rule switch
            {
                ReluRule.Standard => X[i] > 0,
                ReluRule.Guided => X[i] > 0 && DY[i] > 0,
                _ => DY[i] > 0,
            };
            DX[i] = pass ? DY[i] : 0;
        }
    }

    /// <inheritdoc/>
    protected override void MaxPoolCore(Tensor x, Tensor y, Tensor argmax, PoolShape s)
    {
        double[] X = D(x), Y = D(y);
        int[] A = I(argmax);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            double best = double.NegativeInfinity;
            int at = -1;
            for (int ky = 0; ky < s.KH; ky++)
            for (int kx = 0; kx < s.KW; kx++)
            {
                int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH;
                int iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W)
                    continue;
                double v = X[(nc * s.H + ih) * s.W + iw];
                if (at < 0 || v > best || (double.IsNaN(v) && !double.IsNaN(best)))
                {
                    best = v;
                    at = ih * s.W + iw;
                }
            }
            int o = (nc * s.OH + oh) * s.OW + ow;
            Y[o] = at < 0 ? 0 : best;
            A[o] = at;
        }
    }

    /// <inheritdoc/>
    protected override void MaxPoolBackwardCore(Tensor dy, Tensor argmax, Tensor dx, PoolShape s)
    {
        double[] DY = D(dy), DX = D(dx);
        int[] A = I(argmax);
        Array.Clear(DX);
        int plane = s.OH * s.OW;
        for (int o = 0; o < DY.Length; o++)
        {
            if (A[o] >= 0)
                DX[o / plane * s.H * s.W + A[o]] += DY[o];
        }
    }

    /// <inheritdoc/>
    protected override void MaxPoolRouteCore(Tensor x, Tensor argmax, Tensor y, PoolShape s)
    {
        double[] X = D(x), Y = D(y);
        int[] A = I(argmax);
        int plane = s.OH * s.OW;
        for (int o = 0; o < Y.Length; o++)
            Y[o] = A[o] < 0 ? 0 : X[o / plane * s.H * s.W + A[o]];
    }

    /// <inheritdoc/>
    protected override void AvgPoolCore(Tensor x, Tensor y, PoolShape s)
    {
        double[] X = D(x), Y = D(y);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            var (hs, he, ws, we, div) = s.AvgWindow(oh, ow);
            double acc = 0;
            for (int ih = hs; ih < he; ih++)
            for (int iw = ws; iw < we; iw++)
                acc += X[(nc * s.H + ih) * s.W + iw];
            Y[(nc * s.OH + oh) * s.OW + ow] = div > 0 ? acc / div : 0;
        }
    }

    /// <inheritdoc/>
    protected override void AvgPoolBackwardCore(Tensor dy, Tensor dx, PoolShape s)
    {
        double[] DY = D(dy), DX = D(dx);
        Array.Clear(DX);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            var (hs, he, ws, we, div) = s.AvgWindow(oh, ow);
            if (div <= 0)
                continue;
            double g = DY[(nc * s.OH + oh) * s.OW + ow] / div;
            for (int ih = hs; ih < he; ih++)
            for (int iw = ws; iw < we; iw++)
                DX[(nc * s.H + ih) * s.W + iw] += g;
        }
    }

    /// <inheritdoc/>
    protected override void GlobalAvgPoolCore(Tensor x, Tensor y, int plane)
    {
        double[] X = D(x), Y = D(y);
        for (int i = 0; i < Y.Length; i++)
        {
            double acc = 0;
            for (int j = 0; j < plane; j++)
                acc += X[i * plane + j];
            Y[i] = acc / plane;
        }
    }

    /// <inheritdoc/>
    protected override void GlobalAvgPoolBackwardCore(Tensor dy, Tensor dx, int plane)
    {
        double[] DY = D(dy), DX = D(dx);
        for (int i = 0; i < DX.Length; i++)
            DX[i] = DY[i / plane] / plane;
    }

    private static int WAt(GemmShape s, int k, int n) => s.TransB ? n * s.K + k : k * s.N + n;

    /// <inheritdoc/>
    protected override void GemmCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        double[] X = D(x), Wt = D(w), Y = D(y);
        double[]? B = b == null ? null : D(b);
        for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++)
        {
            double acc = 0;
            for (int k = 0; k < s.K; k++)
                acc += X[m * s.K + k] * Wt[WAt(s, k, n)];
            Y[m * s.N + n] = s.Alpha * acc + (B == null ? 0 : s.Beta * B[n]);
        }
    }

    /// <inheritdoc/>
    protected override void GemmBackwardDataCore(Tensor dy, Tensor w, Tensor dx, GemmShape s)
    {
        double[] DY = D(dy), Wt = D(w), DX = D(dx);
        Array.Clear(DX);
        for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++)
        for (int k = 0; k < s.K; k++)
            DX[m * s.K + k] += s.Alpha * DY[m * s.N + n] * Wt[WAt(s, k, n)];
    }

    /// <inheritdoc/>
    protected override void GemmBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, GemmShape s)
    {
        double[] X = D(x), DY = D(dy), DW = D(dw);
        Array.Clear(DW);
        for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++)
        for (int k = 0; k < s.K; k++)
            DW[WAt(s, k, n)] += s.Alpha * DY[m * s.N + n] * X[m * s.K + k];
    }

    /// <inheritdoc/>
    protected override void GemmBackwardBiasCore(Tensor dy, Tensor db, GemmShape s)
    {
        double[] DY = D(dy), DB = D(db);
        Array.Clear(DB);
        for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++)
            DB[n] += s.Beta * DY[m * s.N + n];
    }

    /// <inheritdoc/>
    protected override void AddCore(Tensor a, Tensor b, Tensor y)
    {
        double[] A = D(a), B = D(b), Y = D(y);
        for (int i = 0; i < Y.Length; i++)
            Y[i] = A[i] + B[i];
    }

    /// <inheritdoc/>
    protected override void CopyRangeCore(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) =>
        Array.Copy(D(src), srcOffset, D(dst), dstOffset, length);

    /// <inheritdoc/>
    protected override void ScaleCore(Tensor x, Tensor y, float scale)
    {
        double[] X = D(x), Y = D(y);
        for (int i = 0; i < Y.Length; i++)
            Y[i] = X[i] * scale;
    }

    // ---- element-wise maps: each function in double, from its definition (not from the kernel structs) ----

    private static (Func<double, double> F, Func<double, double> DF) Reference<TOp>(TOp op) where TOp : struct, IUnaryOp
    {
        var r = ReferenceJet(op);
        return (r.F, r.D1);
    }

    /// <summary>f and its first three derivatives in double, each from the function's definition.</summary>
    private static (Func<double, double> F, Func<double, double> D1, Func<double, double> D2, Func<double, double> D3)
        ReferenceJet<TOp>(TOp op) where TOp : struct, IUnaryOp
    {
        static double Zero(double x) => 0;
        static double S(double x) => 1 / (1 + Math.Exp(-x));
        return op switch
        {
            // derivatives of the logistic: e^-x / (1 + e^-x)^2, then s (1 - s) (1 - 2 s), s (1 - s) (1 - 6 s + 6 s^2)
            Sigmoid => (S, x => Math.Exp(-x) / ((1 + Math.Exp(-x)) * (1 + Math.Exp(-x))),
                        x => S(x) * (1 - S(x)) * (1 - 2 * S(x)),
                        x => S(x) * (1 - S(x)) * (1 - 6 * S(x) + 6 * S(x) * S(x))),
            HardSigmoid h => (x => Math.Clamp(h.Alpha * x + h.Beta, 0, 1),
                              x => h.Alpha * x + h.Beta is > 0 and < 1 ? h.Alpha : 0, Zero, Zero),
            // x (x + 3) / 6 on [-3, 3]: derivatives (2x + 3) / 6, then 1/3.
            HardSwish => (x => x * Math.Clamp(x / 6 + 0.5, 0, 1),
                          x => x < -3 ? 0 : x > 3 ? 1 : 2 * x / 6 + 0.5,
                          x => x < -3 || x > 3 ? 0 : 1.0 / 3, Zero),
            LeakyRelu l => (x => x > 0 ? x : l.Alpha * x, x => x > 0 ? 1 : l.Alpha, Zero, Zero),
            Clip c => (x => Math.Min(Math.Max(x, c.Min), c.Max), x => x > c.Min && x < c.Max ? 1 : 0, Zero, Zero),
            // 2/sqrt(pi) exp(-x^2), then its derivatives -2x e and (4x^2 - 2) e
            Erf => (ErfDouble, x => 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x),
                    x => -2 * x * 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x),
                    x => (4 * x * x - 2) * 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x)),
            // x Phi(x): Phi + x phi, then (2 - x^2) phi and x (x^2 - 4) phi, phi the standard normal density
            Gelu => (x => x * (1 + ErfDouble(x / Math.Sqrt(2))) / 2,
                     x => (1 + ErfDouble(x / Math.Sqrt(2))) / 2 + x * NormalDensity(x),
                     x => (2 - x * x) * NormalDensity(x),
                     x => x * (x * x - 4) * NormalDensity(x)),
            Pow p => (x => Math.Pow(x, p.P), x => p.P * Math.Pow(x, p.P - 1), x => p.P * (p.P - 1) * Math.Pow(x, p.P - 2),
                      x => p.P * (p.P - 1) * (p.P - 2) * Math.Pow(x, p.P - 3)),
            Sqrt => (Math.Sqrt, x => 0.5 / Math.Sqrt(x), x => -0.25 * Math.Pow(x, -1.5), x => 0.375 * Math.Pow(x, -2.5)),
            Tanh => (Math.Tanh, x => 1 / (Math.Cosh(x) * Math.Cosh(x)), x => -2 * Math.Tanh(x) / (Math.Cosh(x) * Math.Cosh(x)),
                     x => (4 * Math.Cosh(x) * Math.Cosh(x) - 6) / Math.Pow(Math.Cosh(x), 4)),
            _ => throw new NotSupportedException($"the reference backend has no definition of {typeof(TOp).Name}"),
        };
    }

    private static double NormalDensity(double x) => Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);

    /// <inheritdoc/>
    protected override void UnaryJetCore<TOp>(TOp op, Tensor x0, Tensor xs, Tensor ys)
    {
        var (_, d1, d2, d3) = ReferenceJet(op);
        double[] A = D(x0), X = D(xs), Y = D(ys);
        int n = A.Length;
        for (int i = 0; i < n; i++)
        {
            double a1 = d1(A[i]), a2 = d2(A[i]), a3 = d3(A[i]);
            double x1 = X[i], x2 = X[n + i], x3 = X[2 * n + i];
            Y[i] = a1 * x1;
            Y[n + i] = a1 * x2 + a2 * x1 * x1 / 2;
            Y[2 * n + i] = a1 * x3 + a2 * x1 * x2 + a3 * x1 * x1 * x1 / 6;
        }
    }

    /// <inheritdoc/>
    protected override void UnaryCore<TOp>(TOp op, Tensor x, Tensor y)
    {
        var f = Reference(op).F;
        double[] X = D(x), Y = D(y);
        for (int i = 0; i < X.Length; i++)
            Y[i] = f(X[i]);
    }

    /// <inheritdoc/>
    protected override void UnaryBackwardCore<TOp>(TOp op, Tensor x, Tensor dy, Tensor dx)
    {
        var df = Reference(op).DF;
        double[] X = D(x), DY = D(dy), DX = D(dx);
        for (int i = 0; i < X.Length; i++)
            DX[i] = DY[i] * df(X[i]);
    }

    /// <summary>Row-major multi-index walk over the rank-4 output; the operands' flat indices by numpy's rule.</summary>
    private static IEnumerable<(int O, int A, int B)> BroadcastWalk(BroadcastShape s)
    {
        int[] d = [s.D0, s.D1, s.D2, s.D3], a = [s.A0, s.A1, s.A2, s.A3], b = [s.B0, s.B1, s.B2, s.B3];
        int o = 0;
        for (int i0 = 0; i0 < d[0]; i0++)
        for (int i1 = 0; i1 < d[1]; i1++)
        for (int i2 = 0; i2 < d[2]; i2++)
        for (int i3 = 0; i3 < d[3]; i3++)
        {
            int[] idx = [i0, i1, i2, i3];
            int ia = 0, ib = 0;
            for (int k = 0; k < 4; k++)
            {
                ia = ia * a[k] + (a[k] == 1 ? 0 : idx[k]);
                ib = ib * b[k] + (b[k] == 1 ? 0 : idx[k]);
            }
            yield return (o++, ia, ib);
        }
    }

    /// <inheritdoc/>
    protected override void BinaryCore(Tensor a, Tensor b, Tensor y, BroadcastShape s)
    {
        double[] A = D(a), B = D(b), Y = D(y);
        foreach (var (o, ia, ib) in BroadcastWalk(s))
        {
            Y[o] = s.Operator switch
            {
                BinaryOp.Add => A[ia] + B[ib],
                BinaryOp.Sub => A[ia] - B[ib],
                BinaryOp.Mul => A[ia] * B[ib],
                _ => A[ia] / B[ib],
            };
        }
    }

    /// <inheritdoc/>
    protected override void BinaryBackwardCore(Tensor a, Tensor b, Tensor dy, Tensor grad, BroadcastShape s, int operand)
    {
        double[] A = D(a), B = D(b), DY = D(dy), G = D(grad);
        Array.Clear(G);
        // Scatter: every output element adds its partial derivative to the operand element it read.
        foreach (var (o, ia, ib) in BroadcastWalk(s))
        {
            double partial = (s.Operator, operand) switch
            {
                (BinaryOp.Add, _) => 1,
                (BinaryOp.Sub, 0) => 1,
                (BinaryOp.Sub, _) => -1,
                (BinaryOp.Mul, 0) => B[ib],
                (BinaryOp.Mul, _) => A[ia],
                (_, 0) => 1 / B[ib],
                _ => -A[ia] / (B[ib] * B[ib]),
            };
            G[operand == 0 ? ia : ib] += DY[o] * partial;
        }
    }

    /// <inheritdoc/>
    protected override void ChannelAffineCore(Tensor x, Tensor scale, Tensor shift, Tensor y, int channels, int inner)
    {
        double[] X = D(x), S = D(scale), T = D(shift), Y = D(y);
        for (int i = 0; i < X.Length; i++)
        {
            int c = i / inner % channels;
            Y[i] = X[i] * S[c] + T[c];
        }
    }

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardDataCore(Tensor dy, Tensor scale, Tensor dx, int channels, int inner)
    {
        double[] DY = D(dy), S = D(scale), DX = D(dx);
        for (int i = 0; i < DX.Length; i++)
            DX[i] = DY[i] * S[i / inner % channels];
    }

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardParamsCore(Tensor x, Tensor dy, Tensor dscale, Tensor dshift, int channels, int inner)
    {
        double[] X = D(x), DY = D(dy), DS = D(dscale), DT = D(dshift);
        Array.Clear(DS);
        Array.Clear(DT);
        for (int i = 0; i < X.Length; i++)
        {
            int c = i / inner % channels;
            DS[c] += DY[i] * X[i];
            DT[c] += DY[i];
        }
    }

    /// <inheritdoc/>
    protected override void ConcatCopyInCore(Tensor part, Tensor whole, ChannelSlice s)
    {
        double[] P = D(part), Wh = D(whole);
        for (int n = 0; n < s.N; n++)
            Array.Copy(P, n * s.C * s.Inner, Wh, (n * s.Total + s.Offset) * s.Inner, s.C * s.Inner);
    }

    /// <inheritdoc/>
    protected override void ConcatCopyOutCore(Tensor whole, Tensor part, ChannelSlice s)
    {
        double[] P = D(part), Wh = D(whole);
        for (int n = 0; n < s.N; n++)
            Array.Copy(Wh, (n * s.Total + s.Offset) * s.Inner, P, n * s.C * s.Inner, s.C * s.Inner);
    }

    /// <inheritdoc/>
    protected override void PadCore(Tensor x, Tensor y, PadShape s, float value)
    {
        double[] X = D(x), Y = D(y);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            int h = s.Source(oh, s.PadTop, s.H), w = s.Source(ow, s.PadLeft, s.W);
            Y[(nc * s.OH + oh) * s.OW + ow] = h >= 0 && w >= 0 ? X[(nc * s.H + h) * s.W + w] : value;
        }
    }

    /// <inheritdoc/>
    protected override void PadBackwardCore(Tensor dy, Tensor dx, PadShape s)
    {
        // The adjoint of the forward as written there: every output element adds its dy to the element it read.
        double[] DY = D(dy), DX = D(dx);
        Array.Clear(DX);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            int h = s.Source(oh, s.PadTop, s.H), w = s.Source(ow, s.PadLeft, s.W);
            if (h >= 0 && w >= 0)
                DX[(nc * s.H + h) * s.W + w] += DY[(nc * s.OH + oh) * s.OW + ow];
        }
    }

    /// <inheritdoc/>
    protected override void SoftmaxCore(Tensor x, Tensor y, int rows, int cols)
    {
        double[] X = D(x), Y = D(y);
        for (int r = 0; r < rows; r++)
        {
            var row = X.AsSpan(r * cols, cols);
            double m = double.NegativeInfinity;
            foreach (double v in row)
                m = Math.Max(m, v);
            double sum = 0;
            foreach (double v in row)
                sum += Math.Exp(v - m);
            for (int j = 0; j < cols; j++)
                Y[r * cols + j] = Math.Exp(row[j] - m) / sum;
        }
    }

    /// <inheritdoc/>
    protected override void SoftmaxBackwardCore(Tensor y, Tensor dy, Tensor dx, int rows, int cols)
    {
        double[] Y = D(y), DY = D(dy), DX = D(dx);
        // Jacobian-vector product with J[j,k] = y_j (delta_jk - y_k), written as the full sum.
        for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++)
        {
            double acc = 0;
            for (int j = 0; j < cols; j++)
                acc += DY[r * cols + j] * Y[r * cols + j] * ((j == k ? 1 : 0) - Y[r * cols + k]);
            DX[r * cols + k] = acc;
        }
    }
}
