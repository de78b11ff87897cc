using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Average pooling (op <c>avgpool</c>). Attrs: kernel, strides, pads, ceil_mode, count_include_pad (geometry of
/// <see cref="MaxPool.Geometry"/>). Linear: the jets average every order.
/// <code>x: (N, C, H, W)   y: (N, C, OH, OW)</code>
/// </summary>
internal sealed class AvgPool : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.AvgPool;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights) =>
        MaxPool.InferPool(node, inputs);

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.NewOutput();
        a.Backend.AvgPool(x, y, MaxPool.Geometry(a.Node, x.Shape[1..], a.N));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        a.Backend.AvgPoolBackward(a.Dy, dx, MaxPool.Geometry(a.Node, x.Shape[1..], a.N));
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var s = MaxPool.Geometry(a.Node, a.Inputs[0][0]!.Shape[1..], a.M);
        var b = a.Backend;
        return EveryOrder(a, (x, y, _) => b.AvgPool(x, y, s));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
