using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Global average pooling (op <c>gap</c>): <c>y[n, c] = mean_{h,w} x[n, c, h, w]</c>. Linear.
/// <code>x: (N, C, H, W)   y: (N, C, 1, 1)</code>
/// </summary>
internal sealed class GlobalAvgPool : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.GlobalAvgPool;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        return [Spatial(inputs[0])[0], 1, 1];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var y = a.NewOutput();
        a.Backend.GlobalAvgPool(a.Input(0), y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var dx = a.New(a.Input(0).Shape);
        a.Backend.GlobalAvgPoolBackward(a.Dy, dx);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        return EveryOrder(a, (x, y, _) => b.GlobalAvgPool(x, y));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
