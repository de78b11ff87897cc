using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Rank-general tensor operations on the managed CPU backend, in float: transpose, reductions over a middle axis
/// and their adjoints, layer normalization. Rows run in parallel when there is enough work; each row is a plain
/// loop (the layouts are strided by construction, so SIMD helps little beyond layer norm's contiguous rows).
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

    /// <summary>y = transpose(x): each output row of D5 elements is gathered with stride S5.</summary>
    public static void Transpose(float* x, float* y, TransposeShape s)
    {
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

    /// <summary><c>y[o, j] = scale * sum_l x[o, l, j]</c>.</summary>
    public static void ReduceSum(float* x, float* y, AxisShape s, float scale)
    {
        For(s.Outer, (long)s.Outer * s.Len * s.Inner, o =>
        {
            float* yo = y + (long)o * s.Inner;
            float* xo = x + (long)o * s.Len * s.Inner;
            for (int j = 0; j < s.Inner; j++)
                yo[j] = 0f;
            for (int l = 0; l < s.Len; l++)
            {
                float* row = xo + (long)l * s.Inner;
                for (int j = 0; j < s.Inner; j++)
                    yo[j] += row[j];
            }
            for (int j = 0; j < s.Inner; j++)
                yo[j] *= scale;
        });
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

    /// <summary>Layer norm per row with (mean, rstd) written to stats; two passes for the variance.</summary>
    public static void LayerNorm(float* x, float* gamma, float* beta, float* y, float* stats, int rows, int cols, float eps)
    {
        For(rows, (long)rows * cols, r =>
        {
            var row = new ReadOnlySpan<float>(x + (long)r * cols, cols);
            float sum = 0f;
            for (int j = 0; j < cols; j++)
                sum += row[j];
            float mean = sum / cols;
            float sq = 0f;
            for (int j = 0; j < cols; j++)
            {
                float d = row[j] - mean;
                sq += d * d;
            }
            float rstd = 1f / MathF.Sqrt(sq / cols + eps);
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
            float* o = y + (long)r * cols;
            for (int j = 0; j < cols; j++)
                o[j] = gamma[j] * ((row[j] - mean) * rstd) + beta[j];
        });
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
