using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Concatenation of every input along one axis (op <c>concat</c>; attr axis of (N, ...), default 1, the channel
/// axis; any axis but the batch). Linear: the backward cuts dy back into the parts, the jets concatenate every
/// order (a missing order is zero).
/// <code>x_i: (N, .., D_i, ..)   y: (N, .., sum D_i, ..)   along the axis; the other axes equal</code>
/// An optional parameter <c>constant</c> (shape without the batch) joins the parts at position attr
/// <c>constant_at</c> (0..inputs), the same for every image (ViT's class token): the forward repeats it over the
/// batch, its gradient is the sum over the batch of its slice of dy, and its jets are zero above order 0.
/// </summary>
internal sealed class Concat : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Concat;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        if (inputs.Length < 1)
            throw new ArgumentException("needs at least one input");
        if (node.Param("constant") is { } cn)
        {
            if (!weights.TryGetValue(cn, out var c))
                throw new ArgumentException($"parameter tensor '{cn}' is not in the file");
            int at = node.Int("constant_at", -1);
            if (at < 0 || at > inputs.Length)
                throw new ArgumentException($"constant_at {at} must be 0..{inputs.Length}");
            inputs = [.. inputs[..at], c.Shape, .. inputs[at..]];
        }
        else if (node.Attrs.ContainsKey("constant_at"))
        {
            throw new ArgumentException("constant_at is set but the node has no constant");
        }
        int axis = Axis(node, inputs[0]);
        long total = 0;
        foreach (var s in inputs)
        {
            bool same = s.Length == inputs[0].Length;
            for (int k = 0; same && k < s.Length; k++)
                same = k == axis - 1 || s[k] == inputs[0][k];
            if (!same)
                throw new ArgumentException($"inputs {TensorShape.Format(inputs[0])} and {TensorShape.Format(s)} differ outside axis {axis}");
            total += s[axis - 1];
        }
        if (total > TensorShape.MaxElements)
            throw new ArgumentException($"{total} elements along axis {axis} in all");
        int[] r = (int[])inputs[0].Clone();
        r[axis - 1] = (int)total;
        return r;
    }

    /// <summary>The concatenation axis of (N, ...), 1..rank-1.</summary>
    private static int Axis(GraphNode node, int[] x)
    {
        int axis = node.Int("axis", 1);
        if (axis < 1 || axis > x.Length)
            throw new ArgumentException($"axis {axis} must be 1..{x.Length} of (N, ...) (the batch axis is not concatenated)");
        return axis;
    }

    /// <summary>Writes the parts into y along the axis: the channel-axis kernels for axis 1, else one
    /// <see cref="Backend.PlaceAxis"/> per part.</summary>
    private static void Join(Backend b, GraphNode node, IReadOnlyList<Tensor> parts, Tensor y)
    {
        int axis = Axis(node, y.Shape[1..]);
        if (axis == 1)
        {
            b.Concat(parts, y);
            return;
        }
        var s = Kernels.AxisShape.Of(y.Shape, axis, axis + 1);
        int offset = 0;
        foreach (var p in parts)
        {
            b.PlaceAxis(p, y, s, offset, p.Shape[axis]);
            offset += p.Shape[axis];
        }
    }

    /// <summary>Cuts dy back into the parts' gradients (the adjoint of <see cref="Join"/>).</summary>
    private static void Split(Backend b, GraphNode node, Tensor dy, IReadOnlyList<Tensor> parts)
    {
        int axis = Axis(node, dy.Shape[1..]);
        if (axis == 1)
        {
            b.ConcatBackward(dy, parts);
            return;
        }
        var s = Kernels.AxisShape.Of(dy.Shape, axis, axis + 1);
        int offset = 0;
        foreach (var p in parts)
        {
            b.SliceAxis(dy, p, s, offset, p.Shape[axis]);
            offset += p.Shape[axis];
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var y = a.NewOutput();
        var pass = a.Pass;
        var parts = a.Node.Inputs.Select(i => pass[i]).ToList();
        if (a.Node.Param("constant") is { } cn)
            parts.Insert(a.Node.Int("constant_at", 0), a.Pass.Own(Repeat(a.Backend, a.Model.Parameter(cn), a.N)));
        Join(a.Backend, a.Node, parts, y);
        return y;
    }

    /// <summary>The constant (shape) repeated for each of <paramref name="n"/> images: (n, shape).</summary>
    private static Tensor Repeat(Backend b, Tensor c, int n)
    {
        var r = b.Allocate([n, .. c.Shape]);
        for (int i = 0; i < n; i++)
            b.CopyRange(c, 0, r, i * c.Length, c.Length);
        return r;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var args = a;
        var parts = a.Node.Inputs.Select(i => args.New(args.Pass[i].Shape)).ToList();
        string? cn = a.Node.Param("constant");
        int at = a.Node.Int("constant_at", 0);
        Tensor? dc = null;
        if (cn != null)
        {
            dc = a.New([a.N, .. a.Model.Parameter(cn).Shape]);
            parts.Insert(at, dc);
        }
        Split(a.Backend, a.Node, a.Dy.Reshape([a.N, .. a.Node.Shape]), parts);
        if (dc != null)
        {
            parts.RemoveAt(at);
            if (a.Request.Parameters)
            {
                // One value for every image: its gradient sums over the batch.
                int len = dc.Length / a.N;
                var g = a.New(dc.Shape[1..]);
                a.Backend.ReduceSum(dc, g, new Kernels.AxisShape(1, a.N, len), false);
                a.AccumulateParam("constant", g);
            }
        }
        for (int k = 0; k < parts.Count; k++)
            a.Accumulate(k, parts[k]);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var y = new Tensor?[a.Order + 1];
        for (int k = 0; k <= a.Order; k++)
        {
            int order = k;
            if (a.Inputs.All(v => v[order] == null) && (k > 0 || a.Node.Param("constant") == null))
                continue;
            var own = a.Own;
            var parts = a.Inputs.Select(v => v[order] ?? own(b.Allocate(v[0]!.Shape))).ToList();
            if (a.Node.Param("constant") is { } cn)
            {
                var c = a.Model.Parameter(cn);
                // Order 0 holds the constant; higher orders are zero there.
                parts.Insert(a.Node.Int("constant_at", 0), k == 0 ? own(Repeat(b, c, a.M)) : own(b.Allocate([a.M, .. c.Shape])));
            }
            y[k] = a.Own(b.Allocate(a.OutputShape));
            Join(b, a.Node, parts, y[k]!);
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
