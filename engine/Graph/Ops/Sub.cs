using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>a - b with broadcasting (op <c>sub</c>; the form of <see cref="BinaryOpRule"/>). Affine in each operand.</summary>
internal sealed class Sub : BinaryOpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Sub;

    /// <inheritdoc/>
    public override BinaryOp Op => BinaryOp.Sub;

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
