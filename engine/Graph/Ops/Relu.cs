using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// max(x, 0) (op <c>relu</c>). Conventions: ReLU'(0) = 0; the backward rule is the request's
/// (<see cref="Kernels.ReluRule"/>): standard <c>dx = dy [x &gt; 0]</c>, guided <c>dx = dy [x &gt; 0][dy &gt; 0]</c>
/// (Springenberg et al.), deconvnet <c>dx = dy [dy &gt; 0]</c>. Jets multiply every order by the order-0 mask
/// [x0 &gt; 0] (higher derivatives vanish away from the kink; at the kink the order-0 mask decides).
/// <code>x, y: (N, ...) any shape</code>
/// </summary>
internal sealed class Relu : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Relu;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        return inputs[0];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.Into ?? a.Pass.Own(a.Backend.Allocate(x.Shape));
        a.Backend.Relu(x, y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        var rule = a.Request.StandardReluNodes?.Contains(a.Node.Name) == true ? Kernels.ReluRule.Standard : a.Request.ReluRule;
        a.Backend.ReluBackward(x, a.Dy, dx, rule);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var x = a.Inputs[0];
        var y = new Tensor?[a.Order + 1];
        y[0] = a.Own(b.Allocate(a.OutputShape));
        b.Relu(x[0]!, y[0]!);
        for (int k = 1; k <= a.Order; k++)
        {
            if (x[k] == null)
                continue;
            // y_k = [x_0 > 0] * x_k: the standard ReLU backward rule applied to the coefficient.
            y[k] = a.Own(b.Allocate(a.OutputShape));
            b.ReluBackward(x[0]!, x[k]!, y[k]!, Kernels.ReluRule.Standard);
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;

    /// <inheritdoc/>
    public override bool IsReluLike => true;

    /// <inheritdoc/>
    public override bool CanRunInPlace(GraphNode node) => true;
}
