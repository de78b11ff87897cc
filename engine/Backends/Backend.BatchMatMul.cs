using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>The batched product of two computed tensors (<see cref="BatchMatMulShape"/>).</summary>
internal abstract partial class Backend
{
    /// <summary><c>y[b] = op(a[b]) op(w[b])</c>: a (Batch, M, K) or (Batch, K, M), w (Batch, K, N) or (Batch, N, K),
    /// y (Batch, M, N), overwritten; with <see cref="BatchMatMulShape.Broadcast"/>, a and w hold only the matrices
    /// their strides reach (numpy's broadcasting of the batch dims).</summary>
    public void BatchMatMul(Tensor a, Tensor w, Tensor y, BatchMatMulShape s)
    {
        s.Validate();
        Check(a, ElementType.Float32, nameof(a));
        Check(w, ElementType.Float32, nameof(w));
        Check(y, ElementType.Float32, nameof(y));
        CheckLength(a, s.MatricesA * s.M * s.K, nameof(a));
        CheckLength(w, s.MatricesB * s.K * s.N, nameof(w));
        CheckLength(y, (long)s.Batch * s.M * s.N, nameof(y));
        BatchMatMulCore(a, w, y, s);
    }

    /// <summary>Implements <see cref="BatchMatMul"/> (shapes checked).</summary>
    protected abstract void BatchMatMulCore(Tensor a, Tensor w, Tensor y, BatchMatMulShape s);
}
