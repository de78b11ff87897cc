using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>The error function <c>erf(x)</c> (op <c>erf</c>; exact GELU is <c>x (1 + erf(x / sqrt 2)) / 2</c>). Smooth; value and derivatives in <see cref="Kernels.Erf"/>.</summary>
internal sealed class Erf : UnaryMapRule<Kernels.Erf>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Erf;

    /// <inheritdoc/>
    public override Kernels.Erf Operator(GraphNode node) => new();
}
