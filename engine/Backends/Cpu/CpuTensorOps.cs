using System.Runtime.Intrinsics;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Rank-general tensor operations on the managed CPU backend, in float: transpose, reductions over a middle axis
/// and their adjoints, layer normalization. Rows run in parallel when there is enough work; batched 2-D transposes
/// go through 8x8 register blocks and sums over contiguous rows run at the vector width, the rest are plain loops.
/// </summary>
internal static unsafe class CpuTensorOps
{
    /// <summary>Below this many elements an operation runs on one thread (task overhead dominates).</summary>
    private const int ParallelThreshold = 1 << 15;

    private static void For(int count, long work, Action<int> body)
    {
        if (work < ParallelThreshold || count < 2)
        {
            for (int i = 0; i < count; i++)
                body(i);
        }
        else
        {
            CpuParallel.For(count, body);
        }
    }

    /// <summary>
    /// y = transpose(x): a batched 2-D transpose (NCHW to NHWC and back, a token-channel swap) in 8x8 register blocks;
    /// otherwise each output row of D5 elements is gathered with stride S5.
    /// </summary>
    public static void Transpose(float* x, float* y, TransposeShape s)
    {
        if (System.Runtime.Intrinsics.X86.Avx.IsSupported && Batched2D(s) is var (batches, p, q) && p >= 8 && q >= 8)
        {
            Transpose2D(x, y, batches, p, q);
            return;
        }
        int rows = s.D0 * s.D1 * s.D2 * s.D3 * s.D4;
        int d5 = s.D5, s5 = s.S5;
        For(rows, (long)rows * d5, r =>
        {
            int src = s.Source(r * d5);
            float* o = y + (long)r * d5;
            for (int k = 0; k < d5; k++)
                o[k] = x[src + k * s5];
        });
    }

    /// <summary>
    /// Whether the transpose is <c>y[b, i, j] = x[b, j, i]</c> for x of shape (batches, q, p), y (batches, p, q): the
    /// output axes, without those of length 1 and with neighbours merged where x holds them in the same order, are
    /// (p with input stride 1, q with stride p), with or without a leading batch axis of stride p*q. Null otherwise.
    /// </summary>
    private static (int Batches, int P, int Q)? Batched2D(TransposeShape s)
    {
        Span<int> d = [s.D0, s.D1, s.D2, s.D3, s.D4, s.D5];
        Span<int> st = [s.S0, s.S1, s.S2, s.S3, s.S4, s.S5];
        Span<int> md = stackalloc int[6];
        Span<int> ms = stackalloc int[6];
        int n = 0;
        for (int k = 0; k < 6; k++)
        {
            if (d[k] == 1)
                continue;
            if (n > 0 && ms[n - 1] == d[k] * st[k])
            {
                md[n - 1] *= d[k];
                ms[n - 1] = st[k];
                continue;
            }
            md[n] = d[k];
            ms[n++] = st[k];
        }
        if (n == 2 && ms[0] == 1 && ms[1] == md[0])
            return (1, md[0], md[1]);
        if (n == 3 && ms[1] == 1 && ms[2] == md[1] && ms[0] == md[1] * md[2])
            return (md[0], md[1], md[2]);
        return null;
    }

    /// <summary>y[b, i, j] = x[b, j, i] for x (batches, q, p): blocks of 64 output rows to the threads, each the direct
    /// conv's NCHW-to-NHWC transpose (8x8 register blocks, scalar edges) of q channels by its pixels.</summary>
    private static void Transpose2D(float* x, float* y, int batches, int p, int q)
    {
        int rowBlocks = (p + 63) / 64;
        long plane = (long)p * q;
        For(batches * rowBlocks, batches * plane, t =>
        {
            int b = t / rowBlocks, i0 = (t - b * rowBlocks) * 64;
            DirectConv.Transpose(x + b * plane + i0, p, y + b * plane + (long)i0 * q, q, Math.Min(64, p - i0));
        });
    }

