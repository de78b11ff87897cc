using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// (N, d1, d2, ...) to (N, d1*d2*...) (op <c>flatten</c>, ONNX axis 1 only). A view: nothing is copied, the
/// gradient is dy viewed with the input's shape, and every jet order is viewed the same way.
/// </summary>
internal sealed class Flatten : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Flatten;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        if (node.Int("axis", 1) != 1)
            throw new ArgumentException("only axis=1 is supported");
        return [checked((int)TensorShape.CheckedLength(inputs[0]))];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a) => a.Pass.Own(a.Input(0).Reshape([a.N, .. a.Node.Shape]));

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a) => a.Accumulate(0, a.Grads.Own(a.Dy.Reshape(a.Input(0).Shape)));

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a) => EveryOrderView(a);

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;

    /// <inheritdoc/>
    public override bool IsView => true;
}
