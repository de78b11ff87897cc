using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Geometry of a batched product of two computed tensors, <c>y[b] = op(A[a(b)]) op(B[b(b)])</c> for b in [0, Batch):
/// op(A) is (M, K), stored (M, K) or, with TransA, (K, M); op(B) is (K, N), stored (K, N) or, with TransB, (N, K);
/// y[b] is (M, N), contiguous. Without <see cref="Broadcast"/> the matrices of A and B are those of y (a(b) = b(b) =
/// b). With it, b runs over the batch dims (Batch / (B1 B2 B3), B1, B2, B3) row-major and each operand's matrix index
/// is <c>sum_k i_k S_k</c> (stride 0 along a dim the operand is broadcast over: numpy's MatMul). Flags and strides
/// are ints: ILGPU kernel parameters must be blittable.
/// </summary>
internal readonly record struct BatchMatMulShape(int Batch, int M, int K, int N, int TransA, int TransB)
{
    /// <summary>1: matrix indices from <see cref="B1"/>.. and the strides; 0: A, B and y share the batch index.</summary>
    public int Broadcast { get; init; }

    /// <summary>Batch dims 1..3 (dim 0 is Batch / (B1 B2 B3)).</summary>
    public int B1 { get; init; }

    /// <summary>Batch dim 2.</summary>
    public int B2 { get; init; }

    /// <summary>Batch dim 3.</summary>
    public int B3 { get; init; }

    /// <summary>A's matrix stride along batch dims 0..3.</summary>
    public int SA0 { get; init; }

    /// <summary>A's matrix stride along batch dim 1.</summary>
    public int SA1 { get; init; }

    /// <summary>A's matrix stride along batch dim 2.</summary>
    public int SA2 { get; init; }

    /// <summary>A's matrix stride along batch dim 3.</summary>
    public int SA3 { get; init; }

    /// <summary>B's matrix stride along batch dim 0.</summary>
    public int SB0 { get; init; }

    /// <summary>B's matrix stride along batch dim 1.</summary>
    public int SB1 { get; init; }

    /// <summary>B's matrix stride along batch dim 2.</summary>
    public int SB2 { get; init; }

    /// <summary>B's matrix stride along batch dim 3.</summary>
    public int SB3 { get; init; }

    /// <summary>A broadcasting geometry: batch dims <paramref name="dims"/> (1 to 4, their product the batch) and
    /// each operand's dims (the same rank, each 1 or equal to the batch dim), stored contiguously.</summary>
    public static BatchMatMulShape Broadcasting(int[] dims, int[] a, int[] b, int m, int k, int n, int transA = 0, int transB = 0)
    {
        if (dims.Length is < 1 or > 4 || a.Length != dims.Length || b.Length != dims.Length)
            throw new ArgumentException($"batch matmul: 1 to 4 batch dims of equal rank, got [{string.Join(",", dims)}], [{string.Join(",", a)}], [{string.Join(",", b)}]");
        int pad = 4 - dims.Length;
        var d = new int[4];
        var sa = new int[4];
        var sb = new int[4];
        long batch = 1;
        int strideA = 1, strideB = 1;
        for (int j = 3; j >= 0; j--)
        {
            int q = j - pad;
            d[j] = q < 0 ? 1 : dims[q];
            int da = q < 0 ? 1 : a[q], db = q < 0 ? 1 : b[q];
            if (d[j] < 1 || (da != d[j] && da != 1) || (db != d[j] && db != 1))
                throw new ArgumentException($"batch matmul: operand dims [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast to [{string.Join(",", dims)}]");
            sa[j] = da == 1 ? 0 : strideA;
            sb[j] = db == 1 ? 0 : strideB;
            strideA *= da;
            strideB *= db;
            batch *= d[j];
        }
        return new BatchMatMulShape(checked((int)batch), m, k, n, transA, transB)
        {
            Broadcast = 1, B1 = d[1], B2 = d[2], B3 = d[3],
            SA0 = sa[0], SA1 = sa[1], SA2 = sa[2], SA3 = sa[3], SB0 = sb[0], SB1 = sb[1], SB2 = sb[2], SB3 = sb[3],
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a dimension is not positive or a flag not 0/1.</summary>
    public void Validate()
    {
        if (Batch < 1 || M < 1 || K < 1 || N < 1 || TransA is not (0 or 1) || TransB is not (0 or 1) || Broadcast is not (0 or 1))
            throw new ArgumentException($"batch matmul: every dimension must be positive and the flags 0 or 1 ({this})");
        if (Broadcast != 0 && (B1 < 1 || B2 < 1 || B3 < 1 || Batch % ((long)B1 * B2 * B3) != 0
                               || new[] { SA0, SA1, SA2, SA3, SB0, SB1, SB2, SB3 }.Any(v => v < 0)))
            throw new ArgumentException($"batch matmul: batch dims and strides are inconsistent ({this})");
        if ((long)Batch * M * Math.Max(K, N) > int.MaxValue || (long)Batch * K * N > int.MaxValue)
            throw new ArgumentException($"batch matmul: too many elements ({this})");
    }

    /// <summary>Matrices of A the geometry reads (its largest matrix index plus 1).</summary>
    public long MatricesA => Broadcast == 0 ? Batch : Last(SA0, SA1, SA2, SA3);

    /// <summary>Matrices of B the geometry reads.</summary>
    public long MatricesB => Broadcast == 0 ? Batch : Last(SB0, SB1, SB2, SB3);

    private long Last(int s0, int s1, int s2, int s3) =>
        (long)(Batch / (B1 * B2 * B3) - 1) * s0 + (long)(B1 - 1) * s1 + (long)(B2 - 1) * s2 + (long)(B3 - 1) * s3 + 1;

    /// <summary>The matrix of A that batch index <paramref name="b"/> reads.</summary>
    public int MatrixA(int b)
    {
        if (Broadcast == 0)
            return b;
        int i3 = b % B3, t = b / B3, i2 = t % B2;
        t /= B2;
        return t / B1 * SA0 + t % B1 * SA1 + i2 * SA2 + i3 * SA3;
    }

    /// <summary>The matrix of B that batch index <paramref name="b"/> reads.</summary>
    public int MatrixB(int b)
    {
        if (Broadcast == 0)
            return b;
        int i3 = b % B3, t = b / B3, i2 = t % B2;
        t /= B2;
        return t / B1 * SB0 + t % B1 * SB1 + i2 * SB2 + i3 * SB3;
    }

    /// <summary>Index of op(A)[b, i, k] in A's storage.</summary>
    public int A(int b, int i, int k) => MatrixA(b) * M * K + (TransA != 0 ? k * M + i : i * K + k);

    /// <summary>Index of op(B)[b, k, j] in B's storage.</summary>
    public int B(int b, int k, int j) => MatrixB(b) * K * N + (TransB != 0 ? j * K + k : k * N + j);
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
