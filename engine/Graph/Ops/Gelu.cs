using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>Exact GELU <c>x (1 + erf(x / sqrt 2)) / 2</c> (op <c>gelu</c>: what the converter makes of ONNX's Div, Erf,
/// Add, Mul, Mul chain). Smooth; value and derivatives in <see cref="Kernels.Gelu"/>.</summary>
internal sealed class Gelu : UnaryMapRule<Kernels.Gelu>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Gelu;

    /// <inheritdoc/>
    public override Kernels.Gelu Operator(GraphNode node) => new();
}
