namespace CamEngine.Model;

/// <summary>
/// One operation of a model graph. Names stay the ONNX node and tensor names, so a user finds
/// "/layer4/layer4.1/relu_1/Relu" (or its output tensor) again.
/// </summary>
public sealed class GraphNode
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
public static class Ops
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

    /// <summary>Element-wise sum of two tensors of the same shape.</summary>
    public const string Add = "add";

    /// <summary>Every operator this version executes.</summary>
    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        Conv, Relu, MaxPool, AvgPool, GlobalAvgPool, Flatten, Gemm, Add,
    };
}
