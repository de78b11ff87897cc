using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Graph.Ops;

/// <summary>
/// A small graph built node by node (each shape inferred by the op's rule, as the converter does), run on the
/// reference backend in double, with the checks every operator gets: the reverse pass (input and parameter
/// gradients of L = sum r * output) against central finite differences of the forward, and the Taylor jets of
/// orders 1..3 along a random direction at the input against finite differences of the forward along it.
/// </summary>
internal sealed class OpGraph
{
    private readonly List<GraphNode> _nodes = [];
    private readonly Dictionary<string, int[]> _shapes = new(StringComparer.Ordinal);
    private readonly Random _rng;

    public OpGraph(int[] inputShape, int seed = 17)
    {
        InputShape = inputShape;
        _shapes["input"] = inputShape;
        _rng = new Random(seed);
    }

    public int[] InputShape { get; }

    public Dictionary<string, HostTensor> Weights { get; } = new(StringComparer.Ordinal);

    /// <summary>The last node's output.</summary>
    public string Last => _nodes.Count == 0 ? "input" : _nodes[^1].Output;

    /// <summary>A random weight in [-1, 1) (plus <paramref name="offset"/>).</summary>
    public string Weight(string name, int[] shape, double offset = 0)
    {
        var t = new HostTensor(shape);
        for (int i = 0; i < t.Length; i++)
            t.Data[i] = (float)(_rng.NextDouble() * 2 - 1 + offset);
        Weights[name] = t;
        return name;
    }

    /// <summary>Appends a node reading <paramref name="inputs"/> (default: the last output); returns its output name.</summary>
    public string Add(string op, Dictionary<string, double[]>? attrs = null, Dictionary<string, string>? pars = null, string[]? inputs = null)
    {
        string name = $"n{_nodes.Count}_{op}";
        var ins = inputs ?? [Last];
        var proto = new GraphNode
        {
            Name = name, Op = op, Inputs = ins, Output = name + "_out", Shape = [],
            Attrs = attrs ?? new(StringComparer.Ordinal), Params = pars ?? new(StringComparer.Ordinal),
        };
        var shape = GraphValidator.InferShape(proto, ins.Select(i => _shapes[i]).ToArray(), Weights);
        var node = new GraphNode
        {
            Name = name, Op = op, Inputs = ins, Output = proto.Output, Shape = shape, Attrs = proto.Attrs, Params = proto.Params,
        };
        _nodes.Add(node);
        _shapes[node.Output] = shape;
        return node.Output;
    }

    public static Dictionary<string, double[]> A(params (string Key, double[] Values)[] items) =>
        items.ToDictionary(i => i.Key, i => i.Values, StringComparer.Ordinal);

    public static Dictionary<string, string> P(params (string Role, string Name)[] items) =>
        items.ToDictionary(i => i.Role, i => i.Name, StringComparer.Ordinal);

    public ModelFile File()
    {
        var graph = new ModelGraph
        {
            InputName = "input",
            InputShape = InputShape,
            OutputName = Last,
            Nodes = _nodes.ToList(),
            Preprocessing = new Preprocessing
            {
                Height = InputShape[1], Width = InputShape[2], ResizeShorter = Math.Max(InputShape[1], InputShape[2]),
                Mean = new float[InputShape[0]], Std = Enumerable.Repeat(1f, InputShape[0]).ToArray(),
            },
        };
        return new ModelFile(graph, Weights);
    }

    /// <summary>A random input (2, C, H, W) in [-1, 1) on the reference backend.</summary>
    public double[] RandomInput() =>
        Enumerable.Range(0, 2 * InputShape.Aggregate(1, (p, d) => p * d)).Select(_ => _rng.NextDouble() * 2 - 1).ToArray();

    /// <summary>The output of the graph on <paramref name="x"/> (in double).</summary>
    public static double[] Run(DeviceModel model, double[] x)
    {
        var b = (ReferenceBackend)model.Backend;
        using var t = b.UploadDouble(x, [2, .. model.Graph.InputShape]);
        using var pass = model.Forward(t);
        return ReferenceBackend.DownloadDouble(pass.Output);
    }

