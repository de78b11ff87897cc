using CamEngine.Backends;
using CamEngine.Kernels;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// 2-D convolution (op <c>conv</c>). Params weight (K, C/g, KH, KW), optional bias (K). Attrs: kernel [KH,KW],
/// out_channels K, strides [2], pads [top,left,bottom,right], dilations [2], group.
/// <code>x: (N, C, H, W)   w: (K, C/g, KH, KW)   y: (N, K, OH, OW)</code>
/// Linear in x (affine with the bias), so its jets apply the same convolution to every order, bias on order 0.
/// </summary>
internal sealed class Conv : OpRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.Conv;

    /// <summary>Largest kernel, stride, pad or dilation accepted; keeps the int arithmetic of
    /// <see cref="ConvShape"/> and <see cref="PoolShape"/> free of overflow.</summary>
    internal const int MaxWindowAttr = 1 << 16;

    /// <summary>Conv geometry for input (C, H, W) and batch <paramref name="n"/>.</summary>
    public static ConvShape Geometry(GraphNode node, int[] x, int n)
    {
        var k = node.Ints("kernel", 2, [0, 0]);
        var s = node.Ints("strides", 2, [1, 1]);
        var p = node.Ints("pads", 4, [0, 0, 0, 0]);
        var d = node.Ints("dilations", 2, [1, 1]);
        int kOut = node.Int("out_channels", 0);
        return new ConvShape(n, x[0], x[1], x[2], kOut, k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1],
            node.Int("group", 1));
    }

    /// <summary>Rejects window attributes whose output-size arithmetic would overflow an int (a hostile
    /// dilation * (kernel - 1) can wrap around to a plausible output size). Shared by the pooling ops.</summary>
    internal static void CheckWindow(int size, int k, int stride, int padBefore, int padAfter, int dilation)
    {
        if (k > MaxWindowAttr || stride > MaxWindowAttr || dilation > MaxWindowAttr || padBefore > MaxWindowAttr
            || padAfter > MaxWindowAttr)
            throw new ArgumentException($"kernel, stride, pad and dilation values above {MaxWindowAttr} are not supported");
        // Checked here because ConvShape/PoolShape.Validate format their message with ToString, which
        // evaluates OH/OW and would divide by a zero stride.
        if (k < 1 || stride < 1 || dilation < 1)
            throw new ArgumentException($"kernel ({k}), stride ({stride}) and dilation ({dilation}) must be positive");
        if (padBefore < 0 || padAfter < 0)
            throw new ArgumentException($"pads ({padBefore}, {padAfter}) must be non-negative");
        long padded = (long)size + padBefore + padAfter;
        if (padded > int.MaxValue / 2)
            throw new ArgumentException($"padded input side {padded} is too large");
        if ((long)dilation * (k - 1) + 1 > padded)
            throw new ArgumentException($"the window (kernel {k}, dilation {dilation}) does not fit the padded input side {padded}");
    }

    /// <inheritdoc/>
    public override int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights)
    {
        Arity(inputs, 1);
        var g = Geometry(node, Spatial(inputs[0]), 1);
        CheckWindow(g.H, g.KH, g.StrideH, g.PadTop, g.PadBottom, g.DilationH);
        CheckWindow(g.W, g.KW, g.StrideW, g.PadLeft, g.PadRight, g.DilationW);
        g.Validate();
        Weight(node, "weight", weights, [g.K, g.CPerGroup, g.KH, g.KW]);
        if (node.Param("bias") != null)
            Weight(node, "bias", weights, [g.K]);
        return [g.K, g.OH, g.OW];
    }

    /// <inheritdoc/>
    public override Tensor Forward(ForwardArgs a)
    {
        var x = a.Input(0);
        var s = Geometry(a.Node, x.Shape[1..], a.N);
        var y = a.NewOutput();
        if (a.FuseRelu)
            a.Backend.Conv2dRelu(x, a.Param("weight"), a.OptionalParam("bias"), y, s);
        else
            a.Backend.Conv2d(x, a.Param("weight"), a.OptionalParam("bias"), y, s);
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(BackwardArgs a)
    {
        var b = a.Backend;
        var x = a.Input(0);
        var s = Geometry(a.Node, x.Shape[1..], a.N);
        var w = a.Param("weight");
        if (a.Request.Parameters)
        {
            // dw = sum_n x (*) dy; db = sum over (n, oh, ow) of dy
            var dw = a.New(w.Shape);
            b.Conv2dBackwardWeights(x, a.Dy, dw, s);
            a.AccumulateParam("weight", dw);
            if (a.Node.Param("bias") != null)
            {
                var db = a.New([s.K]);
                b.Conv2dBackwardBias(a.Dy, db, s);
                a.AccumulateParam("bias", db);
            }
        }
        var dx = a.New(x.Shape);
        b.Conv2dBackwardData(a.Dy, w, dx, s);
        a.Accumulate(0, dx);
    }

    /// <inheritdoc/>
    public override Tensor?[] Jets(JetArgs a)
    {
        var s = Geometry(a.Node, a.Inputs[0][0]!.Shape[1..], a.M);
        var w = a.Model.Parameter(a.Node.Param("weight")!);
        var bias = a.Node.Param("bias") is { } name ? a.Model.Parameter(name) : null;
        var backend = a.Backend;
        return EveryOrder(a, (x, y, zero) => backend.Conv2d(x, w, zero ? bias : null, y, s));
    }

    /// <inheritdoc/>
    public override bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => true;

    /// <inheritdoc/>
    public override bool IsPiecewiseLinear(GraphNode node) => true;

    /// <inheritdoc/>
    public override bool CanFuseRelu(GraphNode node, IReadOnlyDictionary<string, int[]> shapes) => true;
}