    /// <summary>
    /// <c>y[o, j] = scale * sum_l x[o, l, j]</c>. Over the last axis (Inner = 1: LayerNorm's means in channels-last
    /// tensors) each sum is a contiguous row summed in 16 (or 8) lanes, then across them; otherwise the sums run over l
    /// in order, Inner lanes at a time. Outer rows go to the threads in blocks.
    /// </summary>
    public static void ReduceSum(float* x, float* y, AxisShape s, float scale)
    {
        if (s.Outer == 0 || s.Inner == 0)
            return;
        long perOuter = (long)s.Len * s.Inner;
        int blocks = (int)Math.Clamp(s.Outer * perOuter / ParallelThreshold, 1, Math.Min(s.Outer, 4L * Environment.ProcessorCount));
        For(blocks, s.Outer * perOuter, blk =>
        {
            int o0 = (int)((long)blk * s.Outer / blocks), o1 = (int)((long)(blk + 1) * s.Outer / blocks);
            for (int o = o0; o < o1; o++)
            {
                float* yo = y + (long)o * s.Inner;
                float* xo = x + o * perOuter;
                if (s.Inner == 1)
                {
                    yo[0] = scale * RowSum(xo, s.Len, CpuSimdDetect.Best);
                    continue;
                }
                new Span<float>(yo, s.Inner).Clear();
                for (int l = 0; l < s.Len; l++)
                    AddRow(xo + (long)l * s.Inner, yo, s.Inner);
                for (int j = 0; j < s.Inner; j++)
                    yo[j] *= scale;
            }
        });
    }