    /// <summary>
    /// Checks the reverse pass: every input element and every parameter element, analytic against
    /// (L(t + h) - L(t - h)) / 2h with L = sum r * output.
    /// </summary>
    public void CheckReverse(double[]? input = null, double h = 1e-6, double rtol = 1e-5)
    {
        var file = File();
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var x = input ?? RandomInput();
        using var xt = b.UploadDouble(x, [2, .. InputShape]);
        using var pass = model.Forward(xt);
        var r = Enumerable.Range(0, pass.Output.Length).Select(_ => _rng.NextDouble() * 2 - 1).ToArray();
        using var seed = b.UploadDouble(r, pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Input = true, Parameters = true });

        double Loss()
        {
            using var p = model.Forward(xt);
            return ReferenceBackend.D(p.Output).Select((v, i) => v * r[i]).Sum();
        }

        double[] Numeric(double[] data)
        {
            var g = new double[data.Length];
            for (int i = 0; i < data.Length; i++)
            {
                double keep = data[i];
                data[i] = keep + h;
                double lp = Loss();
                data[i] = keep - h;
                double lm = Loss();
                data[i] = keep;
                g[i] = (lp - lm) / (2 * h);
            }
            return g;
        }

        var gx = ReferenceBackend.DownloadDouble(grads.Input!);
        Assert.That(gx.Any(v => v != 0), "the input gradient is not all zero");
        TensorAssert.Close(gx, Numeric(ReferenceBackend.D(xt)), 1e-8, rtol, "dL/dx");
        Assert.That(grads.Parameters.Keys, Is.EquivalentTo(Weights.Keys), "every parameter has a gradient");
        foreach (var (name, g) in grads.Parameters)
            TensorAssert.Close(ReferenceBackend.DownloadDouble(g), Numeric(ReferenceBackend.D(model.Parameter(name))), 1e-8, rtol, $"dL/d{name}");
    }

    /// <summary>
    /// Checks the jets from the graph input along a random direction v: the output's Taylor coefficients c1, c2, c3
    /// of f(x + t v) against <c>(f(h) - f(-h)) / 2h</c>, <c>(f(h) - 2 f(0) + f(-h)) / 2h^2</c> and
    /// <c>(f(2h) - 2 f(h) + 2 f(-h) - f(-2h)) / 12 h^3</c>.
    /// </summary>
    public void CheckJets(double h = 1e-3, double rtol = 1e-4)
    {
        var file = File();
        var b = new ReferenceBackend();
        using var model = DeviceModel.Load(file, b);
        var x = RandomInput();
        int per = x.Length / 2;
        using var xt = b.UploadDouble(x, [2, .. InputShape]);
        using var pass = model.Forward(xt);
        var v = Enumerable.Range(0, per).Select(_ => _rng.NextDouble() * 2 - 1).ToArray();
        using var vt = b.UploadDouble(v, [1, .. InputShape]);
        var jets = TaylorPass.Run(model, pass, 0, "input", [vt, null, null]);

        double[] F(double t)
        {
            var xx = (double[])x.Clone();
            for (int i = 0; i < per; i++)
                xx[i] += t * v[i];
            var y = Run(model, xx);
            return y[..(y.Length / 2)];
        }
        double[] f0 = F(0), fp = F(h), fm = F(-h), fp2 = F(2 * h), fm2 = F(-2 * h);
        var c1 = f0.Select((_, i) => (fp[i] - fm[i]) / (2 * h)).ToArray();
        var c2 = f0.Select((_, i) => (fp[i] - 2 * f0[i] + fm[i]) / (2 * h * h)).ToArray();
        var c3 = f0.Select((_, i) => (fp2[i] - 2 * fp[i] + 2 * fm[i] - fm2[i]) / (12 * h * h * h)).ToArray();
        double Scale(double[] c) => c.Max(Math.Abs) + 1e-6;
        TensorAssert.Close(jets[0], c1, 1e-5 * Scale(c1), rtol, "order 1");
        TensorAssert.Close(jets[1], c2, 1e-4 * Scale(c2) + 1e-5, 10 * rtol, "order 2");
        TensorAssert.Close(jets[2], c3, 1e-3 * Scale(c3) + 1e-4, 100 * rtol, "order 3");
    }
}
