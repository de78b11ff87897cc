using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// A computed tensor times a constant weight over its last axis, plus an optional bias (op <c>matmul</c>; ONNX
/// MatMul with a constant 2-D B, and the Add of a constant (M) bias after it, which the converter folds in):
/// ConvNeXt's and the transformers' point-wise linear layers on channels-last tensors. Params weight (K, M), optional
/// bias (M).
/// <code>x: (N, ..., K) = (rows, K)   W: (K, M)   y: (N, ..., M) = x W + b   dx = dy W^T   dW = x^T dy   db = sum_rows dy</code>
/// The rows are every position of every image, so one GEMM of (rows, K) by (K, M) does the layer. Affine: the
/// jets multiply every order, the bias joins order 0 only.
/// </summary>
internal sealed class MatMul : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.MatMul;

    /// <summary>The GEMM of <paramref name="rows"/> rows by a (K, M) weight of shape <paramref name="w"/>.</summary>
    internal static GemmShape Geometry(int rows, int[] w) => new(rows, w[0], w[1], false, 1f, 1f);

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        string wn = node.Param("weight") ?? throw new ArgumentException("missing 'weight' parameter");
        if (!weights.TryGetValue(wn, out var w) || w.Shape.Length != 2)
            throw new ArgumentException($"weight '{wn}' is missing or not 2-D");
        var x = inputs[0];
        if (x[^1] != w.Shape[0])
            throw new ArgumentException($"weight {w.ShapeText} does not take the last axis of {TensorShape.Format(x)}");
        Geometry(1, w.Shape).Validate();
        if (node.Param("bias") != null)
            Weight(node, "bias", weights, [w.Shape[1]]);
        var r = (int[])x.Clone();
        r[^1] = w.Shape[1];
        return r;
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var w = a.Param("weight");
        var y = a.NewOutput();
        a.Backend.Gemm(x, w, a.OptionalParam("bias"), y, Geometry(x.Length / w.Shape[0], w.Shape));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var w = a.Param("weight");
        var s = Geometry(x.Length / w.Shape[0], w.Shape);
        if (a.Request.Parameters)
        {
            var dw = a.New(w.Shape);
            a.Backend.GemmBackwardWeights(x, a.Dy, dw, s);
            a.AccumulateParam("weight", dw);
            if (a.Node.Param("bias") != null)
            {
                var db = a.New([s.N]);
                a.Backend.GemmBackwardBias(a.Dy, db, s);
                a.AccumulateParam("bias", db);
            }
        }
        var dx = a.New(x.Shape);
        a.Backend.GemmBackwardData(a.Dy, w, dx, s);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var w = a.Model.Parameter(a.Node.Param("weight")!);
        var s = Geometry(a.Inputs[0][0]!.Length / w.Shape[0], w.Shape);
        var bias = a.Node.Param("bias") is { } name ? a.Model.Parameter(name) : null;
        var b = a.Backend;
        return EveryOrder(a, (x, y, zero) => b.Gemm(x, w, zero ? bias : null, y, s));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
