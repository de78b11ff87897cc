using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Elements [start, start + count) along one axis (op <c>slice</c>): ONNX Slice with step 1 on one axis, Split
/// (one node per part), Gather of a constant index range. Attrs axis (of (N, ...), 1 or more), start, count.
/// <code>x: (Outer, Len, Inner)   y: (Outer, count, Inner)   dx = y placed back into zeros</code>
/// Linear: the jets slice every order.
/// </summary>
internal sealed class Slice : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Slice;

    private static (int Axis, int Start, int Count) Attrs(GraphNode node, int[] x)
    {
        int axis = node.Int("axis", 0), start = node.Int("start", -1), count = node.Int("count", 0);
        if (axis < 1 || axis > x.Length)
            throw new ArgumentException($"axis {axis} must be 1..{x.Length} of (N, ...)");
        if (start < 0 || count < 1 || (long)start + count > x[axis - 1])
            throw new ArgumentException($"[{start}, {(long)start + count}) is not a non-empty range of an axis of {x[axis - 1]}");
        return (axis, start, count);
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        var (axis, _, count) = Attrs(node, inputs[0]);
        var r = (int[])inputs[0].Clone();
        r[axis - 1] = count;
        return r;
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var (axis, start, count) = Attrs(a.Node, x.Shape[1..]);
        var y = a.NewOutput();
        a.Backend.SliceAxis(x, y, AxisShape.Of(x.Shape, axis, axis + 1), start, count);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var (axis, start, count) = Attrs(a.Node, x.Shape[1..]);
        var dx = a.New(x.Shape);
        a.Backend.PlaceAxis(a.Dy, dx, AxisShape.Of(x.Shape, axis, axis + 1), start, count);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var shape = a.Inputs[0][0]!.Shape;
        var (axis, start, count) = Attrs(a.Node, shape[1..]);
        var s = AxisShape.Of(shape, axis, axis + 1);
        var b = a.Backend;
        return EveryOrder(a, (x, y, _) => b.SliceAxis(x, y, s, start, count));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
