using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary><c>x * max(0, min(1, x / 6 + 1/2))</c> (op <c>hardswish</c>, MobileNetV3); piecewise quadratic, so not
/// piecewise linear.</summary>
internal sealed class HardSwish : UnaryMapRule<Kernels.HardSwish>
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.HardSwish;

    /// <inheritdoc/>
    public override Kernels.HardSwish Operator(GraphNode node) => new();
}
