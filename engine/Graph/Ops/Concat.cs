using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Concatenation of every input along the channel axis (op <c>concat</c>, axis 1 of (N, C, ...)). Linear: the
/// backward cuts dy back into the parts, the jets concatenate every order (a missing order is zero).
/// <code>x_i: (N, C_i, ...)   y: (N, sum C_i, ...)</code>
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
        long channels = 0;
        foreach (var s in inputs)
        {
            if (s.Length != inputs[0].Length || !s.AsSpan(1).SequenceEqual(inputs[0].AsSpan(1)))
                throw new ArgumentException($"inputs {TensorShape.Format(inputs[0])} and {TensorShape.Format(s)} differ outside the channel axis");
            channels += s[0];
        }
        if (channels > TensorShape.MaxElements)
            throw new ArgumentException($"{channels} channels in all");
        int[] r = (int[])inputs[0].Clone();
        r[0] = (int)channels;
        return r;
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var y = a.NewOutput();
        var pass = a.Pass;
        a.Backend.Concat(a.Node.Inputs.Select(i => pass[i]).ToArray(), y);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var args = a;
        var parts = a.Node.Inputs.Select(i => args.New(args.Pass[i].Shape)).ToArray();
        a.Backend.ConcatBackward(a.Dy.Reshape([a.N, .. a.Node.Shape]), parts);
        for (int k = 0; k < parts.Length; k++)
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
            if (a.Inputs.All(v => v[order] == null))
                continue;
            var own = a.Own;
            var parts = a.Inputs.Select(v => v[order] ?? own(b.Allocate(v[0]!.Shape))).ToArray();
            y[k] = a.Own(b.Allocate(a.OutputShape));
            b.Concat(parts, y[k]!);
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
