using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Constant padding of H and W (op <c>pad</c>). Attrs: pads [top, left, bottom, right] (non-negative), value
/// (finite). Affine: the backward crops dy, the jets pad every order with the value at order 0 and zero above.
/// <code>x: (N, C, H, W)   y: (N, C, H + top + bottom, W + left + right)</code>
/// </summary>
internal sealed class Pad : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Pad;

    /// <summary>Pad geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static PadShape Geometry(GraphNode node, int[] x, int n)
    {
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        return new PadShape(n, x[0], x[1], x[2], p[0], p[1], p[2], p[3]);
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        var g = Geometry(node, Spatial(inputs[0]), 1);
        g.Validate();
        if (!float.IsFinite(node.Float("value", 0f)))
            throw new ArgumentException("the pad value must be finite");
        return [g.C, g.OH, g.OW];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.NewOutput();
        a.Backend.Pad(x, y, Geometry(a.Node, x.Shape[1..], a.N), a.Node.Float("value", 0f));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        a.Backend.PadBackward(a.Dy, dx, Geometry(a.Node, x.Shape[1..], a.N));
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var s = Geometry(a.Node, a.Inputs[0][0]!.Shape[1..], a.M);
        float value = a.Node.Float("value", 0f);
        var b = a.Backend;
        return EveryOrder(a, (x, y, zero) => b.Pad(x, y, s, zero ? value : 0f));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
