using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>x &gt; 0 ? x : alpha x</c> (op <c>leakyrelu</c>). Attr alpha (ONNX default 0.01), finite. Derivative
/// at 0 is alpha (the x &lt;= 0 branch). Piecewise linear; keeps its plain gradient under the guided rules.</summary>
internal sealed class LeakyRelu : UnaryMapRule<Kernels.LeakyRelu>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.LeakyRelu;

    /// <inheritdoc/>
    public override Kernels.LeakyRelu Operator(GraphNode node) => new(node.Float("alpha", 0.01f));

    /// <inheritdoc/>
    protected override void CheckAttributes(GraphNode node)
    {
        if (!float.IsFinite(Operator(node).Alpha))
            throw new ArgumentException("alpha must be finite");
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
