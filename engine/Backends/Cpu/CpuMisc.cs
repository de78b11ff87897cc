using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The CPU backend's structural and element-wise operations beyond conv/gemm/pooling: element-wise maps over
/// <see cref="Kernels.IUnaryOp"/> structs (values, derivatives, Taylor coefficients), broadcasting binary ops,
/// per-channel affine maps (batch norm), concat, pad, softmax, max-pool routing and range copies. Same index
/// conventions as the ILGPU kernels (see their files); parallel over independent outputs when large.
/// </summary>
internal static unsafe class CpuMisc
{
    private const int Serial = 1 << 15;

    private static void For(long n, Action<int, int> range)
    {
        if (n <= Serial)
        {
            range(0, (int)n);
            return;
        }
        int chunks = (int)Math.Min(4L * Environment.ProcessorCount, (n + Serial - 1) / Serial);
        long per = (n + chunks - 1) / chunks;
        CpuParallel.For(chunks, c => range((int)(c * per), (int)Math.Min(n, (c + 1) * per)));
    }

    public static void Unary<TOp>(float* x, float* y, int n, TOp op) where TOp : struct, Kernels.IUnaryOp
    {
        // Clip (ReLU6), sigmoid (SiLU, squeeze-excitation gates), erf and GELU, and small integer powers at the vector
        // width: the same values as the op's Value (clip and powers exactly; sigmoid and erf through CpuExp, within a
        // few ulp of MathF.Exp).
        var simd = CpuSimdDetect.Best;
        if (typeof(TOp) == typeof(Clip) && simd != CpuSimd.Scalar)
        {
            var c = Unsafe.As<TOp, Clip>(ref op);
            CpuElementwise.Map(x, y, n, new ClipOp(c.Min, c.Max), simd);
            return;
        }
        if (typeof(TOp) == typeof(Sigmoid) && simd != CpuSimd.Scalar)
        {
            CpuElementwise.Map(x, y, n, new SigmoidOp(), simd);
            return;
        }
        if (typeof(TOp) == typeof(Erf) && simd != CpuSimd.Scalar)
        {
            // GELU's erf: the same formulas per vector, with the vector exp.
            CpuElementwise.Map(x, y, n, new ErfOp(), simd);
            return;
        }
        if (typeof(TOp) == typeof(Gelu) && simd != CpuSimd.Scalar)
        {
            CpuElementwise.Map(x, y, n, new GeluOp(), simd);
            return;
        }
        if (typeof(TOp) == typeof(Pow) && simd != CpuSimd.Scalar
            && Unsafe.As<TOp, Pow>(ref op).P is 2f or 3f or 4f)
        {
            // LayerNorm's (x - mean)^2: the same multiplications at the vector width.
            CpuElementwise.Map(x, y, n, new IntPowOp((int)Unsafe.As<TOp, Pow>(ref op).P), simd);
            return;
        }
        nint px = (nint)x, py = (nint)y;
        For(n, (s, e) =>
        {
            float* a = (float*)px, b = (float*)py;
            for (int i = s; i < e; i++)
                b[i] = op.Value(a[i]);
        });
    }

    public static void UnaryBackward<TOp>(float* x, float* dy, float* dx, int n, TOp op) where TOp : struct, Kernels.IUnaryOp
    {
        nint px = (nint)x, pg = (nint)dy, pd = (nint)dx;
        For(n, (s, e) =>
        {
            float* a = (float*)px, g = (float*)pg, d = (float*)pd;
            for (int i = s; i < e; i++)
                d[i] = g[i] * op.Derivative(a[i]);
        });
    }

    /// <summary>Faa di Bruno to third order, as <see cref="Kernels.Unary.Jet{TOp}"/>.</summary>
    public static void UnaryJet<TOp>(float* x0, float* xs, float* ys, int n, TOp op) where TOp : struct, Kernels.IUnaryOp
    {
        nint p0 = (nint)x0, px = (nint)xs, py = (nint)ys;
        For(n, (s, e) =>
        {
            float* a = (float*)p0, x = (float*)px, y = (float*)py;
            for (int i = s; i < e; i++)
            {
                float d1 = op.Derivative(a[i]), d2 = op.Derivative2(a[i]), d3 = op.Derivative3(a[i]);
                float x1 = x[i], x2 = x[n + i], x3 = x[2 * n + i];
                y[i] = d1 * x1;
                y[n + i] = d1 * x2 + 0.5f * d2 * x1 * x1;
                y[2 * n + i] = d1 * x3 + d2 * x1 * x2 + d3 * x1 * x1 * x1 / 6f;
            }
        });
    }

