using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>a + b with broadcasting (op <c>add</c>; the form of <see cref="BinaryOpRule"/>): residual connections,
/// constant offsets. Affine in each operand; an addition of two activations may run in place over one of them and
/// may carry a following ReLU.</summary>
internal sealed class Add : BinaryOpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Add;

    /// <inheritdoc/>
    public override BinaryOp Op => BinaryOp.Add;

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;

    /// <inheritdoc/>
    public override bool CanRunInPlace(GraphNode node) => node.Param("constant") == null && node.Inputs.Length == 2;

    /// <inheritdoc/>
    public override bool CanFuseRelu(GraphNode node, IReadOnlyDictionary<string, int[]> shapes) => SameShapeActivations(node, shapes);
}
