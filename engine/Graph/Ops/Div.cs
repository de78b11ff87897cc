using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>a / b with broadcasting (op <c>div</c>; the form of <see cref="BinaryOpRule"/>). Division by zero
/// gives IEEE infinities, as PyTorch. Affine only when the divisor does not depend on the layer.</summary>
internal sealed class Div : BinaryOpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Div;

    /// <inheritdoc/>
    public override BinaryOp Op => BinaryOp.Div;

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) =>
        node.Param("constant") != null ? node.Int("constant_first", 0) == 0 : !dependsOnLayer(node.Inputs[1]);

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) =>
        node.Param("constant") != null && node.Int("constant_first", 0) == 0;
}
