using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Model;

namespace CamEngine.Methods;

/// <summary>
/// A reverse pass over the graph with per-operator rules chosen by a method (DeepLIFT's multipliers, LRP's
/// relevance), built beside the engine's own reverse pass rather than inside it: signals are host arrays of
/// <see cref="Rows"/> rows, one per tensor, summed where a tensor feeds several nodes; each node's rule turns its
/// output's signal into its inputs'. The linear operators' vector-Jacobian products run on the model's backend
/// (<see cref="Vjp"/>), so convolutions keep their fast kernels; element-wise rules run on the host.
/// </summary>
internal abstract class SignalPass(DeviceModel model, int rows)
{
    private readonly Dictionary<string, int[]> _shapes = Shapes(model.Graph);

    public DeviceModel Model { get; } = model;

    /// <summary>The operators <see cref="Vjp"/> has a rule for.</summary>
    public static readonly IReadOnlySet<string> LinearOps = new HashSet<string>(StringComparer.Ordinal)
    {
        Ops.Conv, Ops.Gemm, Ops.AvgPool, Ops.GlobalAvgPool, Ops.BatchNorm, Ops.Pad, Ops.Concat, Ops.Flatten, Ops.Reshape,
        Ops.Add, Ops.Sub,
    };

    /// <summary>Why a method whose rules cover the nodes <paramref name="hasRule"/> accepts cannot run on
    /// <paramref name="graph"/> (the first node without a rule, by name and operator), or null: checked before
    /// any work, so <c>--method all</c> leaves the method out of a model it cannot read (a vision transformer's
    /// attention, for example).</summary>
    public static string? Refusal(ModelGraph graph, Func<GraphNode, bool> hasRule)
    {
        var missing = graph.Nodes.FirstOrDefault(n => !hasRule(n));
        return missing == null ? null : $"it has no rule for node '{missing.Name}' ({missing.Op})";
    }

    /// <summary>Rows of every signal (the images explained).</summary>
    public int Rows { get; } = rows;

    /// <summary>Per-row shape of a tensor.</summary>
    public int[] ShapeOf(string tensor) => _shapes[tensor];

    /// <summary>Called after each node's rule with the node, its output's signal and its inputs' (tests check
    /// conservation with it); null: nothing.</summary>
    public Action<GraphNode, float[], float[]?[]>? Observer { get; init; }

    /// <summary>The signals of a node's activation inputs (null where an input gets none) from its output's.</summary>
    protected abstract float[]?[] Propagate(GraphNode node, float[] signal);

    /// <summary>Runs the pass from <paramref name="seed"/> (Rows, output) down to the input; returns every tensor's
    /// signal that was reached (the input's under the graph's input name).</summary>
    public Dictionary<string, float[]> Run(float[] seed)
    {
        var g = Model.Graph;
        var signals = new Dictionary<string, float[]>(StringComparer.Ordinal) { [g.OutputName] = seed };
        for (int i = g.Nodes.Count - 1; i >= 0; i--)
        {
            var node = g.Nodes[i];
            if (!signals.TryGetValue(node.Output, out var s))
                continue;
            var inputs = Propagate(node, s);
            Observer?.Invoke(node, s, inputs);
            for (int k = 0; k < inputs.Length; k++)
            {
                if (inputs[k] is not { } d)
                    continue;
                string name = node.Inputs[k];
                if (signals.TryGetValue(name, out var sum))
                {
                    for (int j = 0; j < sum.Length; j++)
                        sum[j] += d[j];
                }
                else
                {
                    signals[name] = d;
                }
            }
        }
        return signals;
    }

