using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// The shared form of element-wise unary maps over an <see cref="IUnaryOp"/> struct (value and first three
/// derivatives written once in <c>kernels/Unary.cs</c>, used by every backend):
/// <code>x, y: (N, ...) any shape   y = f(x)   dx = dy f'(x)</code>
/// Jets combine orders by Faa di Bruno's formula with f', f'', f''' at x0 (<see cref="Unary.Jet{TOp}"/>); the three
/// orders travel stacked in one (3, len) tensor.
/// </summary>
/// <typeparam name="TOp">The operator struct.</typeparam>
internal abstract class UnaryMapRule<TOp> : OpRule where TOp : struct, IUnaryOp
{
    /// <summary>The operator struct with the node's attributes.</summary>
    public abstract TOp Operator(GraphNode node);

    /// <summary>Validates the node's attributes (throws <see cref="ArgumentException"/>).</summary>
    protected virtual void CheckAttributes(GraphNode node) { }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        CheckAttributes(node);
        return inputs[0];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        // In place where the planner allows it (a GELU after the matmul it reads, when that matmul does not fuse it).
        var y = a.Into ?? a.Pass.Own(a.Backend.Allocate(x.Shape));
        a.Backend.Unary(Operator(a.Node), x, y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        a.Backend.UnaryBackward(Operator(a.Node), x, a.Dy.Reshape(x.Shape), dx);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var op = Operator(a.Node);
        var x = a.Inputs[0];
        var y = new Tensor?[a.Order + 1];
        var x0 = x[0]!;
        y[0] = a.Own(b.Allocate(x0.Shape));
        b.Unary(op, x0, y[0]!);
        if (x.Skip(1).All(t => t == null))
            return y;
        int n = x0.Length;
        var xs = a.Own(b.Allocate(3, n));
        for (int k = 1; k <= a.Order; k++)
        {
            if (x[k] != null)
                b.CopyRange(x[k]!, 0, xs, (k - 1) * n, n);
        }
        var ys = a.Own(b.Allocate(3, n));
        b.UnaryJet(op, x0, xs, ys);
        for (int k = 1; k <= a.Order; k++)
        {
            y[k] = a.Own(b.Allocate(x0.Shape));
            b.CopyRange(ys, (k - 1) * n, y[k]!, 0, n);
        }
        return y;
    }
}
