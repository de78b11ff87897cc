using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>Logistic sigmoid <c>1 / (1 + exp(-x))</c> (op <c>sigmoid</c>); smooth, derivatives in
/// <see cref="Kernels.Sigmoid"/>.</summary>
internal sealed class Sigmoid : UnaryMapRule<Kernels.Sigmoid>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Sigmoid;

    /// <inheritdoc/>
    public override Kernels.Sigmoid Operator(GraphNode node) => new();
}
