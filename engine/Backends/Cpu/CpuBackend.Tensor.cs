using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>The managed CPU backend's rank-general operations (<see cref="CpuTensorOps"/>).</summary>
internal sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void TransposeCore(Tensor x, Tensor y, TransposeShape s) => CpuTensorOps.Transpose(In(x), Over(y), s);

    /// <inheritdoc/>
    protected override void ReduceSumCore(Tensor x, Tensor y, AxisShape s, bool mean) =>
        CpuTensorOps.ReduceSum(In(x), Over(y), s, mean ? 1f / s.Len : 1f);

    /// <inheritdoc/>
    protected override void BroadcastAxisCore(Tensor dy, Tensor dx, AxisShape s, bool mean) =>
        CpuTensorOps.BroadcastAxis(In(dy), Over(dx), s, mean ? 1f / s.Len : 1f);

    /// <inheritdoc/>
    protected override void ReduceMaxCore(Tensor x, Tensor y, Tensor argmax, AxisShape s)
    {
        var a = S(argmax);
        a.Touch();
        CpuTensorOps.ReduceMax(In(x), Over(y), a.IntPtr, s);
    }

    /// <inheritdoc/>
    protected override void ReduceMaxBackwardCore(Tensor dy, Tensor argmax, Tensor dx) =>
        CpuTensorOps.ReduceMaxBackward(In(dy), S(argmax).IntPtr, Out(dx), dy.Length);

    /// <inheritdoc/>
    protected override void ReduceMaxRouteCore(Tensor x, Tensor argmax, Tensor y) =>
        CpuTensorOps.Route(In(x), S(argmax).IntPtr, Over(y), y.Length);

    /// <inheritdoc/>
    protected override void LayerNormCore(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor stats, int rows, int cols, float eps) =>
        CpuTensorOps.LayerNorm(In(x), In(gamma), In(beta), Over(y), Over(stats), rows, cols, eps, Simd);

    /// <inheritdoc/>
    protected override void LayerNormBackwardCore(Tensor x, Tensor gamma, Tensor stats, Tensor dy, Tensor dx, Tensor? dgamma, Tensor? dbeta, int rows, int cols) =>
        CpuTensorOps.LayerNormBackward(In(x), In(gamma), In(stats), In(dy), Over(dx),
            dgamma == null ? null : Out(dgamma), dbeta == null ? null : Out(dbeta), rows, cols);
}
