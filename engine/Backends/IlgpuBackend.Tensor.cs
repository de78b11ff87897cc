using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>The ILGPU backend's rank-general operations: one launch per kernel of <c>kernels/Transpose.cs</c>,
/// <c>kernels/AxisReduce.cs</c> and <c>kernels/LayerNorm.cs</c>.</summary>
internal sealed partial class IlgpuBackend
{
    /// <inheritdoc/>
    protected override void TransposeCore(Tensor x, Tensor y, TransposeShape s) =>
        Launch(Kernels.Transpose.Forward, y.Length, F(x), F(y), s);

    /// <inheritdoc/>
    protected override void ReduceSumCore(Tensor x, Tensor y, AxisShape s, bool mean) =>
        Launch(AxisReduce.Sum, y.Length, F(x), F(y), s, mean ? 1f / s.Len : 1f);

    /// <inheritdoc/>
    protected override void BroadcastAxisCore(Tensor dy, Tensor dx, AxisShape s, bool mean) =>
        Launch(AxisReduce.Broadcast, dx.Length, F(dy), F(dx), s, mean ? 1f / s.Len : 1f);

    /// <inheritdoc/>
    protected override void ReduceMaxCore(Tensor x, Tensor y, Tensor argmax, AxisShape s) =>
        Launch(AxisReduce.Max, y.Length, F(x), F(y), I(argmax), s);

    /// <inheritdoc/>
    protected override void ReduceMaxBackwardCore(Tensor dy, Tensor argmax, Tensor dx) =>
        Launch(AxisReduce.MaxBackward, dy.Length, F(dy), I(argmax), F(dx));

    /// <inheritdoc/>
    protected override void ReduceMaxRouteCore(Tensor x, Tensor argmax, Tensor y) =>
        Launch(AxisReduce.Route, y.Length, F(x), I(argmax), F(y));

    /// <inheritdoc/>
    protected override void LayerNormCore(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor stats, int rows, int cols, float eps)
    {
        Launch(Kernels.LayerNorm.Stats, rows, F(x), F(stats), cols, eps);
        Launch(Kernels.LayerNorm.Forward, y.Length, F(x), F(stats), F(gamma), F(beta), F(y), cols);
    }

    /// <inheritdoc/>
    protected override void LayerNormBackwardCore(Tensor x, Tensor gamma, Tensor stats, Tensor dy, Tensor dx, Tensor? dgamma, Tensor? dbeta, int rows, int cols)
    {
        Launch(Kernels.LayerNorm.BackwardData, rows, F(x), F(stats), F(gamma), F(dy), F(dx), cols);
        if (dgamma == null && dbeta == null)
            return;
        // One kernel writes both; a missing one gets a scratch buffer.
        using var g = dgamma == null ? Allocate(cols) : null;
        using var b = dbeta == null ? Allocate(cols) : null;
        Launch(Kernels.LayerNorm.BackwardParams, cols, F(x), F(stats), F(dy), F(dgamma ?? g!), F(dbeta ?? b!), rows, cols);
    }
}
