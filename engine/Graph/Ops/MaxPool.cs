using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Max pooling (op <c>maxpool</c>). Attrs: kernel, strides, pads, dilations, ceil_mode.
/// <code>x: (N, C, H, W)   y, argmax: (N, C, OH, OW)</code>
/// The forward records the flat input index of each window's first maximum in scan order (PyTorch's tie rule);
/// the backward scatters dy there and the jets route every order through the order-0 argmax. A forward plan that
/// frees the routing right after the node computes the values alone (<see cref="Backend.MaxPoolValues"/>).
/// </summary>
internal sealed class MaxPool : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.MaxPool;

    /// <summary>Pool geometry for input (C, H, W) and batch <paramref name="n"/> (also average pooling's).</summary>
    public static PoolShape Geometry(GraphNode node, int[] x, int n)
    {
        var k = node.Ints("kernel", 2, [0, 0]);
        var s = node.Ints("strides", 2, [1, 1]);
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        var d = node.Ints("dilations", 2, [1, 1]);
        return new PoolShape(n, x[0], x[1], x[2], k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1],
            node.Int("ceil_mode", 0) != 0, node.Int("count_include_pad", 0) != 0);
    }

    /// <summary>Shape inference shared with average pooling.</summary>
    internal static int[] InferPool(GraphNode node, int[][] inputs)
    {
        Arity(inputs, 1);
        var g = Geometry(node, Spatial(inputs[0]), 1);
        Conv.CheckWindow(g.H, g.KH, g.StrideH, g.PadTop, g.PadBottom, g.DilationH);
        Conv.CheckWindow(g.W, g.KW, g.StrideW, g.PadLeft, g.PadRight, g.DilationW);
        g.Validate();
        return [g.C, g.OH, g.OW];
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights) =>
        InferPool(node, inputs);

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var s = Geometry(a.Node, x.Shape[1..], a.N);
        var y = a.NewOutput();
        if (!a.Routing)
        {
            a.Backend.MaxPoolValues(x, y, s);
            return y;
        }
        var argmax = a.Pass.Own(a.Backend.AllocateIndices(y.Shape));
        a.Backend.MaxPool(x, y, argmax, s);
        a.Pass.Argmax[a.Node.Name] = argmax;
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var x = a.Input(0);
        var s = Geometry(a.Node, x.Shape[1..], a.N);
        var dx = a.New(x.Shape);
        a.Backend.MaxPoolBackward(a.Dy, a.Pass.Argmax[a.Node.Name], dx, s);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var b = a.Backend;
        var x = a.Inputs[0];
        var s = Geometry(a.Node, x[0]!.Shape[1..], a.M);
        var y = new Tensor?[a.Order + 1];
        y[0] = a.Own(b.Allocate(a.OutputShape));
        var argmax = a.Own(b.AllocateIndices(a.OutputShape));
        b.MaxPool(x[0]!, y[0]!, argmax, s);
        for (int k = 1; k <= a.Order; k++)
        {
            if (x[k] == null)
                continue;
            y[k] = a.Own(b.Allocate(a.OutputShape));
            b.MaxPoolRoute(x[k]!, argmax, y[k]!, s);
        }
        return y;
    }

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;
}
