using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>tanh(x)</c> (op <c>tanh</c>; tanh-approximated GELU). Smooth.</summary>
internal sealed class Tanh : UnaryMapRule<Kernels.Tanh>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Tanh;

    /// <inheritdoc/>
    public override Kernels.Tanh Operator(GraphNode node) => new();
}