    private static float Apply(int op, float a, float b) => op switch
    {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    };

    public static void Binary(float* a, float* b, float* y, BroadcastShape s)
    {
        if (s.A0 == s.D0 && s.A1 == s.D1 && s.A2 == s.D2 && s.A3 == s.D3
            && s.B0 == s.D0 && s.B1 == s.D1 && s.B2 == s.D2 && s.B3 == s.D3)
        {
            // No broadcasting (residual adds): a plain vector map, the same values element for element.
            Map(a, b, y, s.OutputLength, s.Op);
            return;
        }
        if (s.D2 * s.D3 >= 16 && ChannelScalar(a, b, y, s))
            return;
        if (s.D3 >= 8)
        {
            LastAxisRows(a, b, y, s);
            return;
        }
        nint pa = (nint)a, pb = (nint)b, py = (nint)y;
        For(s.OutputLength, (st, e) =>
        {
            float* A = (float*)pa, B = (float*)pb, Y = (float*)py;
            for (int i = st; i < e; i++)
            {
                int i3 = i % s.D3, t = i / s.D3, i2 = t % s.D2;
                t /= s.D2;
                int i1 = t % s.D1, i0 = t / s.D1;
                Y[i] = Apply(s.Op, A[i0 * s.SA0 + i1 * s.SA1 + i2 * s.SA2 + i3 * s.SA3],
                    B[i0 * s.SB0 + i1 * s.SB1 + i2 * s.SB2 + i3 * s.SB3]);
            }
        });
    }

    /// <summary>
    /// One operand full and the other one value per (i0, i1) row (a squeeze-excitation gate x * s[n, c, 1, 1], a
    /// per-channel bias): each row is a vector loop against one broadcast scalar. False for other broadcasts.
    /// </summary>
    private static bool ChannelScalar(float* a, float* b, float* y, BroadcastShape s)
    {
        bool aFull = s.A0 == s.D0 && s.A1 == s.D1 && s.A2 == s.D2 && s.A3 == s.D3;
        bool bFull = s.B0 == s.D0 && s.B1 == s.D1 && s.B2 == s.D2 && s.B3 == s.D3;
        bool aRow = s.A2 == 1 && s.A3 == 1, bRow = s.B2 == 1 && s.B3 == 1;
        if (!(aFull && bRow) && !(bFull && aRow))
            return false;
        bool scalarRight = aFull && bRow;
        int rows = s.D0 * s.D1, len = s.D2 * s.D3, op = s.Op;
        nint pa = (nint)a, pb = (nint)b, py = (nint)y;
        void Rows(int r0, int r1)
        {
            for (int r = r0; r < r1; r++)
            {
                int i0 = r / s.D1, i1 = r % s.D1;
                float* full = (float*)(scalarRight ? pa : pb) + (long)r * len;
                float v = scalarRight ? ((float*)pb)[i0 * s.SB0 + i1 * s.SB1] : ((float*)pa)[i0 * s.SA0 + i1 * s.SA1];
                RowOp(full, v, (float*)py + (long)r * len, len, op, scalarRight);
            }
        }
        int chunks = (long)rows * len <= Serial ? 1 : Math.Min(4 * Environment.ProcessorCount, rows);
        if (chunks == 1)
            Rows(0, rows);
        else
            CpuParallel.For(chunks, c => Rows((int)((long)c * rows / chunks), (int)((long)(c + 1) * rows / chunks)));
        return true;
    }

