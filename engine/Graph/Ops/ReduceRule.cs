using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// The shared form of the reductions (<see cref="ReduceMean"/>, <see cref="ReduceSum"/>, <see cref="ReduceMax"/>):
/// attr axes, each an axis of the full tensor (N, ...) from 1 to rank - 1 (the batch axis is never reduced),
/// distinct; keepdims 1 keeps them as 1s. The reduced axes are taken in runs of adjacent axes, last run first, each
/// run one (Outer, Len, Inner) reduction (<see cref="AxisShape"/>) that leaves 1s in place:
/// <code>x: (N, d1..dk)   y: (N, d with the axes removed, or set to 1 with keepdims)</code>
/// </summary>
internal abstract class ReduceRule : OpRule
{
    /// <summary>The reduced axes of the full tensor, ascending; validated against the input rank (without batch).</summary>
    internal static int[] Axes(GraphNode node, int rankWithoutBatch)
    {
        var axes = node.Ints("axes", []);
        if (axes.Length == 0)
            throw new ArgumentException("needs the axes to reduce");
        if (axes.Any(a => a < 1 || a > rankWithoutBatch) || axes.Distinct().Count() != axes.Length)
            throw new ArgumentException(
                $"axes [{string.Join(",", axes)}] must be distinct axes 1..{rankWithoutBatch} of (N, ...) (the batch axis stays)");
        return axes.Order().ToArray();
    }

    /// <summary>Runs of adjacent axes as [from, to) over the full rank, last run first.</summary>
    internal static List<(int From, int To)> Runs(int[] axes)
    {
        var runs = new List<(int, int)>();
        int i = 0;
        while (i < axes.Length)
        {
            int j = i;
            while (j + 1 < axes.Length && axes[j + 1] == axes[j] + 1)
                j++;
            runs.Add((axes[i], axes[j] + 1));
            i = j + 1;
        }
        runs.Reverse();
        return runs;
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        var x = inputs[0];
        var axes = Axes(node, x.Length);
        int keep = node.Int("keepdims", 1);
        if (keep is not (0 or 1))
            throw new ArgumentException($"keepdims must be 0 or 1, is {keep}");
        CheckAxes(axes);
        var r = new List<int>();
        for (int k = 1; k <= x.Length; k++)
        {
            if (Array.IndexOf(axes, k) < 0)
                r.Add(x[k - 1]);
            else if (keep == 1)
                r.Add(1);
        }
        if (r.Count == 0)
            r.Add(1); // every non-batch axis reduced without keepdims: (N) stored as (N, 1)
        return [.. r];
    }

    /// <summary>Extra checks on the axes (max: one run only).</summary>
    protected virtual void CheckAxes(int[] axes) { }

    /// <summary>The full shape (batch first) after each run, starting from <paramref name="x"/>; 1s stay in place.</summary>
    internal static List<(AxisShape Shape, int[] After)> Plan(int[] x, int[] axes)
    {
        var steps = new List<(AxisShape, int[])>();
        var cur = (int[])x.Clone();
        foreach (var (from, to) in Runs(axes))
        {
            var s = AxisShape.Of(cur, from, to);
            var next = (int[])cur.Clone();
            for (int k = from; k < to; k++)
                next[k] = 1;
            steps.Add((s, next));
            cur = next;
        }
        return steps;
    }

    /// <summary>Sum over every run with the scale 1 or 1/count; the result viewed with <paramref name="outShape"/>.</summary>
    internal static Tensor SumRuns(Backend b, Tensor x, int[] axes, bool mean, int[] outShape, Func<Tensor, Tensor> own)
    {
        var cur = x;
        foreach (var (s, after) in Plan(x.Shape, axes))
        {
            var y = own(b.Allocate(after));
            b.ReduceSum(cur, y, s, mean);
            cur = y;
        }
        return own(cur.Reshape(outShape));
    }

    /// <summary>The adjoint of <see cref="SumRuns"/>: dy broadcast back along every run, first run last.</summary>
    internal static Tensor BroadcastRuns(Backend b, Tensor dy, int[] xShape, int[] axes, bool mean, Func<Tensor, Tensor> own)
    {
        var plan = Plan(xShape, axes);
        var cur = dy;
        for (int i = plan.Count - 1; i >= 0; i--)
        {
            var (s, _) = plan[i];
            int[] before = i == 0 ? xShape : plan[i - 1].After;
            var dx = own(b.Allocate(before));
            b.BroadcastAxis(cur, dx, s, mean);
            cur = dx;
        }
        return cur;
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}

/// <summary>The linear reductions, sum and mean: forward, adjoint and jets share <see cref="ReduceRule.SumRuns"/>.</summary>
internal abstract class LinearReduceRule : ReduceRule
{
    /// <summary>True for the mean.</summary>
    protected abstract bool Mean { get; }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var axes = Axes(a.Node, x.Shape.Length - 1);
        return SumRuns(a.Backend, x, axes, Mean, [a.N, .. a.Node.Shape], a.Pass.Own);
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var axes = Axes(a.Node, x.Shape.Length - 1);
        var dx = BroadcastRuns(a.Backend, a.Dy, x.Shape, axes, Mean, a.Grads.Own);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var y = new Tensor?[a.Order + 1];
        for (int k = 0; k <= a.Order; k++)
        {
            if (a.Inputs[0][k] is { } x)
                y[k] = SumRuns(a.Backend, x, Axes(a.Node, x.Shape.Length - 1), Mean, a.OutputShape, a.Own);
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;
}
