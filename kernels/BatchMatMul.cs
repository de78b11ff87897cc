using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Geometry of a batched product of two computed tensors, <c>y[b] = op(A[b]) op(B[b])</c> for b in [0, Batch):
/// op(A) is (M, K), stored (M, K) or, with TransA, (K, M); op(B) is (K, N), stored (K, N) or, with TransB, (N, K);
/// y[b] is (M, N). Flags are ints: ILGPU kernel parameters must be blittable.
/// </summary>
internal readonly record struct BatchMatMulShape(int Batch, int M, int K, int N, int TransA, int TransB)
{
    /// <summary>Throws <see cref="ArgumentException"/> when a dimension is not positive or a flag not 0/1.</summary>
    public void Validate()
    {
        if (Batch < 1 || M < 1 || K < 1 || N < 1 || TransA is not (0 or 1) || TransB is not (0 or 1))
            throw new ArgumentException($"batch matmul: every dimension must be positive and the flags 0 or 1 ({this})");
        if ((long)Batch * M * Math.Max(K, N) > int.MaxValue || (long)Batch * K * N > int.MaxValue)
            throw new ArgumentException($"batch matmul: too many elements ({this})");
    }

    /// <summary>Index of op(A)[b, i, k] in A's storage.</summary>
    public int A(int b, int i, int k) => b * M * K + (TransA != 0 ? k * M + i : i * K + k);

    /// <summary>Index of op(B)[b, k, j] in B's storage.</summary>
    public int B(int b, int k, int j) => b * K * N + (TransB != 0 ? j * K + k : k * N + j);
}

/// <summary>
/// Batched matrix product of two computed tensors (attention's <c>q k^T</c> and <c>p v</c>):
/// <code>a: (Batch, M, K) or (Batch, K, M)   b: (Batch, K, N) or (Batch, N, K)   y: (Batch, M, N)</code>
/// The backward is the same kernel with flags: <c>da = dy b^T</c> (A = dy, B = b with TransB),
/// <c>db = a^T dy</c> (A = a with TransA, B = dy).
/// </summary>
internal static class BatchMatMul
{
    /// <summary><c>y[b, i, j] = sum_k op(A)[b, i, k] op(B)[b, k, j]</c>. Index: one per element of y.</summary>
    public static void Forward(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, BatchMatMulShape s)
    {
        int j = index % s.N;
        int i = index / s.N % s.M;
        int bt = index / (s.N * s.M);
        float acc = 0f;
        for (int k = 0; k < s.K; k++)
            acc += a[s.A(bt, i, k)] * b[s.B(bt, k, j)];
        y[index] = acc;
    }
}
