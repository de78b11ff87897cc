using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>a * b with broadcasting (op <c>mul</c>; the form of <see cref="BinaryOpRule"/>): squeeze-excitation
/// scaling, SiLU's x * sigmoid(x), layer scales. Affine (and piecewise linear) only when one factor does not
/// depend on the layer: a constant, or a branch from before it; a product of two activations bends.</summary>
internal sealed class Mul : BinaryOpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Mul;

    /// <inheritdoc/>
    public override BinaryOp Op => BinaryOp.Mul;

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) =>
        node.Inputs.Count(dependsOnLayer) == 1;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => node.Param("constant") != null;
}
