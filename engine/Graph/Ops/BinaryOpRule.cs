using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// The shared form of the broadcasting arithmetic ops (<see cref="Add"/>, <see cref="Sub"/>, <see cref="Mul"/>,
/// <see cref="Div"/>): two activations of equal rank, or one activation and the parameter <c>constant</c>
/// (right-aligned against (N, ...), never reaching the batch axis); attr <c>constant_first</c> 1 puts the constant
/// on the left. Up to 3 axes besides the batch (the rank-4 <see cref="BroadcastShape"/> kernels).
/// <code>a: (N, A...)   b: (N, B...) or constant (B...)   y: (N, broadcast(A, B))</code>
/// </summary>
internal abstract class BinaryOpRule : OpRule
{
    /// <summary>The kernel's operator.</summary>
    public abstract BinaryOp Op { get; }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        int first = node.Int("constant_first", 0);
        if (first is not (0 or 1))
            throw new ArgumentException($"constant_first must be 0 or 1, is {first}");
        int[] other;
        if (node.Param("constant") is { } cn)
        {
            Arity(inputs, 1);
            if (!weights.TryGetValue(cn, out var c))
                throw new ArgumentException($"parameter tensor '{cn}' is not in the file");
            // The constant is right-aligned against (N, ...) and must not reach the batch axis.
            if (c.Shape.Length > inputs[0].Length)
                throw new ArgumentException($"constant {c.ShapeText} has a higher rank than the input {TensorShape.Format(inputs[0])}");
            other = c.Shape;
        }
        else
        {
            Arity(inputs, 2);
            if (first != 0)
                throw new ArgumentException("constant_first is set but the node has no constant");
            if (inputs[0].Length != inputs[1].Length)
                throw new ArgumentException($"operand ranks differ: {TensorShape.Format(inputs[0])} and {TensorShape.Format(inputs[1])}");
            other = inputs[1];
        }
        if (inputs[0].Length is < 1 or > 3)
            throw new ArgumentException($"operands must have 1 to 3 dimensions besides the batch, got {TensorShape.Format(inputs[0])}");
        return BroadcastShape.Broadcast(inputs[0], other);
    }

    /// <summary>The (a, b) operands: two activations, or an activation and its constant in <c>constant_first</c> order.</summary>
    internal static (Tensor A, Tensor B) Operands(DeviceModel model, ForwardPass pass, GraphNode node)
    {
        var x = pass[node.Inputs[0]];
        if (node.Param("constant") is not { } name)
            return (x, pass[node.Inputs[1]]);
        var c = model.Parameter(name);
        return node.Int("constant_first", 0) != 0 ? (c, x) : (x, c);
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var (p, q) = Operands(a.Model, a.Pass, a.Node);
        var y = a.Into ?? a.NewOutput();
        if (a.FuseRelu)
            a.Backend.AddRelu(p, q, y); // a same-shape addition of two activations (CanFuseRelu)
        else
            a.Backend.Binary(Op, p, q, y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var (p, q) = Operands(a.Model, a.Pass, a.Node);
        var dy = a.Grads.Own(a.Dy.Reshape([a.N, .. a.Node.Shape]));
        string? constant = a.Node.Param("constant");
        bool constantFirst = a.Node.Int("constant_first", 0) != 0;
        for (int operand = 0; operand < 2; operand++)
        {
            var t = operand == 0 ? p : q;
            bool isConstant = constant != null && (operand == 0) == constantFirst;
            if (isConstant && !a.Request.Parameters)
                continue;
            // d(op)/d(operand), summed over the axes the operand was broadcast along.
            var g = a.New(t.Shape);
            a.Backend.BinaryBackward(Op, p, q, dy, g, operand);
            if (isConstant)
                a.AccumulateParam("constant", g);
            else
                a.Accumulate(constant == null ? operand : 0, g);
        }
    }

    /// <summary>
    /// Jets: sums and differences order by order; products by the Cauchy product <c>y_k = sum_{i+j=k} a_i b_j</c>;
    /// quotients from <c>q b = a</c>: <c>q_k = (a_k - sum_{j=1..k} b_j q_{k-j}) / b_0</c>. A constant operand has
    /// order 0 only.
    /// </summary>
    public override Tensor?[] Jets(JetArgs args)
    {
        var b = args.Backend;
        var node = args.Node;
        int order = args.Order;
        var own = args.Own;
        Tensor?[] a, c;
        if (node.Param("constant") is { } name)
        {
            var constant = new Tensor?[order + 1];
            constant[0] = args.Model.Parameter(name);
            (a, c) = node.Int("constant_first", 0) != 0 ? (constant, args.Inputs[0]) : (args.Inputs[0], constant);
        }
        else
        {
            (a, c) = (args.Inputs[0], args.Inputs[1]);
        }
        int[] outShape = BroadcastShape.Broadcast(a[0]!.Shape, c[0]!.Shape);
        Tensor Apply(BinaryOp o, Tensor p, Tensor q)
        {
            var r = own(b.Allocate(BroadcastShape.Broadcast(p.Shape, q.Shape)));
            b.Binary(o, p, q, r);
            return r;
        }
        Tensor OrZero(Tensor? t, Tensor like) => t ?? own(b.Allocate(like.Shape));
        var y = new Tensor?[order + 1];
        y[0] = Apply(Op, a[0]!, c[0]!);
        for (int k = 1; k <= order; k++)
        {
            switch (Op)
            {
                case BinaryOp.Add or BinaryOp.Sub:
                    if (a[k] == null && c[k] == null)
                        break;
                    y[k] = Apply(Op, OrZero(a[k], a[0]!), OrZero(c[k], c[0]!));
                    break;
                case BinaryOp.Mul:
                    for (int i = 0; i <= k; i++)
                    {
                        if (a[i] == null || c[k - i] == null)
                            continue;
                        var term = Apply(BinaryOp.Mul, a[i]!, c[k - i]!);
                        y[k] = y[k] == null ? term : Apply(BinaryOp.Add, y[k]!, term);
                    }
                    break;
                default:
                {
                    Tensor? numerator = a[k];
                    for (int j = 1; j <= k; j++)
                    {
                        if (c[j] == null || y[k - j] == null)
                            continue;
                        var term = Apply(BinaryOp.Mul, c[j]!, y[k - j]!);
                        numerator = Apply(BinaryOp.Sub, numerator ?? own(b.Allocate(outShape)), term);
                    }
                    if (numerator != null)
                        y[k] = Apply(BinaryOp.Div, numerator, c[0]!);
                    break;
                }
            }
            // A coefficient built from broadcast operands only is brought to the output's shape.
            if (y[k] != null && !y[k]!.Shape.AsSpan().SequenceEqual(outShape))
                y[k] = Apply(BinaryOp.Add, y[k]!, own(b.Allocate(outShape)));
        }
        return y;
    }

    /// <summary>True for two activations of the output's shape (no constant, no broadcasting).</summary>
    protected static bool SameShapeActivations(GraphNode node, IReadOnlyDictionary<string, int[]> shapes) =>
        node.Param("constant") == null && node.Inputs.Length == 2
        && shapes.TryGetValue(node.Inputs[0], out var s0) && shapes.TryGetValue(node.Inputs[1], out var s1)
        && s0.AsSpan().SequenceEqual(node.Shape) && s1.AsSpan().SequenceEqual(node.Shape);
}
