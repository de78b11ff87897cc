using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Inference BatchNormalization as a per-channel affine map (op <c>batchnorm</c>; the converter folds it into a
/// preceding conv where there is one): <c>y[n, c, ...] = scale[c] x[n, c, ...] + shift[c]</c>. Params scale (C),
/// shift (C). Affine: jets scale every order, the shift goes to order 0 only.
/// <code>x, y: (N, C, ...)</code>
/// </summary>
internal sealed class BatchNorm : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.BatchNorm;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        Weight(node, "scale", weights, [inputs[0][0]]);
        Weight(node, "shift", weights, [inputs[0][0]]);
        return inputs[0];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.Pass.Own(a.Backend.Allocate(x.Shape));
        a.Backend.ChannelAffine(x, a.Param("scale"), a.Param("shift"), y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var b = a.Backend;
        var x = a.Input(0);
        var scale = a.Param("scale");
        if (a.Request.Parameters)
        {
            // dscale[c] = sum dy x, dshift[c] = sum dy over (n, ...)
            var ds = a.New(scale.Shape);
            var dt = a.New(scale.Shape);
            b.ChannelAffineBackwardParams(x, a.Dy, ds, dt);
            a.AccumulateParam("scale", ds);
            a.AccumulateParam("shift", dt);
        }
        var dx = a.New(x.Shape);
        b.ChannelAffineBackwardData(a.Dy, scale, dx);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var scale = a.Model.Parameter(a.Node.Param("scale")!);
        var shift = a.Model.Parameter(a.Node.Param("shift")!);
        var noShift = a.Own(b.Allocate(shift.Shape));
        return EveryOrder(a, (x, y, zero) => b.ChannelAffine(x, scale, zero ? shift : noShift, y));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
