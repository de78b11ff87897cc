using System.Numerics;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The managed CPU backend's batched matrix product (attention's <c>q k^T</c> and <c>p v</c>, and a MatMul by a
/// weight, as ConvNeXt's and the transformers' linear layers export). Products of 65,536 multiply-adds or more run
/// as packed GEMMs (<see cref="PackedGemm"/>): one over every batch's rows when the batches share B and A's matrices
/// are consecutive (a linear layer over tokens), else one per batch, the batches in parallel when each is small.
/// Smaller ones build each output row y[b, i, :] as a sum of rows of op(B) scaled by op(A)[b, i, k] (contiguous SIMD
/// axpy over N) when B is stored (K, N), or as N dot products of contiguous rows (SIMD over K) when B is stored
/// transposed (N, K), rows in parallel.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void BatchMatMulCore(Tensor a, Tensor w, Tensor y, BatchMatMulShape s)
    {
        float* A = In(a), B = In(w), Y = Over(y);
        int rows = s.Batch * s.M;
        long work = (long)rows * s.K * s.N;
        if (work >= PackedMatMulWork && PackedMatMul)
        {
            PackedBatchMatMul(A, B, Y, s);
            return;
        }
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

    /// <summary>
    /// Multiply-adds from which <see cref="BatchMatMulCore"/> runs packed GEMMs. Measured on the 2-vCPU Zen 4 VM, one
    /// process, alternating (packed / row loops): ViT-B/16's attention products at batch 1, 12 heads, q k^T 0.454 / 1.489
    /// ms and p v 0.334 / 1.800; Swin-like 96 windows of 49 tokens, 32 dims, 0.237 / 0.646 and 0.122 / 0.791; torchvision's
    /// ViT-B/16 lean forward (PROFILE_LEAN=1 PROFILE_PACKED_MATMUL=1, 100 ms sleep, 64 MB sweep) 285.2 / 357.5 ms, its
    /// batched products 10.2 / 79.5.
    /// </summary>
    internal const long PackedMatMulWork = 1 << 16;

    /// <summary>Whether large batched products run as packed GEMMs (else the row loops). Tests and the bench switch it.</summary>
    internal static bool PackedMatMul { get; set; } = true;

    /// <summary>The batched product as packed GEMMs (see the class summary).</summary>
    private void PackedBatchMatMul(float* A, float* B, float* Y, BatchMatMulShape s)
    {
        long brs = s.TransB != 0 ? 1 : s.N, bcs = s.TransB != 0 ? s.K : 1;
        long ars = s.TransA != 0 ? 1 : s.K, acs = s.TransA != 0 ? s.M : 1;
        long matA = (long)s.M * s.K, matB = (long)s.K * s.N, matY = (long)s.M * s.N;
        bool sharedB = s.MatricesB == 1, consecutiveA = s.TransA == 0 && s.MatricesA == s.Batch;
        for (int b = 0; consecutiveA && b < s.Batch; b++)
            consecutiveA = s.MatrixA(b) == b;
        if (sharedB && consecutiveA)
        {
            // One GEMM: the batches' rows of A are consecutive rows of one matrix, all times the one B.
            Dense(s.Batch * s.M, s.N, s.K, A, s.K, 1, 1f, B, brs, bcs, Y, false);
            return;
        }
        void One(int b, bool serial) =>
            Dense(s.M, s.N, s.K, A + s.MatrixA(b) * matA, ars, acs, 1f, B + s.MatrixB(b) * matB, brs, bcs, Y + b * matY, false,
                serial);
        if (s.Batch > 1 && 2.0 * s.M * s.N * s.K < PackedGemm.SerialFlops)
        {
            // Small products (attention heads): the batches in parallel, each GEMM on one thread.
            CpuParallel.For(s.Batch, b => One(b, true));
            return;
        }
        for (int b = 0; b < s.Batch; b++)
            One(b, false);
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