    /// <summary>
    /// A broadcast with a last axis of 8 or more (channels-last tensors: a bias or LayerNorm's scale over the last
    /// axis, a per-row mean or deviation against full rows): row by row over the last axis, each operand's row either
    /// full (stride 1) or one value broadcast along it (stride 0), so each row is one vector loop.
    /// </summary>
    private static void LastAxisRows(float* a, float* b, float* y, BroadcastShape s)
    {
        int rows = s.D0 * s.D1 * s.D2, len = s.D3, op = s.Op;
        nint pa = (nint)a, pb = (nint)b, py = (nint)y;
        void Rows(int r0, int r1)
        {
            for (int r = r0; r < r1; r++)
            {
                int i2 = r % s.D2, t = r / s.D2, i1 = t % s.D1, i0 = t / s.D1;
                float* ar = (float*)pa + (long)i0 * s.SA0 + (long)i1 * s.SA1 + (long)i2 * s.SA2;
                float* br = (float*)pb + (long)i0 * s.SB0 + (long)i1 * s.SB1 + (long)i2 * s.SB2;
                float* yr = (float*)py + (long)r * len;
                if (s.SA3 != 0 && s.SB3 != 0)
                    Map(ar, br, yr, len, op);
                else if (s.SA3 != 0)
                    RowOp(ar, br[0], yr, len, op, scalarRight: true);
                else
                    RowOp(br, ar[0], yr, len, op, scalarRight: false);
            }
        }
        int chunks = (long)rows * len <= Serial ? 1 : (int)Math.Min(4L * Environment.ProcessorCount, rows);
        if (chunks == 1)
            Rows(0, rows);
        else
            CpuParallel.For(chunks, c => Rows((int)((long)c * rows / chunks), (int)((long)(c + 1) * rows / chunks)));
    }

    /// <summary>y[i] = op(a[i], b[i]) for i &lt; n (op 0..3: add, sub, mul, div), at the machine's vector width
    /// (<see cref="CpuElementwise.Map{TOp}(float*, float*, float*, long, TOp, CpuSimd)"/>).</summary>
    private static void Map(float* a, float* b, float* y, long n, int op)
    {
        var simd = CpuSimdDetect.Best;
        switch (op)
        {
            case 0:
                CpuElementwise.Map(a, b, y, n, new AddOp(), simd);
                break;
            case 1:
                CpuElementwise.Map(a, b, y, n, new SubOp(), simd);
                break;
            case 2:
                CpuElementwise.Map(a, b, y, n, new MulOp(), simd);
                break;
            default:
                CpuElementwise.Map(a, b, y, n, new DivOp(), simd);
                break;
        }
    }

    /// <summary>y[i] = op(x[i], v) (scalarRight) or op(v, x[i]) for i &lt; n.</summary>
    private static void RowOp(float* x, float v, float* y, int n, int op, bool scalarRight)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vv = Vector512.Create(v);
            for (; i + 16 <= n; i += 16)
            {
                var e = Vector512.Load(x + i);
                var (l, r) = scalarRight ? (e, vv) : (vv, e);
                (op switch { 0 => l + r, 1 => l - r, 2 => l * r, _ => l / r }).Store(y + i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var vv = Vector256.Create(v);
            for (; i + 8 <= n; i += 8)
            {
                var e = Vector256.Load(x + i);
                var (l, r) = scalarRight ? (e, vv) : (vv, e);
                (op switch { 0 => l + r, 1 => l - r, 2 => l * r, _ => l / r }).Store(y + i);
            }
        }
        for (; i < n; i++)
            y[i] = scalarRight ? Apply(op, x[i], v) : Apply(op, v, x[i]);
    }

