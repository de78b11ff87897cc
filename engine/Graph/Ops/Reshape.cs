using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// A view with another shape of the same length (op <c>reshape</c>). Attr shape: the output shape without the
/// batch axis, 1 to <see cref="TensorShape.MaxRank"/> - 1 positive dimensions (the converter resolves ONNX's 0 and
/// -1). Nothing is copied: computed tensors are row-major, so a reshape is a relabelling; the gradient and every
/// jet order are views too.
/// <code>x: (N, d...)   y: (N, shape...)   prod(d) = prod(shape)</code>
/// </summary>
internal sealed class Reshape : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Reshape;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        var shape = node.Ints("shape", []);
        if (shape.Length < 1 || shape.Length > TensorShape.MaxRank - 1 || shape.Any(d => d < 1))
            throw new ArgumentException(
                $"shape [{string.Join(",", shape)}] must have 1 to {TensorShape.MaxRank - 1} positive dimensions");
        if (TensorShape.CheckedLength(shape) != TensorShape.CheckedLength(inputs[0]))
            throw new ArgumentException($"cannot reshape {TensorShape.Format(inputs[0])} to {TensorShape.Format(shape)}");
        return shape;
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
