using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Padding (op <c>pad</c>), in one of two forms. Without <c>axis</c>: H and W of an image, attrs pads
/// [top, left, bottom, right]. With <c>axis</c> (of (N, ...), 1 or more, any rank): that one axis, attrs pads
/// [before, after]. Both: pads non-negative; <c>mode</c> 0 (constant <c>value</c>, finite), 1 (reflect: mirrored
/// without repeating the edge, pads below the side) or 2 (edge: the edge element repeated). Linear in x: the
/// backward sums dy over the outputs that read each input (a crop in constant mode), the jets pad every order with
/// the value at order 0 and zero above. The axis form runs on the same kernels, the tensor seen as
/// (N * Outer, 1, Len, Inner) padded along Len.
/// <code>
/// x: (N, C, H, W)   y: (N, C, H + top + bottom, W + left + right)
/// x: (N, .., L, ..) y: (N, .., L + before + after, ..)   with axis
/// </code>
/// </summary>
internal sealed class Pad : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Pad;

    /// <summary>Pad geometry for input <paramref name="x"/> (without the batch) and batch <paramref name="n"/>.</summary>
    public static PadShape Geometry(GraphNode node, int[] x, int n)
    {
        if (node.Attrs.ContainsKey("axis"))
        {
            int axis = node.Int("axis", 0);
            if (axis < 1 || axis > x.Length)
                throw new ArgumentException($"axis {axis} must be 1..{x.Length} of (N, ...)");
            var ba = node.Ints("pads", 2, [0, 0]);
            var s = AxisShape.Of([n, .. x], axis, axis + 1);
            return new PadShape(s.Outer, 1, s.Len, s.Inner, ba[0], 0, ba[1], 0) { Mode = node.Int("mode", 0) };
        }
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        return new PadShape(n, x[0], x[1], x[2], p[0], p[1], p[2], p[3]) { Mode = node.Int("mode", 0) };
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        if (!float.IsFinite(node.Float("value", 0f)))
            throw new ArgumentException("the pad value must be finite");
        if (node.Attrs.ContainsKey("axis"))
        {
            var x = inputs[0];
            var s = Geometry(node, x, 1);
            s.Validate();
            var r = (int[])x.Clone();
            r[node.Int("axis", 0) - 1] = s.OH;
            TensorShape.CheckedLength(r);
            return r;
        }
        var g = Geometry(node, Spatial(inputs[0]), 1);
        g.Validate();
        return [g.C, g.OH, g.OW];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.NewOutput();
        Apply(a.Backend, x, y, Geometry(a.Node, x.Shape[1..], a.N), a.Node.Float("value", 0f));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        Crop(a.Backend, a.Dy, dx, Geometry(a.Node, x.Shape[1..], a.N));
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var s = Geometry(a.Node, a.Inputs[0][0]!.Shape[1..], a.M);
        float value = a.Node.Float("value", 0f);
        var b = a.Backend;
        return EveryOrder(a, (x, y, zero) => Apply(b, x, y, s, zero ? value : 0f));
    }

    /// <summary>The padding <paramref name="s"/> of x into y, both seen as the geometry's (N, C, H, W).</summary>
    public static void Apply(Backend b, Tensor x, Tensor y, PadShape s, float value)
    {
        using var xv = x.Reshape(s.N, s.C, s.H, s.W);
        using var yv = y.Reshape(s.N, s.C, s.OH, s.OW);
        b.Pad(xv, yv, s, value);
    }

    /// <summary>The backward of <see cref="Apply"/>: dx = dy cropped.</summary>
    public static void Crop(Backend b, Tensor dy, Tensor dx, PadShape s)
    {
        using var dyv = dy.Reshape(s.N, s.C, s.OH, s.OW);
        using var dxv = dx.Reshape(s.N, s.C, s.H, s.W);
        b.PadBackward(dyv, dxv, s);
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