    /// <summary>Gradient of operand 0 or 1 of a broadcasting op, summed over the axes it is broadcast along
    /// (one output element per operand element, no atomics).</summary>
    public static void BinaryBackward(float* a, float* b, float* dy, float* grad, BroadcastShape s, int operand)
    {
        int e0 = operand == 0 ? s.A0 : s.B0, e1 = operand == 0 ? s.A1 : s.B1;
        int e2 = operand == 0 ? s.A2 : s.B2, e3 = operand == 0 ? s.A3 : s.B3;
        long count = (long)e0 * e1 * e2 * e3;
        if (s.Op == 0 && count == s.OutputLength)
        {
            // Add, operand not broadcast (residual connections): the gradient is dy itself.
            Buffer.MemoryCopy(dy, grad, count * sizeof(float), count * sizeof(float));
            return;
        }
        nint pa = (nint)a, pb = (nint)b, pd = (nint)dy, pg = (nint)grad;
        For(count, (st, en) =>
        {
            float* A = (float*)pa, B = (float*)pb, DY = (float*)pd, G = (float*)pg;
            for (int i = st; i < en; i++)
            {
                int p3 = i % e3, t = i / e3, p2 = t % e2;
                t /= e2;
                int p1 = t % e1, p0 = t / e1;
                double acc = 0;
                for (int j0 = 0; j0 < (e0 == 1 ? s.D0 : 1); j0++)
                for (int j1 = 0; j1 < (e1 == 1 ? s.D1 : 1); j1++)
                for (int j2 = 0; j2 < (e2 == 1 ? s.D2 : 1); j2++)
                for (int j3 = 0; j3 < (e3 == 1 ? s.D3 : 1); j3++)
                {
                    int o0 = e0 == 1 ? j0 : p0, o1 = e1 == 1 ? j1 : p1, o2 = e2 == 1 ? j2 : p2, o3 = e3 == 1 ? j3 : p3;
                    float g = DY[((o0 * s.D1 + o1) * s.D2 + o2) * s.D3 + o3];
                    if (s.Op == 1 && operand == 1)
                    {
                        g = -g;
                    }
                    else if (s.Op >= 2)
                    {
                        float av = A[o0 * s.SA0 + o1 * s.SA1 + o2 * s.SA2 + o3 * s.SA3];
                        float bv = B[o0 * s.SB0 + o1 * s.SB1 + o2 * s.SB2 + o3 * s.SB3];
                        g = s.Op == 2 ? g * (operand == 0 ? bv : av) : operand == 0 ? g / bv : -g * av / (bv * bv);
                    }
                    acc += g;
                }
                G[i] = (float)acc;
            }
        });
    }

    public static void ChannelAffine(float* x, float* scale, float* shift, float* y, int n, int channels, int inner)
    {
        nint px = (nint)x, ps = (nint)scale, pt = (nint)shift, py = (nint)y;
        For(n, (st, e) =>
        {
            float* X = (float*)px, S = (float*)ps, T = (float*)pt, Y = (float*)py;
            for (int i = st; i < e; i++)
            {
                int c = i / inner % channels;
                Y[i] = T == null ? X[i] * S[c] : X[i] * S[c] + T[c];
            }
        });
    }

    public static void ChannelAffineBackwardParams(float* x, float* dy, float* dscale, float* dshift, int batch, int channels, int inner)
    {
        for (int c = 0; c < channels; c++)
        {
            double gs = 0, gb = 0;
            for (int n = 0; n < batch; n++)
            {
                long b = ((long)n * channels + c) * inner;
                for (int j = 0; j < inner; j++)
                {
                    gs += dy[b + j] * x[b + j];
                    gb += dy[b + j];
                }
            }
            dscale[c] = (float)gs;
            dshift[c] = (float)gb;
        }
    }

    public static void Concat(float* part, float* whole, ChannelSlice s, bool copyIn)
    {
        for (int nn = 0; nn < s.N; nn++)
        {
            long partBase = (long)nn * s.C * s.Inner;
            long wholeBase = ((long)nn * s.Total + s.Offset) * s.Inner;
            long len = (long)s.C * s.Inner;
            if (copyIn)
                Buffer.MemoryCopy(part + partBase, whole + wholeBase, len * 4, len * 4);
            else
                Buffer.MemoryCopy(whole + wholeBase, part + partBase, len * 4, len * 4);
        }
    }

    public static void Pad(float* x, float* y, PadShape s, float value)
    {
        int oh = s.OH, ow = s.OW;
        for (long nc = 0; nc < (long)s.N * s.C; nc++)
        {
            for (int h = 0; h < oh; h++)
            {
                float* row = y + (nc * oh + h) * ow;
                int ih = s.Source(h, s.PadTop, s.H);
                for (int w = 0; w < ow; w++)
                {
                    int iw = s.Source(w, s.PadLeft, s.W);
                    row[w] = ih >= 0 && iw >= 0 ? x[(nc * s.H + ih) * s.W + iw] : value;
                }
            }
        }
    }

