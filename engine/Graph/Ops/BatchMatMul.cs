using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Batched product of two computed tensors (op <c>batchmatmul</c>; ONNX MatMul with both operands computed:
/// attention's <c>q k^T</c> and <c>p v</c>). The leading axes (the batch and at least one more) must be equal; no
/// broadcasting between operands.
/// <code>
/// a: (N, B.., M, K)   b: (N, B.., K, P)   y: (N, B.., M, P) = a b   (Batch = N * prod(B..) products)
/// da = dy b^T   db = a^T dy
/// </code>
/// Bilinear: the jets are the Cauchy product <c>y_k = sum_{i+j=k} a_i b_j</c>. Not affine in either operand when
/// both depend on the layer (attention), hence <see cref="IsAffine"/> only when one of them does not.
/// </summary>
internal sealed class BatchMatMul : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.BatchMatMul;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 2);
        int[] a = inputs[0], b = inputs[1];
        if (a.Length < 3 || a.Length != b.Length)
            throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)} must have the same rank, 3 or more with the batch");
        if (!a.AsSpan(0, a.Length - 2).SequenceEqual(b.AsSpan(0, b.Length - 2)))
            throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)} differ in their leading axes");
        if (a[^1] != b[^2])
            throw new ArgumentException($"operands {TensorShape.Format(a)} and {TensorShape.Format(b)}: inner dimensions {a[^1]} and {b[^2]} differ");
        int[] r = [.. a[..^1], b[^1]];
        TensorShape.CheckedLength(r);
        return r;
    }

    /// <summary>The geometry for a batch of <paramref name="n"/> images of operands a, b (without the batch).</summary>
    private static BatchMatMulShape Geometry(int[] a, int[] b, int n, bool transA = false, bool transB = false)
    {
        long batch = n;
        for (int k = 0; k < a.Length - 2; k++)
            batch *= a[k];
        return new BatchMatMulShape(checked((int)batch), a[^2], a[^1], b[^1], 0, 0) { TransA = transA ? 1 : 0, TransB = transB ? 1 : 0 };
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
        var s = Geometry(x.Shape[1..], w.Shape[1..], a.N);
        // da (M, K) = dy (M, P) w^T: A = dy with K' = P, B = w stored (K, P) = (N', K') transposed.
        var dx = a.New(x.Shape);
        a.Backend.BatchMatMul(a.Dy, w, dx, s with { K = s.N, N = s.K, TransA = 0, TransB = 1 });
        a.Accumulate(0, dx);
        // db (K, P) = a^T (K, M) dy (M, P): A = x stored (M, K) transposed, inner M.
        var dw = a.New(w.Shape);
        a.Backend.BatchMatMul(x, a.Dy, dw, s with { M = s.K, K = s.M, TransA = 1, TransB = 0 });
        a.Accumulate(1, dw);
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