    /// <summary>
    /// The vector-Jacobian product of a node that is linear in its activation inputs (conv, gemm, average pools,
    /// batch norm, flatten, reshape, pad, concat, add and sub), for <paramref name="dy"/> of <see cref="Rows"/> rows;
    /// <paramref name="weight"/> replaces a conv's or gemm's weight (LRP's positive and negative parts). Constant
    /// operands and biases get nothing. Throws for any other operator, naming it.
    /// </summary>
    public float[]?[] Vjp(GraphNode node, float[] dy, string method, Backends.Tensor? weight = null)
    {
        var b = Model.Backend;
        int n = Rows;
        var x = ShapeOf(node.Inputs[0]);
        var result = new float[]?[node.Inputs.Length];
        switch (node.Op)
        {
            case Ops.Conv:
            {
                var w = weight ?? Model.Parameter(node.Param("weight")!);
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                b.Conv2dBackwardData(t, w, dx, NodeGeometry.Conv(node, x, n));
                result[0] = b.Download(dx);
                break;
            }
            case Ops.Gemm:
            {
                var w = weight ?? Model.Parameter(node.Param("weight")!);
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                b.GemmBackwardData(t, w, dx, NodeGeometry.Gemm(node, Product(x), w.Shape, n));
                result[0] = b.Download(dx);
                break;
            }
            case Ops.AvgPool:
            {
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                b.AvgPoolBackward(t, dx, NodeGeometry.Pool(node, x, n));
                result[0] = b.Download(dx);
                break;
            }
            case Ops.GlobalAvgPool:
            {
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                b.GlobalAvgPoolBackward(t, dx);
                result[0] = b.Download(dx);
                break;
            }
            case Ops.BatchNorm:
            {
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                b.ChannelAffineBackwardData(t, Model.Parameter(node.Param("scale")!), dx);
                result[0] = b.Download(dx);
                break;
            }
            case Ops.Pad:
            {
                using var t = b.Upload(dy, [n, .. node.Shape]);
                using var dx = b.Allocate([n, .. x]);
                CamEngine.Graph.Ops.Pad.Crop(b, t, dx, NodeGeometry.Pad(node, x, n));
                result[0] = b.Download(dx);
                break;
            }
            case Ops.Concat:
            {
                using var t = b.Upload(dy, [n, .. node.Shape]);
                var parts = node.Inputs.Select(i => b.Allocate([n, .. ShapeOf(i)])).ToArray();
                try
                {
                    b.ConcatBackward(t, parts);
                    for (int k = 0; k < parts.Length; k++)
                        result[k] = b.Download(parts[k]);
                }
                finally
                {
                    foreach (var p in parts)
                        p.Dispose();
                }
                break;
            }
            case Ops.Flatten or Ops.Reshape:
                result[0] = (float[])dy.Clone();
                break;
            case Ops.Add or Ops.Sub:
            {
                string? constant = node.Param("constant");
                bool constantFirst = node.Int("constant_first", 0) != 0;
                if (constant == null && !(Product(ShapeOf(node.Inputs[0])) == Product(node.Shape)
                                          && Product(ShapeOf(node.Inputs[1])) == Product(node.Shape)))
                    throw new CamEngineException($"{method}: node '{node.Name}' ({node.Op}) broadcasts two activations, which is not supported");
                float sign = node.Op == Ops.Sub && constant != null && constantFirst ? -1f : 1f;
                result[0] = dy.Select(v => sign * v).ToArray();
                if (constant == null)
                    result[1] = node.Op == Ops.Sub ? dy.Select(v => -v).ToArray() : (float[])dy.Clone();
                break;
            }
            default:
                throw new CamEngineException($"{method} has no rule for node '{node.Name}' ({node.Op})");
        }
        return result;
    }

    /// <summary>The values of tensor <paramref name="name"/> in <paramref name="pass"/>, rows
    /// [<paramref name="first"/>, first + Rows).</summary>
    public float[] Values(ForwardPass pass, string name, int first)
    {
        var all = Model.Backend.Download(name == Model.Graph.InputName ? pass.Input : pass[name]);
        int size = all.Length / pass.Batch;
        return all.AsSpan(first * size, Rows * size).ToArray();
    }

    /// <summary>For each output of a max-pool over <paramref name="x"/> (Rows, C, H, W): the flat index into x of
    /// its first maximum in scan order (the engine's and PyTorch's routing), or -1 for a window of padding only.</summary>
    public static int[] MaxPoolArgmax(float[] x, PoolShape s)
    {
        var a = new int[s.N * s.C * s.OH * s.OW];
        for (int nc = 0; nc < s.N * s.C; nc++)
        {
            for (int oh = 0; oh < s.OH; oh++)
            {
                for (int ow = 0; ow < s.OW; ow++)
                {
                    float best = float.NegativeInfinity;
                    int at = -1;
                    for (int ky = 0; ky < s.KH; ky++)
                    {
                        for (int kx = 0; kx < s.KW; kx++)
                        {
                            int ih = oh * s.StrideH - s.PadTop + ky * s.DilationH, iw = ow * s.StrideW - s.PadLeft + kx * s.DilationW;
                            if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W)
                                continue;
                            float v = x[(nc * s.H + ih) * s.W + iw];
                            if (at < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                            {
                                best = v;
                                at = (nc * s.H + ih) * s.W + iw;
                            }
                        }
                    }
                    a[(nc * s.OH + oh) * s.OW + ow] = at;
                }
            }
        }
        return a;
    }

    private static int Product(int[] shape)
    {
        int p = 1;
        foreach (int d in shape)
            p *= d;
        return p;
    }

    private static Dictionary<string, int[]> Shapes(ModelGraph g)
    {
        var d = new Dictionary<string, int[]>(StringComparer.Ordinal) { [g.InputName] = g.InputShape };
        foreach (var node in g.Nodes)
            d[node.Output] = node.Shape;
        return d;
    }
}
