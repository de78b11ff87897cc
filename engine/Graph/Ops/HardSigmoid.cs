using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>max(0, min(1, alpha x + beta))</c> (op <c>hardsigmoid</c>). Attrs alpha (ONNX default 0.2), beta
/// (0.5), both finite. Piecewise linear.</summary>
internal sealed class HardSigmoid : UnaryMapRule<Kernels.HardSigmoid>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.HardSigmoid;

    /// <inheritdoc/>
    public override Kernels.HardSigmoid Operator(GraphNode node) => new(node.Float("alpha", 0.2f), node.Float("beta", 0.5f));

    /// <inheritdoc/>
    protected override void CheckAttributes(GraphNode node)
    {
        var h = Operator(node);
        if (!float.IsFinite(h.Alpha) || !float.IsFinite(h.Beta))
            throw new ArgumentException("alpha and beta must be finite");
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
