using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Softmax over the last axis (op <c>softmax</c>), the stable form of <see cref="StableSoftmax"/>:
/// <code>x, y: (N, ..., cols)   y_j = exp(x_j - max) / sum_l exp(x_l - max)   dx = y * (dy - sum_j dy_j y_j)</code>
/// Jets run row by row on the host in double with <see cref="Jet3"/> (softmax rows are short: class scores).
/// </summary>
internal sealed class Softmax : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Softmax;

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        return inputs[0];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.Pass.Own(a.Backend.Allocate(x.Shape));
        a.Backend.Softmax(x, y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var dx = a.New(x.Shape);
        a.Backend.SoftmaxBackward(a.Pass[a.Node.Output], a.Dy.Reshape(x.Shape), dx);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var x = a.Inputs[0];
        int order = a.Order;
        var shape = x[0]!.Shape;
        int cols = shape[^1], n = x[0]!.Length;
        var values = new float[order + 1][];
        for (int k = 0; k <= order; k++)
            values[k] = x[k] == null ? new float[n] : b.Download(x[k]!);
        var outputs = Enumerable.Range(0, order + 1).Select(_ => new float[n]).ToArray();
        var row = new Jet3[cols];
        var probs = new Jet3[cols];
        for (int r = 0; r < n / cols; r++)
        {
            for (int j = 0; j < cols; j++)
            {
                int i = r * cols + j;
                row[j] = new Jet3(values[0][i], order >= 1 ? values[1][i] : 0, order >= 2 ? values[2][i] : 0, order >= 3 ? values[3][i] : 0);
            }
            StableSoftmax.Probabilities(row, probs);
            for (int j = 0; j < cols; j++)
            {
                var p = probs[j];
                double[] c = [p.C0, p.C1, p.C2, p.C3];
                for (int k = 0; k <= order; k++)
                    outputs[k][r * cols + j] = (float)c[k];
            }
        }
        var y = new Tensor?[order + 1];
        for (int k = 0; k <= order; k++)
            y[k] = k > 0 && x.Skip(1).All(t => t == null) ? null : a.Own(b.Upload(outputs[k], shape));
        return y;
    }
}