    /// <summary>acc[j] += row[j] for j &lt; n.</summary>
    private static void AddRow(float* row, float* acc, int n)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= n; j += 16)
                (Vector512.Load(acc + j) + Vector512.Load(row + j)).Store(acc + j);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 8 <= n; j += 8)
                (Vector256.Load(acc + j) + Vector256.Load(row + j)).Store(acc + j);
        }
        for (; j < n; j++)
            acc[j] += row[j];
    }

    /// <summary><c>dx[o, l, j] = scale * dy[o, j]</c>.</summary>
    public static void BroadcastAxis(float* dy, float* dx, AxisShape s, float scale)
    {
        For(s.Outer, (long)s.Outer * s.Len * s.Inner, o =>
        {
            float* g = dy + (long)o * s.Inner;
            for (int l = 0; l < s.Len; l++)
            {
                float* row = dx + ((long)o * s.Len + l) * s.Inner;
                for (int j = 0; j < s.Inner; j++)
                    row[j] = scale * g[j];
            }
        });
    }

    /// <summary><c>y[o, j] = max_l x[o, l, j]</c> with the flat index of the first maximum.</summary>
    public static void ReduceMax(float* x, float* y, int* argmax, AxisShape s)
    {
        for (int o = 0; o < s.Outer; o++)
        for (int j = 0; j < s.Inner; j++)
        {
            int best = o * s.Len * s.Inner + j;
            for (int l = 1; l < s.Len; l++)
            {
                int at = (o * s.Len + l) * s.Inner + j;
                if (x[at] > x[best])
                    best = at;
            }
            y[o * s.Inner + j] = x[best];
            argmax[o * s.Inner + j] = best;
        }
    }

    /// <summary><c>dx[argmax[i]] += dy[i]</c> into a zeroed dx.</summary>
    public static void ReduceMaxBackward(float* dy, int* argmax, float* dx, int n)
    {
        for (int i = 0; i < n; i++)
            dx[argmax[i]] += dy[i];
    }

    /// <summary><c>y[i] = x[argmax[i]]</c>.</summary>
    public static void Route(float* x, int* argmax, float* y, int n)
    {
        for (int i = 0; i < n; i++)
            y[i] = x[argmax[i]];
    }

    /// <summary>
    /// Layer norm per row with (mean, rstd) written to stats; two passes for the variance. The sums run in vector
    /// lanes (<see cref="RowSum"/>, as ReduceSum's) and the normalization a vector at a time, so a row of C costs
    /// about 3C/16 vector operations instead of a serial chain of 2C additions.
    /// </summary>
    public static void LayerNorm(float* x, float* gamma, float* beta, float* y, float* stats, int rows, int cols, float eps,
        CpuSimd simd)
    {
        For(rows, (long)rows * cols, r =>
        {
            float* row = x + (long)r * cols;
            float mean = RowSum(row, cols, simd) / cols;
            float rstd = 1f / MathF.Sqrt(RowSum(row, cols, simd, mean, squares: true) / cols + eps);
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
            float* o = y + (long)r * cols;
            int j = 0;
            if (simd == CpuSimd.Vector512)
            {
                Vector512<float> m = Vector512.Create(mean), s = Vector512.Create(rstd);
                for (; j <= cols - 16; j += 16)
                    (Vector512.Load(gamma + j) * ((Vector512.Load(row + j) - m) * s) + Vector512.Load(beta + j)).Store(o + j);
            }
            else if (simd == CpuSimd.Vector256)
            {
                Vector256<float> m = Vector256.Create(mean), s = Vector256.Create(rstd);
                for (; j <= cols - 8; j += 8)
                    (Vector256.Load(gamma + j) * ((Vector256.Load(row + j) - m) * s) + Vector256.Load(beta + j)).Store(o + j);
            }
            for (; j < cols; j++)
                o[j] = gamma[j] * ((row[j] - mean) * rstd) + beta[j];
        });
    }

    /// <summary>The sum of <paramref name="n"/> contiguous floats, or with <paramref name="squares"/> of their squared
    /// distances to <paramref name="center"/>: lane-wise partial sums at the given width, then across the lanes.</summary>
    private static float RowSum(float* x, int n, CpuSimd simd, float center = 0f, bool squares = false)
    {
        int i = 0;
        float sum = 0f;
        if (simd == CpuSimd.Vector512 && n >= 16)
        {
            Vector512<float> acc = Vector512<float>.Zero, c = Vector512.Create(center);
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                if (squares)
                {
                    v -= c;
                    v *= v;
                }
                acc += v;
            }
            sum = Vector512.Sum(acc);
        }
        else if (simd == CpuSimd.Vector256 && n >= 8)
        {
            Vector256<float> acc = Vector256<float>.Zero, c = Vector256.Create(center);
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                if (squares)
                {
                    v -= c;
                    v *= v;
                }
                acc += v;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float v = squares ? x[i] - center : x[i];
            sum += squares ? v * v : v;
        }
        return sum;
    }

    /// <summary>Layer norm backward: dx per row (parallel), then dgamma, dbeta per column over the rows.</summary>
    public static void LayerNormBackward(float* x, float* gamma, float* stats, float* dy, float* dx, float* dgamma, float* dbeta,
        int rows, int cols)
    {
        For(rows, (long)rows * cols, r =>
        {
            long b = (long)r * cols;
            float mean = stats[2 * r], rstd = stats[2 * r + 1], sg = 0f, sgx = 0f;
            for (int j = 0; j < cols; j++)
            {
                float g = dy[b + j] * gamma[j];
                sg += g;
                sgx += g * (x[b + j] - mean) * rstd;
            }
            sg /= cols;
            sgx /= cols;
            for (int j = 0; j < cols; j++)
                dx[b + j] = rstd * (dy[b + j] * gamma[j] - sg - (x[b + j] - mean) * rstd * sgx);
        });
        if (dgamma == null && dbeta == null)
            return;
        for (int r = 0; r < rows; r++)
        {
            long b = (long)r * cols;
            float mean = stats[2 * r], rstd = stats[2 * r + 1];
            for (int j = 0; j < cols; j++)
            {
                if (dgamma != null)
                    dgamma[j] += dy[b + j] * (x[b + j] - mean) * rstd;
                if (dbeta != null)
                    dbeta[j] += dy[b + j];
            }
        }
    }
}
