using CamEngine.Autodiff;
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
/// The forward keeps (mean, rstd) per row for the backward (in the pass's saved tensors). The jets run row by row
/// on the host in double (<see cref="Jet3"/>), with rstd = exp(-log(var + eps) / 2): the normalization is smooth
/// and mixes a whole row, so every order of the output reads every order of the row.
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
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var x = a.Inputs[0];
        int order = a.Order;
        var shape = x[0]!.Shape;
        int cols = Cols(a.Node, shape[1..]), n = x[0]!.Length;
        double eps = Epsilon(a.Node);
        var gamma = b.Download(a.Model.Parameter(a.Node.Param("scale")!));
        var beta = b.Download(a.Model.Parameter(a.Node.Param("bias")!));
        var values = new float[order + 1][];
        for (int k = 0; k <= order; k++)
            values[k] = x[k] == null ? new float[n] : b.Download(x[k]!);
        var outputs = Enumerable.Range(0, order + 1).Select(_ => new float[n]).ToArray();
        // Rows are independent: in parallel, each worker with its own row of jets.
        Parallel.For(0, n / cols, () => new Jet3[cols], (r, _, row) =>
        {
            // mean = sum x / cols; var = sum (x - mean)^2 / cols; y = gamma (x - mean) rstd + beta
            var mean = Jet3.Constant(0);
            for (int j = 0; j < cols; j++)
            {
                int i = r * cols + j;
                row[j] = new Jet3(values[0][i], order >= 1 ? values[1][i] : 0, order >= 2 ? values[2][i] : 0, order >= 3 ? values[3][i] : 0);
                mean += row[j];
            }
            mean = (1.0 / cols) * mean;
            var variance = Jet3.Constant(0);
            for (int j = 0; j < cols; j++)
            {
                row[j] -= mean;
                variance += row[j] * row[j];
            }
            var rstd = Jet3.Exp(-0.5 * Jet3.Log((1.0 / cols) * variance + Jet3.Constant(eps)));
            for (int j = 0; j < cols; j++)
            {
                var y = gamma[j] * (row[j] * rstd) + Jet3.Constant(beta[j]);
                int i = r * cols + j;
                outputs[0][i] = (float)y.C0;
                if (order >= 1)
                    outputs[1][i] = (float)y.C1;
                if (order >= 2)
                    outputs[2][i] = (float)y.C2;
                if (order >= 3)
                    outputs[3][i] = (float)y.C3;
            }
            return row;
        }, _ => { });
        var result = new Tensor?[order + 1];
        for (int k = 0; k <= order; k++)
            result[k] = k > 0 && x.Skip(1).All(t => t == null) ? null : a.Own(b.Upload(outputs[k], shape));
        return result;
    }
}
