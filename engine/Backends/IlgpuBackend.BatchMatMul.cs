using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>The ILGPU backend's batched product: one thread per output element (<c>kernels/BatchMatMul.cs</c>).</summary>
internal sealed partial class IlgpuBackend
{
    /// <inheritdoc/>
    protected override void BatchMatMulCore(Tensor a, Tensor w, Tensor y, BatchMatMulShape s) =>
        Launch(Kernels.BatchMatMul.Forward, y.Length, F(a), F(w), F(y), s);
}
