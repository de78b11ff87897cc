using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Graph;

/// <summary>Something to do with an element-wise operator struct, whatever its type.</summary>
internal interface IUnaryAction
{
    /// <summary>Runs the action with the node's operator struct.</summary>
    void Run<TOp>(TOp op) where TOp : struct, IUnaryOp;
}

/// <summary>Maps an element-wise graph node to its <see cref="IUnaryOp"/> struct (with its attributes).</summary>
internal static class UnaryDispatch
{
    /// <summary>True for the ops that are element-wise maps over an <see cref="IUnaryOp"/>.</summary>
    public static bool IsUnary(string op) =>
        op is Ops.Sigmoid or Ops.HardSigmoid or Ops.HardSwish or Ops.LeakyRelu or Ops.Clip;

    /// <summary>Calls <paramref name="action"/> with the operator struct of <paramref name="node"/>.</summary>
    public static void Apply<TAction>(GraphNode node, ref TAction action) where TAction : struct, IUnaryAction
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node.Op)
        {
            case Ops.Sigmoid:
                action.Run(new Sigmoid());
                break;
            case Ops.HardSigmoid:
                action.Run(NodeGeometry.HardSigmoid(node));
                break;
            case Ops.HardSwish:
                action.Run(new HardSwish());
                break;
            case Ops.LeakyRelu:
                action.Run(NodeGeometry.LeakyRelu(node));
                break;
            case Ops.Clip:
                action.Run(NodeGeometry.Clip(node));
                break;
            default:
                throw new UnsupportedModelException($"node '{node.Name}': '{node.Op}' is not an element-wise map");
        }
    }
}
