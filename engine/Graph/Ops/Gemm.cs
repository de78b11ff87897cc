using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// <c>y = alpha x op(W) + beta b</c> (op <c>gemm</c>). Params weight, optional bias. Attrs: transB (default 1),
/// alpha, beta. Affine in x: jets apply the product to every order, the bias to order 0 only.
/// <code>x: (N, K)   W: (Nout, K) with transB, else (K, Nout)   b: (Nout)   y: (N, Nout)</code>
/// </summary>
internal sealed class Gemm : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Gemm;

    /// <summary>Gemm geometry for a flat input of <paramref name="k"/> features and a weight of shape <paramref name="w"/>.</summary>
    public static GemmShape Geometry(GraphNode node, int k, int[] w, int m)
    {
        bool transB = node.Int("transB", 1) != 0;
        int wk = transB ? w[1] : w[0];
        int wn = transB ? w[0] : w[1];
        if (wk != k)
            throw new ArgumentException($"weight shape {TensorShape.Format(w)} does not take {k} input features (transB={transB})");
        return new GemmShape(m, k, wn, transB, node.Float("alpha", 1f), node.Float("beta", 1f));
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        if (inputs[0].Length != 1)
            throw new ArgumentException($"needs a flat (K) input, got {TensorShape.Format(inputs[0])}");
        string wn = node.Param("weight") ?? throw new ArgumentException("missing 'weight' parameter");
        if (!weights.TryGetValue(wn, out var w) || w.Shape.Length != 2)
            throw new ArgumentException($"weight '{wn}' is missing or not 2-D");
        var g = Geometry(node, inputs[0][0], w.Shape, 1);
        g.Validate();
        if (node.Param("bias") != null)
            Weight(node, "bias", weights, [g.N]);
        return [g.N];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var w = a.Param("weight");
        var y = a.NewOutput();
        a.Backend.Gemm(x, w, a.OptionalParam("bias"), y, Geometry(a.Node, x.Length / a.N, w.Shape, a.N));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var b = a.Backend;
        var x = a.Input(0);
        var w = a.Param("weight");
        var s = Geometry(a.Node, x.Length / a.N, w.Shape, a.N);
        if (a.Request.Parameters)
        {
            var dw = a.New(w.Shape);
            b.GemmBackwardWeights(x, a.Dy, dw, s);
            a.AccumulateParam("weight", dw);
            if (a.Node.Param("bias") != null)
            {
                var db = a.New([s.N]);
                b.GemmBackwardBias(a.Dy, db, s);
                a.AccumulateParam("bias", db);
            }
        }
        var dx = a.New(x.Shape);
        b.GemmBackwardData(a.Dy, w, dx, s);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var w = a.Model.Parameter(a.Node.Param("weight")!);
        var s = Geometry(a.Node, a.Inputs[0][0]!.Length / a.M, w.Shape, a.M);
        var bias = a.Node.Param("bias") is { } name ? a.Model.Parameter(name) : null;
        var b = a.Backend;
        return EveryOrder(a, (x, y, zero) => b.Gemm(x, w, zero ? bias : null, y, s));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
