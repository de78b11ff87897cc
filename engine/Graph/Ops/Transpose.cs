using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Permutation of axes (op <c>transpose</c>): ConvNeXt's and Swin's channels-last blocks, ShuffleNet's channel
/// shuffle (rank 5), ViT's token sequences. Attr perm over the full tensor (N, ...), rank up to
/// <see cref="TensorShape.MaxRank"/>, with perm[0] = 0: the batch axis stays first.
/// <code>x: (N, d1..dk)   y: (N, d[perm[1]]..d[perm[k]])   dx = transpose(dy, perm^-1)</code>
/// Linear: the jets transpose every order.
/// </summary>
internal sealed class Transpose : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Transpose;

    /// <summary>The permutation of the full rank, validated.</summary>
    internal static int[] Perm(GraphNode node, int rankWithBatch)
    {
        var perm = node.Ints("perm", []);
        if (perm.Length != rankWithBatch || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= rankWithBatch))
            throw new ArgumentException($"perm [{string.Join(",", perm)}] is not a permutation of the {rankWithBatch} axes of (N, ...)");
        if (perm[0] != 0)
            throw new ArgumentException($"perm [{string.Join(",", perm)}] moves the batch axis");
        return perm;
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        int rank = inputs[0].Length + 1;
        if (rank > TensorShape.MaxRank)
            throw new ArgumentException($"rank {rank} is above {TensorShape.MaxRank}");
        var perm = Perm(node, rank);
        return perm[1..].Select(p => inputs[0][p - 1]).ToArray();
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var y = a.NewOutput();
        a.Backend.Transpose(x, y, Perm(a.Node, x.Shape.Length));
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var perm = Perm(a.Node, x.Shape.Length);
        var dx = a.New(x.Shape);
        a.Backend.Transpose(a.Dy.Reshape(TransposeShape.Permute(x.Shape, perm)), dx, TransposeShape.Inverse(perm));
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var perm = Perm(a.Node, a.Inputs[0][0]!.Shape.Length);
        var b = a.Backend;
        return EveryOrder(a, (x, y, _) => b.Transpose(x, y, perm));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
