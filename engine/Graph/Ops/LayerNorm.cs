using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Layer normalization (op <c>layernorm</c>, ONNX LayerNormalization opset 17, nn.LayerNorm): over the trailing
/// axes from attr axis (an axis of (N, ...), 1 or more; the converter resolves ONNX's negative axis), with biased
/// variance and attr epsilon (positive). Params scale and bias, each with the normalized axes' shape.
/// <code>
/// x, y: (rows, cols) = (N * d1 * .. * d(axis-1), d(axis) * .. * dk)   scale, bias: (cols)
/// y = scale (x - mean) / sqrt(var + eps) + bias
/// </code>
/// The forward keeps (mean, rstd) per row for the backward (in the pass's saved tensors). No Taylor rule: the
/// normalization is smooth but mixes a whole row, and its jets are not written yet, so higher-order queries
/// (Grad-CAM++ through exact jets, Shapley-CAM) refuse it by name.
/// </summary>
internal sealed class LayerNorm : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.LayerNorm;

    /// <summary>The normalized column count for input <paramref name="x"/> (without batch).</summary>
    internal static int Cols(GraphNode node, int[] x)
    {
        int axis = node.Int("axis", x.Length);
        if (axis < 1 || axis > x.Length)
            throw new ArgumentException($"axis {axis} must be 1..{x.Length} of (N, ...) (the batch axis is not normalized)");
        return checked((int)TensorShape.CheckedLength(x.AsSpan(axis - 1)));
    }

    private static float Epsilon(GraphNode node) => node.Float("epsilon", 1e-5f);

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        int cols = Cols(node, inputs[0]);
        float eps = Epsilon(node);
        if (!(eps > 0) || !float.IsFinite(eps))
            throw new ArgumentException($"epsilon {eps} must be positive and finite");
        foreach (var role in new[] { "scale", "bias" })
        {
            string name = node.Param(role) ?? throw new ArgumentException($"missing '{role}' parameter");
            if (!weights.TryGetValue(name, out var t))
                throw new ArgumentException($"parameter tensor '{name}' is not in the file");
            if (t.Length != cols)
                throw new ArgumentException($"parameter '{name}' has shape {t.ShapeText}, expected {cols} values");
        }
        return inputs[0];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        int cols = Cols(a.Node, x.Shape[1..]);
        var y = a.Pass.Own(a.Backend.Allocate(x.Shape));
        var stats = a.Pass.Own(a.Backend.Allocate(x.Length / cols, 2));
        a.Backend.LayerNorm(x, a.Param("scale"), a.Param("bias"), y, stats, cols, Epsilon(a.Node));
        a.Pass.Argmax[a.Node.Name] = stats;
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        int cols = Cols(a.Node, x.Shape[1..]);
        var scale = a.Param("scale");
        var dx = a.New(x.Shape);
        Tensor? dscale = null, dbias = null;
        if (a.Request.Parameters)
        {
            dscale = a.New(scale.Shape);
            dbias = a.New(scale.Shape);
        }
        a.Backend.LayerNormBackward(x, scale, a.Pass.Argmax[a.Node.Name], a.Dy, dx, dscale, dbias, cols);
        a.Accumulate(0, dx);
        if (dscale != null)
        {
            a.AccumulateParam("scale", dscale);
            a.AccumulateParam("bias", dbias!);
        }
    }

    /// <inheritdoc/>
    public override bool HasJets => false;
}
