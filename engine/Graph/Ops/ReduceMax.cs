using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Maximum over one run of adjacent axes (op <c>reducemax</c>; the form of <see cref="ReduceRule"/>). Ties go to
/// the first maximum in scan order, as max-pooling; the backward routes dy there, the jets route every order
/// through the order-0 maxima.
/// <code>x: (Outer, Len, Inner)   y, argmax: (Outer, Inner)</code>
/// </summary>
internal sealed class ReduceMax : ReduceRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.ReduceMax;

    /// <inheritdoc/>
    protected override void CheckAxes(int[] axes)
    {
        if (Runs(axes).Count != 1)
            throw new ArgumentException($"axes [{string.Join(",", axes)}] must be adjacent for a maximum");
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var (s, _) = Plan(x.Shape, Axes(a.Node, x.Shape.Length - 1))[0];
        var y = a.NewOutput();
        var argmax = a.Pass.Own(a.Backend.AllocateIndices(y.Shape));
        a.Backend.ReduceMax(x, y, argmax, s);
        a.Pass.Argmax[a.Node.Name] = argmax;
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var dx = a.New(a.Input(0).Shape);
        a.Backend.ReduceMaxBackward(a.Dy, a.Pass.Argmax[a.Node.Name], dx);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var x = a.Inputs[0];
        var (s, _) = Plan(x[0]!.Shape, Axes(a.Node, x[0]!.Shape.Length - 1))[0];
        var y = new Tensor?[a.Order + 1];
        y[0] = a.Own(b.Allocate(a.OutputShape));
        var argmax = a.Own(b.AllocateIndices(a.OutputShape));
        b.ReduceMax(x[0]!, y[0]!, argmax, s);
        for (int k = 1; k <= a.Order; k++)
        {
            if (x[k] == null)
                continue;
            y[k] = a.Own(b.Allocate(a.OutputShape));
            b.ReduceMaxRoute(x[k]!, argmax, y[k]!);
        }
        return y;
    }
}
