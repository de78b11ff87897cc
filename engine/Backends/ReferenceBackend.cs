using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>
/// The oracle: straight loops in double precision, written from the operator definitions and never
/// optimized. Every fast kernel is tested against it, and gradient checks by finite differences run on it.
/// Readable on purpose, for people studying the algorithms.
/// </summary>
public sealed class ReferenceBackend : Backend
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

    /// <inheritdoc/>
    protected override void AvgPoolCore(Tensor x, Tensor y, PoolShape s)
    {
        double[] X = D(x), Y = D(y);
        for (int nc = 0; nc < s.N * s.C; nc++)
        for (int oh = 0; oh < s.OH; oh++)
        for (int ow = 0; ow < s.OW; ow++)
        {
            var (hs, he, ws, we, div) = AvgWindow(s, oh, ow);
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
            var (hs, he, ws, we, div) = AvgWindow(s, oh, ow);
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
}
