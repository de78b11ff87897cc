using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>x^p</c> for a constant exponent (op <c>pow</c>, attr exponent, finite): the decomposed LayerNorm's
/// square, tanh-GELU's cube. Smooth (for non-integer p only where x &gt; 0); value and derivatives in
/// <see cref="Kernels.Pow"/>.</summary>
internal sealed class Pow : UnaryMapRule<Kernels.Pow>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Pow;

    /// <inheritdoc/>
    public override Kernels.Pow Operator(GraphNode node) => new(node.Float("exponent", float.NaN));

    /// <inheritdoc/>
    protected override void CheckAttributes(GraphNode node)
    {
        if (!float.IsFinite(Operator(node).P))
            throw new ArgumentException("the exponent must be given and finite");
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => Operator(node).P is 0f or 1f;
}
