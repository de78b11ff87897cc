using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>min(max(x, min), max)</c> (op <c>clip</c>; ReLU6 is clip(0, 6)). Attrs min, max (absent bounds are
/// infinite), an interval. Piecewise linear; keeps its plain gradient under the guided rules, as pytorch-grad-cam
/// does for ReLU6.</summary>
internal sealed class Clip : UnaryMapRule<Kernels.Clip>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Clip;

    /// <inheritdoc/>
    public override Kernels.Clip Operator(GraphNode node) =>
        new(node.Float("min", float.NegativeInfinity), node.Float("max", float.PositiveInfinity));

    /// <inheritdoc/>
    protected override void CheckAttributes(GraphNode node)
    {
        var c = Operator(node);
        if (float.IsNaN(c.Min) || float.IsNaN(c.Max) || c.Min > c.Max)
            throw new ArgumentException($"clip bounds [{c.Min}, {c.Max}] are not an interval");
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
