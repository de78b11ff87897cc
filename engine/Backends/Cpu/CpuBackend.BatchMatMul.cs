using System.Numerics;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The managed CPU backend's batched product of two computed tensors. Each output row y[b, i, :] is built as a sum
/// of rows of op(B) scaled by op(A)[b, i, k] (contiguous SIMD axpy over N) when B is stored (K, N), or as N dot
/// products of contiguous rows (SIMD over K) when B is stored transposed (N, K). Rows run in parallel.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void BatchMatMulCore(Tensor a, Tensor w, Tensor y, BatchMatMulShape s)
    {
        float* A = In(a), B = In(w), Y = Over(y);
        int rows = s.Batch * s.M;
        long work = (long)rows * s.K * s.N;
        void Row(int r)
        {
            int b = r / s.M, i = r % s.M;
            float* yr = Y + (long)r * s.N;
            if (s.TransB == 0)
            {
                new Span<float>(yr, s.N).Clear();
                for (int k = 0; k < s.K; k++)
                {
                    float av = A[s.A(b, i, k)];
                    if (av == 0f)
                        continue;
                    Axpy(av, B + (long)s.MatrixB(b) * s.K * s.N + (long)k * s.N, yr, s.N);
                }
                return;
            }
            // B stored (N, K): y[b, i, j] = dot(op(A) row i, B row j).
            float* ar = A + (long)s.MatrixA(b) * s.M * s.K + (long)i * s.K;
            float[]? tmp = null;
            if (s.TransA != 0)
            {
                tmp = new float[s.K];
                for (int k = 0; k < s.K; k++)
                    tmp[k] = A[s.A(b, i, k)];
            }
            fixed (float* t = tmp)
            {
                float* row = s.TransA != 0 ? t : ar;
                for (int j = 0; j < s.N; j++)
                    yr[j] = Dot(row, B + (long)s.MatrixB(b) * s.N * s.K + (long)j * s.K, s.K);
            }
        }
        if (work < 1 << 15 || rows < 2)
        {
            for (int r = 0; r < rows; r++)
                Row(r);
        }
        else
        {
            CpuParallel.For(rows, Row);
        }
    }

    private static void Axpy(float alpha, float* x, float* y, int n)
    {
        int k = 0;
        int w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<float>(alpha);
            for (; k + w <= n; k += w)
            {
                var vy = Vector.Load(y + k) + va * Vector.Load(x + k);
                vy.Store(y + k);
            }
        }
        for (; k < n; k++)
            y[k] += alpha * x[k];
    }

    private static float Dot(float* x, float* y, int n)
    {
        int k = 0;
        int w = Vector<float>.Count;
        float acc = 0f;
        if (Vector.IsHardwareAccelerated && n >= w)
        {
            var v = Vector<float>.Zero;
            for (; k + w <= n; k += w)
                v += Vector.Load(x + k) * Vector.Load(y + k);
            acc = Vector.Sum(v);
        }
        for (; k < n; k++)
            acc += x[k] * y[k];
        return acc;
    }
}
