namespace CamEngine.Model;

/// <summary>
/// One operation of a model graph. Names stay the ONNX node and tensor names, so a user finds
/// "/layer4/layer4.1/relu_1/Relu" (or its output tensor) again.
/// </summary>
internal sealed class GraphNode
{
    /// <summary>Node name (the ONNX node name, or its output name when the node had none).</summary>
    public required string Name { get; init; }

    /// <summary>Operator, one of <see cref="Ops"/>.</summary>
    public required string Op { get; init; }

    /// <summary>Names of the tensors this node reads: the graph input or earlier nodes' outputs.</summary>
    public required string[] Inputs { get; init; }

    /// <summary>Name of the tensor this node produces.</summary>
    public required string Output { get; init; }

    /// <summary>Parameter tensors by role (<c>weight</c>, <c>bias</c>), naming entries of the model file.</summary>
    public Dictionary<string, string> Params { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Numeric attributes (all stored as arrays of doubles, integers included).</summary>
    public Dictionary<string, double[]> Attrs { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Output shape without the batch dimension, e.g. (C, H, W) or (K).</summary>
    public required int[] Shape { get; init; }

    /// <summary>An integer attribute array, or <paramref name="fallback"/> when absent.</summary>
    public int[] Ints(string name, int[] fallback)
    {
        if (!Attrs.TryGetValue(name, out var v))
            return fallback;
        var r = new int[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            double d = v[i];
            if (d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue)
                throw new InvalidModelFileException($"node '{Name}': attribute '{name}' must hold integers, got {d}");
            r[i] = (int)d;
        }
        return r;
    }

    /// <summary>An integer attribute with exactly <paramref name="count"/> values.</summary>
    public int[] Ints(string name, int count, int[] fallback)
    {
        var r = Ints(name, fallback);
        if (r.Length != count)
            throw new InvalidModelFileException($"node '{Name}': attribute '{name}' needs {count} values, has {r.Length}");
        return r;
    }

    /// <summary>A scalar integer attribute.</summary>
    public int Int(string name, int fallback) => Ints(name, 1, [fallback])[0];

    /// <summary>A scalar float attribute.</summary>
    public float Float(string name, float fallback)
    {
        if (!Attrs.TryGetValue(name, out var v))
            return fallback;
        if (v.Length != 1)
            throw new InvalidModelFileException($"node '{Name}': attribute '{name}' needs 1 value, has {v.Length}");
        return (float)v[0];
    }

    /// <summary>The parameter tensor name for a role, or null.</summary>
    public string? Param(string role) => Params.TryGetValue(role, out var n) ? n : null;
}

/// <summary>The operator names a graph may use, and their attributes.</summary>
internal static class Ops
{
    /// <summary>2-D convolution. Params weight (K, C/g, KH, KW), optional bias (K).
    /// Attrs: kernel [KH,KW], strides [2], pads [top,left,bottom,right], dilations [2], group.</summary>
    public const string Conv = "conv";

    /// <summary>max(x, 0).</summary>
    public const string Relu = "relu";

    /// <summary>Max pooling. Attrs: kernel, strides, pads, dilations, ceil_mode.</summary>
    public const string MaxPool = "maxpool";

    /// <summary>Average pooling. Attrs: kernel, strides, pads, ceil_mode, count_include_pad.</summary>
    public const string AvgPool = "avgpool";

    /// <summary>Global average pooling (N, C, H, W) to (N, C, 1, 1).</summary>
    public const string GlobalAvgPool = "gap";

    /// <summary>(N, C, H, W, ...) to (N, C*H*W...).</summary>
    public const string Flatten = "flatten";

    /// <summary>y = alpha x op(W) + beta b. Params weight, optional bias. Attrs: transB, alpha, beta.</summary>
    public const string Gemm = "gemm";

    /// <summary>a + b with numpy broadcasting. Inputs: two activations of equal rank, or one activation and the
    /// parameter <c>constant</c> (right-aligned against (N, ...)); attr <c>constant_first</c> 1 puts the constant on
    /// the left. The same form serves <see cref="Sub"/>, <see cref="Mul"/> and <see cref="Div"/>.</summary>
    public const string Add = "add";

    /// <summary>a - b with broadcasting (see <see cref="Add"/>).</summary>
    public const string Sub = "sub";

    /// <summary>a * b with broadcasting (see <see cref="Add"/>): squeeze-excitation scaling, SiLU's x * sigmoid(x).</summary>
    public const string Mul = "mul";

    /// <summary>a / b with broadcasting (see <see cref="Add"/>).</summary>
    public const string Div = "div";

    /// <summary>Logistic sigmoid.</summary>
    public const string Sigmoid = "sigmoid";

    /// <summary>max(0, min(1, alpha x + beta)). Attrs: alpha, beta.</summary>
    public const string HardSigmoid = "hardsigmoid";

    /// <summary>x * max(0, min(1, x / 6 + 1/2)).</summary>
    public const string HardSwish = "hardswish";

    /// <summary>x &gt; 0 ? x : alpha x. Attr: alpha.</summary>
    public const string LeakyRelu = "leakyrelu";

    /// <summary>min(max(x, min), max); ReLU6 is clip(0, 6). Attrs: min, max.</summary>
    public const string Clip = "clip";

    /// <summary>Inference BatchNormalization as a per-channel affine map. Params scale (C), shift (C).</summary>
    public const string BatchNorm = "batchnorm";

    /// <summary>Concatenation of every input along the channel axis (axis 1 of (N, C, ...)).</summary>
    public const string Concat = "concat";

    /// <summary>Constant padding of H and W. Attrs: pads [top, left, bottom, right], value.</summary>
    public const string Pad = "pad";

    /// <summary>A view with another shape of the same length. Attr: shape (without the batch dimension).</summary>
    public const string Reshape = "reshape";

    /// <summary>Softmax over the last axis.</summary>
    public const string Softmax = "softmax";

    /// <summary>Mean over axes of the full tensor (N, ...). Attrs: axes (each 1..rank-1), keepdims.</summary>
    public const string ReduceMean = "reducemean";

    /// <summary>Sum over axes (see <see cref="ReduceMean"/>).</summary>
    public const string ReduceSum = "reducesum";

    /// <summary>Maximum over adjacent axes (see <see cref="ReduceMean"/>), first maximum at ties.</summary>
    public const string ReduceMax = "reducemax";

    /// <summary>Permutation of the axes of (N, ...). Attr: perm over the full rank, perm[0] = 0.</summary>
    public const string Transpose = "transpose";

    /// <summary>Layer normalization over the trailing axes from attr axis. Params scale, bias. Attr: epsilon.</summary>
    public const string LayerNorm = "layernorm";

    /// <summary>Elements [start, start + count) along one axis. Attrs: axis, start, count.</summary>
    public const string Slice = "slice";

    /// <summary>The error function (exact GELU's inner part).</summary>
    public const string Erf = "erf";

    /// <summary>Exact GELU, x (1 + erf(x / sqrt 2)) / 2 (the converter's fusion of ONNX's Div, Erf, Add, Mul, Mul).</summary>
    public const string Gelu = "gelu";

    /// <summary>Square root.</summary>
    public const string Sqrt = "sqrt";

    /// <summary>x to a constant power. Attr: exponent.</summary>
    public const string Pow = "pow";

    /// <summary>Hyperbolic tangent.</summary>
    public const string Tanh = "tanh";

    /// <summary>x (N, ..., K) times a constant weight (K, M) over the last axis. Param weight.</summary>
    public const string MatMul = "matmul";

    /// <summary>Batched product of two computed tensors (N, B.., M, K) x (N, B.., K, P) (attention).</summary>
    public const string BatchMatMul = "batchmatmul";

    /// <summary>Every operator this version executes: the names of <see cref="Graph.Ops.OpRegistry"/>.</summary>
    public static IReadOnlyCollection<string> All => Graph.Ops.OpRegistry.Names;
}
