using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Batched product of two computed tensors (op <c>batchmatmul</c>; ONNX MatMul with both operands computed:
/// attention's <c>q k^T</c> and <c>p v</c>). The leading axes besides the batch broadcast as numpy's matmul does
/// (right-aligned; a size-1 axis or a missing one is repeated); each image's matrices multiply its own (the batch
/// axis N is matched, never broadcast).
/// <code>
/// a: (N, A.., M, K)   b: (N, B.., K, P)   y: (N, broadcast(A.., B..), M, P) = a b
/// da = sum over the axes a was broadcast along of dy b^T   db = the same sum of a^T dy
/// </code>
/// Bilinear: the jets are the Cauchy product <c>y_k = sum_{i+j=k} a_i b_j</c>. Not affine in either operand when
/// both depend on the layer (attention), hence <see cref="IsAffine"/> only when one of them does not.
/// </summary>
internal sealed class BatchMatMul : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.BatchMatMul;

    /// <summary>The broadcast leading axes of operands a, b (without the batch), or an exception.</summary>
    private static int[] Leading(int[] a, int[] b)
    {
        int r = Math.Max(a.Length, b.Length) - 2;
        var l = new int[r];
        for (int k = 0; k < r; k++)
        {
            int ia = k - (r - (a.Length - 2)), ib = k - (r - (b.Length - 2));
            int da = ia < 0 ? 1 : a[ia], db = ib < 0 ? 1 : b[ib];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)} differ in their leading axes, which do not broadcast");
            l[k] = Math.Max(da, db);
        }
        return l;
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 2);
        int[] a = inputs[0], b = inputs[1];
        if (a.Length < 2 || b.Length < 2)
            throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)} must have 2 or more axes besides the batch");
        var lead = Leading(a, b);
        if (a[^1] != b[^2])
            throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)}: inner dimensions {a[^1]} and {b[^2]} differ");
        int[] r = [.. lead, a[^2], b[^1]];
        if (r.Length > TensorShape.MaxRank - 1)
            throw new ArgumentException($"the product {TensorShape.Format(r)} has more than {TensorShape.MaxRank - 1} axes besides the batch");
        TensorShape.CheckedLength(r);
        return r;
    }

    /// <summary>An operand's leading axes right-aligned against <paramref name="lead"/>, with the batch first.</summary>
    private static int[] Padded(int n, int[] x, int[] lead) =>
        [n, .. Enumerable.Repeat(1, lead.Length - (x.Length - 2)), .. x[..^2]];

    /// <summary>The geometry for a batch of <paramref name="n"/> images of operands a, b (without the batch): the
    /// plain one when the leading axes are equal, else the broadcasting one.</summary>
    private static BatchMatMulShape Geometry(int[] a, int[] b, int n)
    {
        var lead = Leading(a, b);
        int[] dims = [n, .. lead];
        int[] pa = Padded(n, a, lead), pb = Padded(n, b, lead);
        if (pa.SequenceEqual(dims) && pb.SequenceEqual(dims))
            return new BatchMatMulShape(checked((int)TensorShape.CheckedLength(dims)), a[^2], a[^1], b[^1], 0, 0);
        return BatchMatMulShape.Broadcasting(dims, pa, pb, a[^2], a[^1], b[^1]);
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var w = a.Input(1);
        var y = a.NewOutput();
        a.Backend.BatchMatMul(x, w, y, Geometry(x.Shape[1..], w.Shape[1..], a.N));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var w = a.Input(1);
        int[] xs = x.Shape[1..], ws = w.Shape[1..];
        var lead = Leading(xs, ws);
        int[] dims = [a.N, .. lead];
        int m = xs[^2], k = xs[^1], p = ws[^1];
        var s = Geometry(xs, ws, a.N);
        // da (M, K) = dy (M, P) w^T for every matrix of y: A = dy (y's matrices), B = w stored (K, P) transposed.
        var sa = s.Broadcast == 0 ? s with { K = p, N = k, TransA = 0, TransB = 1 }
            : BatchMatMulShape.Broadcasting(dims, dims, Padded(a.N, ws, lead), m, p, k, 0, 1);
        var dxFull = a.New([.. dims, m, k]);
        a.Backend.BatchMatMul(a.Dy, w, dxFull, sa);
        a.Accumulate(0, SumTo(a, dxFull, Padded(a.N, xs, lead), x.Shape));
        // db (K, P) = a^T (K, M) dy (M, P) for every matrix of y: A = x stored (M, K) transposed, B = dy.
        var sb = s.Broadcast == 0 ? s with { M = k, K = m, TransA = 1, TransB = 0 }
            : BatchMatMulShape.Broadcasting(dims, Padded(a.N, xs, lead), dims, k, m, p, 1, 0);
        var dwFull = a.New([.. dims, k, p]);
        a.Backend.BatchMatMul(x, a.Dy, dwFull, sb);
        a.Accumulate(1, SumTo(a, dwFull, Padded(a.N, ws, lead), w.Shape));
    }

    /// <summary>The gradient <paramref name="g"/> over y's matrices (dims, r, c) summed over the axes the operand
    /// (dims <paramref name="operand"/>) was broadcast along, shaped as <paramref name="shape"/>.</summary>
    private static Tensor SumTo(BackwardArgs a, Tensor g, int[] operand, int[] shape)
    {
        var cur = g;
        for (int j = 1; j < operand.Length; j++)
        {
            if (operand[j] != 1 || cur.Shape[j] == 1)
                continue;
            var next = (int[])cur.Shape.Clone();
            next[j] = 1;
            var t = a.New(next);
            a.Backend.ReduceSum(cur, t, AxisShape.Of(cur.Shape, j, j + 1), mean: false);
            cur = t;
        }
        return TensorShape.Equal(cur.Shape, shape) ? cur : a.Grads.Own(cur.Reshape(shape));
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs args)
    {
        var b = args.Backend;
        var p = args.Inputs[0];
        var q = args.Inputs[1];
        var s = Geometry(p[0]!.Shape[1..], q[0]!.Shape[1..], args.M);
        var y = new Tensor?[args.Order + 1];
        for (int k = 0; k <= args.Order; k++)
        {
            for (int i = 0; i <= k; i++)
            {
                if (p[i] == null || q[k - i] == null)
                    continue;
                var term = args.Own(b.Allocate(args.OutputShape));
                b.BatchMatMul(p[i]!, q[k - i]!, term, s);
                if (y[k] == null)
                {
                    y[k] = term;
                }
                else
                {
                    var sum = args.Own(b.Allocate(args.OutputShape));
                    b.Add(y[k]!, term, sum);
                    y[k] = sum;
                }
            }
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) =>
        !(dependsOnLayer(node.Inputs[0]) && dependsOnLayer(node.Inputs[1]));
}
