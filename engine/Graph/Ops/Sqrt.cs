using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>sqrt(x)</c> (op <c>sqrt</c>; the decomposed LayerNorm's <c>sqrt(var + eps)</c>). Smooth for x &gt; 0, NaN below as PyTorch.</summary>
internal sealed class Sqrt : UnaryMapRule<Kernels.Sqrt>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Sqrt;

    /// <inheritdoc/>
    public override Kernels.Sqrt Operator(GraphNode node) => new();
}