    public static void PadBackward(float* dy, float* dx, PadShape s)
    {
        int oh = s.OH, ow = s.OW;
        for (long nc = 0; nc < (long)s.N * s.C; nc++)
        {
            for (int h = 0; h < s.H; h++)
            {
                int rh = s.Readers(h, s.PadTop, s.H, s.PadBottom);
                for (int w = 0; w < s.W; w++)
                {
                    if (s.Mode == 0)
                    {
                        dx[(nc * s.H + h) * s.W + w] = dy[(nc * oh + h + s.PadTop) * ow + w + s.PadLeft];
                        continue;
                    }
                    int rw = s.Readers(w, s.PadLeft, s.W, s.PadRight);
                    float acc = 0f;
                    for (int a = 0; a < rh; a++)
                    {
                        long row = (nc * oh + s.Reader(a, h, s.PadTop, s.H, s.PadBottom)) * ow;
                        for (int b = 0; b < rw; b++)
                            acc += dy[row + s.Reader(b, w, s.PadLeft, s.W, s.PadRight)];
                    }
                    dx[(nc * s.H + h) * s.W + w] = acc;
                }
            }
        }
    }

    /// <summary>
    /// Softmax over each row of <paramref name="cols"/>: the row's maximum (16 lanes at a time) subtracted, e^x of those
    /// non-positive values by <see cref="CpuExp.ExpNonPositiveOrZero(Vector512{float})"/> 16 lanes at a time (the same
    /// float operations as its scalar form, which takes the tail) summed in vector lanes, then scaled by the sum's
    /// inverse; rows in parallel. A NaN in a row makes the row NaN; a row of -infinity is NaN (-inf - -inf). Measured
    /// (torchvision's ViT-B/16 at batch 1, 12 x 197 rows of 197 per layer, lean forward, 2-vCPU Zen 4 VM): 2.8-4.1 ms
    /// for the twelve layers against 6.1-7.4 with the general <see cref="CpuExp.Exp(Vector512{float})"/> and a scalar
    /// maximum (processes of the two builds alternating, 2026-12-07), and 28.1 one row at a time with
    /// <see cref="MathF.Exp"/>.
    /// </summary>
    public static void Softmax(float* x, float* y, int rows, int cols)
    {
        CpuConv.For(rows, (long)rows * cols * 8, r =>
        {
            float* a = x + (long)r * cols, b = y + (long)r * cols;
            float m = a[0];
            int j0 = 1;
            if (Vector512.IsHardwareAccelerated && cols >= 16)
            {
                // The row's largest value (a NaN in the row makes every e^(x - m), so the sum and the row, NaN anyway).
                var vmax = Vector512.Load(a);
                for (j0 = 16; j0 + 16 <= cols; j0 += 16)
                    vmax = Vector512.Max(vmax, Vector512.Load(a + j0));
                for (int l = 0; l < 16; l++)
                    m = MathF.Max(m, vmax[l]);
            }
            for (int j = j0; j < cols; j++)
                m = MathF.Max(m, a[j]);
            int v = 0;
            float sum = 0f;
            if (Vector512.IsHardwareAccelerated && cols >= 16)
            {
                var vm = Vector512.Create(m);
                var acc = Vector512<float>.Zero;
                for (; v + 16 <= cols; v += 16)
                {
                    var e = CpuExp.ExpNonPositiveOrZero(Vector512.Load(a + v) - vm);
                    e.Store(b + v);
                    acc += e;
                }
                sum = Vector512.Sum(acc);
            }
            for (int j = v; j < cols; j++)
            {
                b[j] = CpuExp.ExpNonPositiveOrZero(a[j] - m);
                sum += b[j];
            }
            float inv = 1f / sum;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vi = Vector512.Create(inv);
                for (; i + 16 <= cols; i += 16)
                    (Vector512.Load(b + i) * vi).Store(b + i);
            }
            for (; i < cols; i++)
                b[i] *= inv;
        });
    }

    public static void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            long b = (long)r * cols;
            float dot = 0f;
            for (int j = 0; j < cols; j++)
                dot += dy[b + j] * y[b + j];
            for (int j = 0; j < cols; j++)
                dx[b + j] = y[b + j] * (dy[b + j] - dot);
        }
    }

    public static void MaxPoolRoute(float* x, int* argmax, float* y, int n, PoolShape s)
    {
        int plane = s.OH * s.OW;
        for (int o = 0; o < n; o++)
            y[o] = argmax[o] < 0 ? 0f : x[(long)(o / plane) * s.H * s.W + argmax[o]];
    }
}
