using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>The reference backend's batched product: straight loops in double.</summary>
internal sealed partial class ReferenceBackend
{
    /// <inheritdoc/>
    protected override void BatchMatMulCore(Tensor a, Tensor w, Tensor y, BatchMatMulShape s)
    {
        double[] A = D(a), B = D(w), Y = D(y);
        for (int b = 0; b < s.Batch; b++)
        for (int i = 0; i < s.M; i++)
        for (int j = 0; j < s.N; j++)
        {
            double acc = 0;
            for (int k = 0; k < s.K; k++)
                acc += A[s.A(b, i, k)] * B[s.B(b, k, j)];
            Y[(b * s.M + i) * s.N + j] = acc;
        }
    }
}
