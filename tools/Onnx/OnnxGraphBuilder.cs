using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// Maps one parsed ONNX graph onto engine nodes, in the ONNX node order (which the ONNX spec requires to be
/// topological). Activations are (C, H, W) or (K) shapes without the batch dimension.
/// </summary>
internal sealed partial class OnnxGraphBuilder
{
    /// <summary>Largest spatial attribute (kernel, stride, pad, dilation) and input side accepted.</summary>
    public const int MaxSpatial = 1 << 15;

    /// <summary>The ONNX operators converted (`cam ops` lists them beside the engine operators they become).</summary>
    internal static readonly string[] SupportedOperators =
    [
        "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Add", "Sub", "Mul", "Div",
        "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Pad", "Flatten", "Reshape", "Gemm", "MatMul", "Softmax",
        "Identity", "Dropout", "Constant", "ReduceMean", "ReduceSum", "ReduceMax", "Transpose", "Slice", "Gather", "Unsqueeze", "Squeeze",
        "LayerNormalization", "Erf", "Sqrt", "Pow", "Tanh", "Split", "Expand", "Where",
    ];

    /// <summary>The ONNX operators evaluated at conversion when all their inputs are constant (shape arithmetic).</summary>
    internal static readonly string[] FoldedOperators =
    [
        "Shape", "Size", "Range", "Equal", "Less", "Greater", "Not", "And", "Or", "Where", "ConstantOfShape", "ScatterND", "Cast",
        "Mod", "Expand", "Neg", "Abs", "Floor", "Ceil", "Max", "Min", "ReduceProd",
    ];

    private static readonly string Supported =
        string.Join(", ", SupportedOperators) + ", and any node whose inputs are all constant among " + string.Join("/", FoldedOperators);

    private readonly OnnxModel _model;
    private readonly OnnxConvertOptions _options;
    private readonly Dictionary<string, OnnxTensor> _inits = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _alias = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _shapes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _producer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HostTensor> _weights = new(StringComparer.Ordinal);
    private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);
    private readonly List<GraphNode> _nodes = [];
    private string _inputName = "";
    private long _batch = 1;
    private long _opset;

    public OnnxGraphBuilder(OnnxModel model, OnnxConvertOptions options)
    {
        _model = model;
        _options = options;
    }

    public ModelFile Build()
    {
        var g = _model.Graph;
        var opset = _model.Opsets.FirstOrDefault(o => o.Domain is "" or "ai.onnx")
            ?? throw new InvalidModelFileException("ONNX model declares no opset for the default operator domain");
        if (opset.Version < 7)
            throw new UnsupportedModelException($"ONNX opset {opset.Version} is older than 7; re-export with opset 7 or newer");
        _opset = opset.Version;
        foreach (var t in g.Initializers)
        {
            if (!_inits.TryAdd(t.Name, t))
                throw new InvalidModelFileException($"ONNX graph has two initializers named '{t.Name}'");
        }
        var input = g.Inputs.FirstOrDefault(v => !_inits.ContainsKey(v.Name))
            ?? throw new InvalidModelFileException("ONNX graph has no input that is not an initializer");
        _inputName = input.Name;
        int[] inputShape = InputShape(input);
        // The batch size the exporter traced with; shape arithmetic and Reshape targets refer to it.
        _batch = input.Dims is { Length: > 0 } && input.Dims[0] is long b and >= 1 ? b : 1;
        _shapes[_inputName] = inputShape;

        foreach (var n in g.Nodes)
        {
            foreach (var i in n.Inputs)
                _consumers[i] = _consumers.GetValueOrDefault(i) + 1;
        }
        foreach (var o in g.Outputs)
            _consumers[o.Name] = _consumers.GetValueOrDefault(o.Name) + 1;

        foreach (var n in g.Nodes)
            ConvertNode(n);

        if (g.Outputs.Count == 0)
            throw new InvalidModelFileException("ONNX graph has no output");
        string output = Resolve(g.Outputs[0].Name);
        if (!_shapes.ContainsKey(output) || output == _inputName)
            throw new UnsupportedModelException($"graph output '{g.Outputs[0].Name}' is not computed by any supported node");
        if (_layouts.TryGetValue(output, out var outLayout) && !IsDefault(outLayout))
            throw new UnsupportedModelException($"graph output '{g.Outputs[0].Name}' is {outLayout.Text}; the output must have the batch first");

        if (_options.FuseDecomposedOperators)
            FuseDecomposedChains(output);

        var used = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var node in _nodes)
        {
            foreach (var p in node.Params.Values)
                used[p] = _weights[p];
        }
        var preprocessing = MakePreprocessing(inputShape, used);
        var graph = new ModelGraph
        {
            InputName = _inputName,
            InputShape = inputShape,
            OutputName = output,
            Nodes = _nodes,
            Preprocessing = preprocessing,
            Labels = _options.Labels,
        };
        GraphValidator.Validate(graph, used);
        return new ModelFile(graph, used);
    }

    private static int[] InputShape(OnnxValueInfo input)
    {
        if (input.ElemType != (int)OnnxDataType.Float)
            throw new UnsupportedModelException($"input '{input.Name}' has element type {input.ElemType}; only float32 (1) is supported");
        var d = input.Dims ?? throw new UnsupportedModelException($"input '{input.Name}' has no shape; export with a fixed (N, C, H, W) shape");
        if (d.Length != 4)
            throw new UnsupportedModelException($"input '{input.Name}' has {d.Length} dimensions; only images (N, C, H, W) are supported");
        var r = new int[3];
        for (int i = 0; i < 3; i++)
        {
            long? v = d[i + 1];
            if (v is null or < 1 or > MaxSpatial)
                throw new UnsupportedModelException(
                    $"input '{input.Name}' dimension {i + 1} ({"CHW"[i]}) is {(v == null ? "dynamic" : v.ToString())}; "
                    + $"C, H and W must be fixed and between 1 and {MaxSpatial}");
            r[i] = (int)v.Value;
        }
        return r;
    }

    private Preprocessing MakePreprocessing(int[] s, Dictionary<string, HostTensor> weights)
    {
        var p = Preprocessing.ImageNet(s[1], s[2]);
        int resize = _options.ResizeShorter ?? p.ResizeShorter;
        if (_options.PreprocessOnnx is { } onnx)
        {
            var t = OnnxPreprocessReader.Read(onnx, s);
            string? meanImage = null;
            if (t.MeanImage != null)
            {
                meanImage = OnnxConvertOptions.MeanImageTensorName;
                if (!weights.TryAdd(meanImage, t.MeanImage))
                    throw new UnsupportedModelException($"the model already has a tensor named '{meanImage}' for the mean image");
            }
            return new Preprocessing
            {
                Height = p.Height,
                Width = p.Width,
                ResizeShorter = resize,
                Mean = t.Mean,
                Std = t.Std,
                Scale = t.Scale,
                ChannelOrder = t.ChannelOrder,
                MeanImage = meanImage,
            };
        }
        float[] mean = _options.Mean ?? (s[0] == 3 ? p.Mean : new float[s[0]]);
        float[] std = _options.Std ?? (s[0] == 3 ? p.Std : Enumerable.Repeat(1f, s[0]).ToArray());
        return new Preprocessing
        {
            Height = p.Height,
            Width = p.Width,
            ResizeShorter = resize,
            Mean = (float[])mean.Clone(),
            Std = (float[])std.Clone(),
            Scale = _options.Scale ?? Preprocessing.DefaultScale,
            ChannelOrder = _options.ChannelOrder ?? Preprocessing.Rgb,
        };
    }

    private string Resolve(string name)
    {
        // Alias chains are acyclic: an alias is only added for a fresh output name.
        while (_alias.TryGetValue(name, out var to))
            name = to;
        return name;
    }

    private void ConvertNode(OnnxNode n)
    {
        if (n.Domain is not ("" or "ai.onnx"))
            throw Unsupported(n, $"unsupported ONNX operator '{n.Domain}.{n.OpType}'");
        if (n.Outputs.Count == 0 || n.Outputs[0].Length == 0)
            throw new InvalidModelFileException($"ONNX node '{n.Name}' ({n.OpType}) has no output");
        if (TryFold(n))
            return;
        switch (n.OpType)
        {
            case "Conv":
                Conv(n);
                break;
            case "BatchNormalization":
                BatchNorm(n);
                break;
            case "Relu":
                CheckAttrs(n);
                UnaryL(n, Ops.Relu);
                break;
            case "MaxPool":
            case "AveragePool":
                Pool(n);
                break;
            case "GlobalAveragePool":
            {
                CheckAttrs(n);
                string x = Act(n, 0);
                Spatial(n, x);
                Emit(n, Ops.GlobalAvgPool, [x], new(), new());
                break;
            }
            case "Flatten":
            {
                CheckAttrs(n, "axis");
                string x = Act(n, 0);
                long axis = AttrInt(n, "axis", 1);
                int rank = _shapes[x].Length + 1;
                if (axis < 0)
                    axis += rank;
                if (axis != 1)
                    throw Unsupported(n, $"Flatten with axis {AttrInt(n, "axis", 1)} is not supported (only axis 1)");
                Emit(n, Ops.Flatten, [x], new(), new());
                break;
            }
            case "Gemm":
                if (n.Inputs.Count >= 1 && ActAny(n, 0) is var (gx, gl) && (!IsDefault(gl) || _shapes[gx].Length != 1))
                {
                    CheckAttrs(n, "alpha", "beta", "transA", "transB");
                    if (AttrInt(n, "transA", 0) != 0 || gl.Dims.Length != 2)
                        throw Unsupported(n, $"Gemm of {gl.Text} with transA={AttrInt(n, "transA", 0)} is not supported");
                    GemmRows(n, gx, gl);
                }
                else
                {
                    Gemm(n);
                }
                break;
            case "Add" or "Sub" or "Mul" or "Div":
                BinaryL(n);
                break;
            case "Sigmoid":
                CheckAttrs(n);
                UnaryL(n, Ops.Sigmoid);
                break;
            case "HardSwish":
                CheckAttrs(n);
                Emit(n, Ops.HardSwish, [Act(n, 0)], new(), new());
                break;
            case "HardSigmoid":
                CheckAttrs(n, "alpha", "beta");
                Emit(n, Ops.HardSigmoid, [Act(n, 0)], new(), Floats(("alpha", AttrFloat(n, "alpha", 0.2f)), ("beta", AttrFloat(n, "beta", 0.5f))));
                break;
            case "LeakyRelu":
                CheckAttrs(n, "alpha");
                Emit(n, Ops.LeakyRelu, [Act(n, 0)], new(), Floats(("alpha", AttrFloat(n, "alpha", 0.01f))));
                break;
            case "Clip":
                Clip(n);
                break;
            case "Concat":
                if (n.Inputs.Count == 0)
                    throw Invalid(n, "needs at least one input");
                ConcatL(n);
                break;
            case "Pad":
                PadL(n);
                break;
            case "Split":
                SplitL(n);
                break;
            case "Expand":
                ExpandL(n);
                break;
            case "Where":
                WhereL(n);
                break;
            case "Reshape":
                if (_batch == 1 && !IsConst(n, 0))
                {
                    CheckAttrs(n, "allowzero");
                    var (rx, rl) = ActAny(n, 0);
                    ReshapeL(n, rx, rl);
                }
                else
                {
                    Reshape(n);
                }
                break;
            case "Unsqueeze" or "Squeeze" or "Flatten" when _batch == 1 && !IsConst(n, 0) && (n.OpType != "Flatten" || !IsDefault(ActAny(n, 0).Layout)):
                ReshapeLike(n);
                break;
            case "MatMul":
                CheckAttrs(n);
                if (n.Inputs.Count != 2)
                    throw Invalid(n, $"needs 2 inputs, has {n.Inputs.Count}");
                if (!IsConst(n, 0) && !IsConst(n, 1))
                {
                    MatMulComputed(n);
                }
                else
                {
                    var (mx, ml) = ActAny(n, 0);
                    MatMulWeight(n, mx, ml);
                }
                break;
            case "Softmax":
                SoftmaxL(n);
                break;
            case "Slice" when !IsConst(n, 0):
                SliceL(n);
                break;
            case "Transpose" when !IsConst(n, 0):
                TransposeL(n);
                break;
            case "Gather" when !IsConst(n, 0):
                GatherL(n);
                break;
            case "Cast" when !IsConst(n, 0):
            {
                CheckAttrs(n, "to", "saturate");
                long to = AttrInt(n, "to", 0);
                if (to is not ((long)OnnxDataType.Float or (long)OnnxDataType.Double))
                    throw Unsupported(n, $"Cast of a computed tensor to data type {to} is not supported (only float)");
                Alias(n, ActRaw(n, 0));
                break;
            }
            case "Shape" or "Gather" or "Unsqueeze" or "Squeeze" or "Slice" or "Cast" or "ConstantOfShape" or "Transpose":
                ShapeArithmetic(n);
                break;
            case "ReduceMean" or "ReduceSum" or "ReduceMax":
                Reduce(n);
                break;
            case "LayerNormalization":
                LayerNormalizationL(n);
                break;
            case "Erf" or "Sqrt" or "Tanh":
                CheckAttrs(n);
                UnaryL(n, n.OpType switch { "Erf" => Ops.Erf, "Sqrt" => Ops.Sqrt, _ => Ops.Tanh });
                break;
            case "Pow":
                PowNode(n);
                break;
            case "Identity":
            case "Dropout":
                PassThrough(n);
                break;
            case "Constant":
                Constant(n);
                break;
            default:
                throw new UnsupportedModelException(
                    $"unsupported ONNX operator '{n.OpType}' at node '{NodeLabel(n)}'; supported: {Supported}");
        }
    }

    private static string NodeLabel(OnnxNode n) =>
        n.Name.Length > 0 ? n.Name : n.Outputs.Count > 0 ? n.Outputs[0] : "(unnamed)";

    private static UnsupportedModelException Unsupported(OnnxNode n, string what) =>
        new($"node '{NodeLabel(n)}' ({n.OpType}): {what}");

    private static InvalidModelFileException Invalid(OnnxNode n, string what) =>
        new($"ONNX node '{NodeLabel(n)}' ({n.OpType}): {what}");

    // ---- inputs, outputs and attributes ----

    /// <summary>The activation read by input <paramref name="i"/>.</summary>
    private string Act(OnnxNode n, int i)
    {
        string x = ActRaw(n, i);
        RequireBatchFirst(n, x);
        return x;
    }

    /// <summary>The activation read by input <paramref name="i"/>, wherever its batch sits.</summary>
    private string ActRaw(OnnxNode n, int i)
    {
        if (i >= n.Inputs.Count || n.Inputs[i].Length == 0)
            throw Invalid(n, $"input {i} is missing");
        string name = Resolve(n.Inputs[i]);
        if (_shapes.ContainsKey(name))
            return name;
        if (_inits.ContainsKey(name))
            throw Unsupported(n, $"input {i} '{name}' is a constant; only computed tensors are supported there");
        if (_model.Graph.Inputs.Any(v => v.Name == name))
            throw Unsupported(n, $"reads a second graph input '{name}'; the engine takes one image input");
        throw Invalid(n, $"input '{name}' is not produced by an earlier node");
    }

    /// <summary>The constant read by input <paramref name="i"/>, or null when that optional input is absent.</summary>
    private OnnxTensor? Const(OnnxNode n, int i, string role, bool required)
    {
        if (i >= n.Inputs.Count || n.Inputs[i].Length == 0)
            return required ? throw Invalid(n, $"the {role} input is missing") : null;
        string name = Resolve(n.Inputs[i]);
        if (_inits.TryGetValue(name, out var t))
            return t;
        if (_shapes.ContainsKey(name))
            throw Unsupported(n, $"the {role} '{name}' is computed; it must be a constant initializer");
        throw Invalid(n, $"the {role} '{name}' is not defined");
    }

    /// <summary>A float tensor with int dims (the ONNX tensor converted, not yet registered as a weight).</summary>
    private static HostTensor Floats(OnnxNode n, OnnxTensor t, string role)
    {
        if (t.Floats == null)
            throw Unsupported(n, $"the {role} '{t.Name}' has data type {t.DataType}; only float and double weights are supported");
        var shape = new int[t.Dims.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            if (t.Dims[i] > int.MaxValue)
                throw Invalid(n, $"the {role} '{t.Name}' has dimension {t.Dims[i]}");
            shape[i] = (int)t.Dims[i];
        }
        foreach (float v in t.Floats)
        {
            if (!float.IsFinite(v))
                throw Invalid(n, $"the {role} '{t.Name}' holds a non-finite value ({v})");
        }
        return new HostTensor(shape, t.Floats);
    }

    /// <summary>Registers an initializer as a weight under its own name; returns the name.</summary>
    private string Weight(OnnxNode n, OnnxTensor t, HostTensor h)
    {
        if (_weights.TryGetValue(t.Name, out var have))
        {
            if (!TensorShape.Equal(have.Shape, h.Shape))
                throw Invalid(n, $"weight '{t.Name}' is used with two shapes");
            return t.Name;
        }
        if (t.Name.Length == 0 || _shapes.ContainsKey(t.Name))
            return NewWeight((NodeLabel(n)) + ".param", h);
        _weights[t.Name] = h;
        return t.Name;
    }

    /// <summary>Registers a tensor the converter made under a fresh name derived from <paramref name="stem"/>.</summary>
    private string NewWeight(string stem, HostTensor h)
    {
        string name = stem;
        for (int k = 1; _weights.ContainsKey(name) || _inits.ContainsKey(name) || _shapes.ContainsKey(name)
                        || _consumers.ContainsKey(name); k++)
            name = $"{stem}_{k}";
        _weights[name] = h;
        return name;
    }

    private static void CheckAttrs(OnnxNode n, params string[] allowed)
    {
        foreach (var a in n.Attributes)
        {
            if (Array.IndexOf(allowed, a.Name) < 0)
                throw Unsupported(n, $"attribute '{a.Name}' is not supported");
        }
    }

    private static OnnxAttribute? Attr(OnnxNode n, string name, OnnxAttributeType type)
    {
        var a = n.Attr(name);
        if (a != null && a.Type != type)
            throw Invalid(n, $"attribute '{name}' has type {a.Type}, expected {type}");
        return a;
    }

    private static long AttrInt(OnnxNode n, string name, long fallback) =>
        Attr(n, name, OnnxAttributeType.Int)?.I ?? fallback;

    private static float AttrFloat(OnnxNode n, string name, float fallback) =>
        Attr(n, name, OnnxAttributeType.Float)?.F ?? fallback;

    /// <summary>An ints attribute of <paramref name="count"/> values in [<paramref name="min"/>, MaxSpatial].</summary>
    private static int[] Spatials(OnnxNode n, string name, int count, int min, int[]? fallback)
    {
        var a = Attr(n, name, OnnxAttributeType.Ints);
        if (a == null)
            return fallback ?? throw Invalid(n, $"attribute '{name}' is required");
        if (a.Ints.Count != count)
            throw Unsupported(n, $"attribute '{name}' has {a.Ints.Count} values; only 2-D operations ({count} values) are supported");
        var r = new int[count];
        for (int i = 0; i < count; i++)
        {
            long v = a.Ints[i];
            if (v < min || v > MaxSpatial)
                throw Invalid(n, $"attribute '{name}' value {v} is outside [{min}, {MaxSpatial}]");
            r[i] = (int)v;
        }
        return r;
    }

    private int[] Spatial(OnnxNode n, string x)
    {
        var s = _shapes[x];
        return s.Length == 3 ? s : throw Unsupported(n, $"needs an image-shaped (C, H, W) input, got {TensorShape.Format(s)}");
    }

    /// <summary>Explicit [top, left, bottom, right] pads from pads/auto_pad for input sides h, w.</summary>
    private static int[] Pads(OnnxNode n, int h, int w, int[] k, int[] s, int[] d)
    {
        var autoPad = Attr(n, "auto_pad", OnnxAttributeType.String)?.S ?? "NOTSET";
        var pads = Spatials(n, "pads", 4, 0, [0, 0, 0, 0]);
        switch (autoPad)
        {
            case "NOTSET" or "":
                return pads;
            case "VALID" or "SAME_UPPER" or "SAME_LOWER":
                if (pads.Any(p => p != 0))
                    throw Invalid(n, $"both auto_pad={autoPad} and explicit pads are given");
                if (autoPad == "VALID")
                    return pads;
                int[] sides = [h, w];
                var r = new int[4];
                for (int i = 0; i < 2; i++)
                {
                    // SAME: output = ceil(in / stride); the total pad makes the last window end at the padded edge.
                    long outSize = (sides[i] + (long)s[i] - 1) / s[i];
                    long total = Math.Max(0, (outSize - 1) * s[i] + (long)d[i] * (k[i] - 1) + 1 - sides[i]);
                    if (total > 2L * MaxSpatial)
                        throw Invalid(n, $"auto_pad={autoPad} needs {total} pixels of padding");
                    long small = total / 2, large = total - small;
                    r[i] = (int)(autoPad == "SAME_UPPER" ? small : large);
                    r[i + 2] = (int)(autoPad == "SAME_UPPER" ? large : small);
                }
                return r;
            default:
                throw Unsupported(n, $"auto_pad '{autoPad}' is not supported");
        }
    }

    /// <summary>Checks in 64-bit arithmetic that each dilated window fits the padded input.</summary>
    private static void CheckWindow(OnnxNode n, int[] x, int[] k, int[] d, int[] pads)
    {
        for (int i = 0; i < 2; i++)
        {
            long extent = (long)d[i] * (k[i] - 1) + 1;
            long padded = (long)x[i + 1] + pads[i] + pads[i + 2];
            if (extent > padded)
                throw Invalid(n, $"the {(i == 0 ? "height" : "width")} window ({extent}) is larger than the padded input ({padded})");
        }
    }

    /// <summary>Fails when an extra output (MaxPool indices, Dropout mask, BatchNormalization statistics) is read.</summary>
    private void CheckExtraOutputsUnused(OnnxNode n)
    {
        // Each output of a Split is an engine node (or alias) of its own.
        if (n.OpType == "Split")
            return;
        for (int i = 1; i < n.Outputs.Count; i++)
        {
            if (n.Outputs[i].Length > 0 && _consumers.ContainsKey(n.Outputs[i]))
                throw Unsupported(n, $"output {i} '{n.Outputs[i]}' is used; only the first output is supported");
        }
    }

    private static Dictionary<string, double[]> A(params (string Key, int[] Values)[] items)
    {
        var r = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var (k, v) in items)
            r[k] = v.Select(i => (double)i).ToArray();
        return r;
    }

    private void Emit(OnnxNode n, string op, string[] inputs, Dictionary<string, string> pars, Dictionary<string, double[]> attrs,
        string? intermediate = null)
    {
        CheckExtraOutputsUnused(n);
        // An ONNX node that becomes several engine nodes names the ones before its last by `intermediate`.
        string output = intermediate ?? n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output))
            throw Invalid(n, $"output '{output}' is produced twice");
        string name = NodeLabel(n);
        for (int k = 1; !_nodeNames.Add(name); k++)
            name = $"{NodeLabel(n)}_{k}";
        var proto = new GraphNode { Name = name, Op = op, Inputs = inputs, Output = output, Params = pars, Attrs = attrs, Shape = [] };
        int[] shape;
        try
        {
            shape = GraphValidator.InferShape(proto, inputs.Select(i => _shapes[i]).ToArray(), _weights);
        }
        catch (ArgumentException e)
        {
            throw Invalid(n, e.Message);
        }
        var node = new GraphNode { Name = name, Op = op, Inputs = inputs, Output = output, Params = pars, Attrs = attrs, Shape = shape };
        _producer[output] = _nodes.Count;
        _nodes.Add(node);
        _shapes[output] = shape;
    }

    // ---- operators ----

    private void Conv(OnnxNode n)
    {
        CheckAttrs(n, "kernel_shape", "strides", "pads", "dilations", "group", "auto_pad");
        if (n.Inputs.Count is < 2 or > 3)
            throw Invalid(n, $"needs 2 or 3 inputs, has {n.Inputs.Count}");
        string x = Act(n, 0);
        var xs = Spatial(n, x);
        var wt = Const(n, 1, "weight", true)!;
        if (wt.Dims.Length != 4)
            throw Unsupported(n, $"only 2-D convolutions are supported (weight '{wt.Name}' has {wt.Dims.Length} dimensions)");
        var w = Floats(n, wt, "weight");
        var k = Spatials(n, "kernel_shape", 2, 1, [w.Shape[2], w.Shape[3]]);
        if (k[0] != w.Shape[2] || k[1] != w.Shape[3])
            throw Invalid(n, $"kernel_shape [{k[0]},{k[1]}] disagrees with weight shape {w.ShapeText}");
        var s = Spatials(n, "strides", 2, 1, [1, 1]);
        var d = Spatials(n, "dilations", 2, 1, [1, 1]);
        long group = AttrInt(n, "group", 1);
        if (group < 1 || group > w.Shape[0])
            throw Invalid(n, $"group {group} is not between 1 and the {w.Shape[0]} output channels");
        var pads = Pads(n, xs[1], xs[2], k, s, d);
        CheckWindow(n, xs, k, d, pads);
        var pars = new Dictionary<string, string>(StringComparer.Ordinal) { ["weight"] = Weight(n, wt, w) };
        var bt = Const(n, 2, "bias", false);
        if (bt != null)
            pars["bias"] = Weight(n, bt, Floats(n, bt, "bias"));
        Emit(n, Ops.Conv, [x], pars, A(("kernel", k), ("strides", s), ("pads", pads), ("dilations", d),
            ("group", [(int)group]), ("out_channels", [w.Shape[0]])));
    }

    private void BatchNorm(OnnxNode n)
    {
        CheckAttrs(n, "epsilon", "momentum", "spatial", "training_mode");
        if (AttrInt(n, "spatial", 1) != 1)
            throw Unsupported(n, "spatial=0 (per-activation statistics) is not supported");
        if (AttrInt(n, "training_mode", 0) != 0)
            throw Unsupported(n, "training_mode=1 is not supported");
        if (n.Inputs.Count != 5)
            throw Invalid(n, $"needs 5 inputs, has {n.Inputs.Count}");
        string raw = n.Inputs[0];
        string x = Act(n, 0);
        bool foldable = x == raw && _producer.TryGetValue(x, out int at) && _nodes[at].Op == Ops.Conv
                        && _consumers.GetValueOrDefault(x) == 1;
        if (!foldable)
        {
            BatchNormOp(n, x);
            return;
        }
        var conv = _nodes[_producer[x]];
        int kOut = conv.Shape[0];
        var stats = new HostTensor[4];
        string[] roles = ["scale", "B", "mean", "var"];
        for (int i = 0; i < 4; i++)
        {
            var t = Floats(n, Const(n, i + 1, roles[i], true)!, roles[i]);
            if (t.Shape.Length != 1 || t.Shape[0] != kOut)
                throw Invalid(n, $"{roles[i]} has shape {t.ShapeText}, expected [{kOut}]");
            stats[i] = t;
        }
        double eps = AttrFloat(n, "epsilon", 1e-5f);
        var w = _weights[conv.Params["weight"]];
        var b = conv.Param("bias") is { } bn ? _weights[bn] : null;
        var w2 = new float[w.Length];
        var b2 = new float[kOut];
        // FullGrad's bias terms before folding (pytorch-grad-cam sums the conv's own bias at the conv output and
        // the BN's effective bias at the BN output): recorded only when the conv had a bias, since otherwise the
        // folded bias is the BN's effective bias itself.
        var convTerm = b != null ? new double[kOut] : null;
        var bnTerm = b != null ? new double[kOut] : null;
        int per = w.Length / kOut;
        for (int c = 0; c < kOut; c++)
        {
            // BN(y) = (y - mean) * gamma / sqrt(var + eps) + beta with y = conv(x) + b; fold the scale into w.
            double v = stats[3].Data[c] + eps;
            if (!(v > 0))
                throw Invalid(n, $"var + epsilon is {v} for channel {c}; it must be positive");
            double scale = stats[0].Data[c] / Math.Sqrt(v);
            for (int j = 0; j < per; j++)
                w2[c * per + j] = (float)(w.Data[c * per + j] * scale);
            b2[c] = (float)(((b?.Data[c] ?? 0.0) - stats[2].Data[c]) * scale + stats[1].Data[c]);
            if (b != null)
            {
                // d score / d conv output = scale * d score / d folded output
                convTerm![c] = b.Data[c] * scale;
                bnTerm![c] = stats[1].Data[c] - stats[2].Data[c] * scale;
            }
            if (!float.IsFinite(b2[c]) || !float.IsFinite((float)scale))
                throw Invalid(n, $"folding into '{conv.Name}' gives a non-finite value for channel {c}");
        }
        var pars = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["weight"] = NewWeight(conv.Name + ".weight_folded", new HostTensor(w.Shape, w2)),
            ["bias"] = NewWeight(conv.Name + ".bias_folded", new HostTensor([kOut], b2)),
        };
        CheckExtraOutputsUnused(n);
        string output = n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output))
            throw Invalid(n, $"output '{output}' is produced twice");
        int index = _producer[x];
        _nodes[index] = new GraphNode
        {
            Name = conv.Name, Op = conv.Op, Inputs = conv.Inputs, Output = output, Params = pars,
            Attrs = convTerm == null ? conv.Attrs : new Dictionary<string, double[]>(conv.Attrs, StringComparer.Ordinal)
            {
                [FoldedBiasTerms.ConvBias] = convTerm, [FoldedBiasTerms.BatchNormBias] = bnTerm!,
            },
            Shape = conv.Shape,
        };
        _shapes.Remove(x);
        _producer.Remove(x);
        _shapes[output] = conv.Shape;
        _producer[output] = index;
    }

    private void Pool(OnnxNode n)
    {
        bool max = n.OpType == "MaxPool";
        if (max)
            CheckAttrs(n, "kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "storage_order");
        else
            CheckAttrs(n, "kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad", "count_include_pad");
        string x = Act(n, 0);
        var xs = Spatial(n, x);
        var k = Spatials(n, "kernel_shape", 2, 1, null);
        var s = Spatials(n, "strides", 2, 1, [1, 1]);
        var d = Spatials(n, "dilations", 2, 1, [1, 1]);
        var pads = Pads(n, xs[1], xs[2], k, s, d);
        CheckWindow(n, xs, k, d, pads);
        long ceil = AttrInt(n, "ceil_mode", 0);
        if (ceil is not (0 or 1))
            throw Invalid(n, $"ceil_mode {ceil} must be 0 or 1");
        if (max)
        {
            if (AttrInt(n, "storage_order", 0) != 0)
                throw Unsupported(n, "storage_order=1 (column-major indices) is not supported");
            Emit(n, Ops.MaxPool, [x], new(), A(("kernel", k), ("strides", s), ("pads", pads), ("dilations", d),
                ("ceil_mode", [(int)ceil])));
            return;
        }
        if (d[0] != 1 || d[1] != 1)
            throw Unsupported(n, "dilated AveragePool is not supported");
        long include = AttrInt(n, "count_include_pad", 0);
        if (include is not (0 or 1))
            throw Invalid(n, $"count_include_pad {include} must be 0 or 1");
        if (k[0] == xs[1] && k[1] == xs[2] && pads.All(p => p == 0))
        {
            // One window over the whole input whatever the stride: global average pooling.
            Emit(n, Ops.GlobalAvgPool, [x], new(), new());
            return;
        }
        Emit(n, Ops.AvgPool, [x], new(), A(("kernel", k), ("strides", s), ("pads", pads), ("ceil_mode", [(int)ceil]),
            ("count_include_pad", [(int)include])));
    }

    private void Gemm(OnnxNode n)
    {
        CheckAttrs(n, "alpha", "beta", "transA", "transB");
        if (n.Inputs.Count is < 2 or > 3)
            throw Invalid(n, $"needs 2 or 3 inputs, has {n.Inputs.Count}");
        if (AttrInt(n, "transA", 0) != 0)
            throw Unsupported(n, "transA=1 is not supported");
        long transB = AttrInt(n, "transB", 0);
        if (transB is not (0 or 1))
            throw Invalid(n, $"transB {transB} must be 0 or 1");
        float alpha = AttrFloat(n, "alpha", 1f), beta = AttrFloat(n, "beta", 1f);
        if (!float.IsFinite(alpha) || !float.IsFinite(beta))
            throw Invalid(n, "alpha and beta must be finite");
        string x = Act(n, 0);
        var bt = Const(n, 1, "weight B", true)!;
        if (bt.Dims.Length != 2)
            throw Invalid(n, $"weight B '{bt.Name}' must be 2-D, has {bt.Dims.Length} dimensions");
        var w = Floats(n, bt, "weight B");
        int outN = transB == 1 ? w.Shape[0] : w.Shape[1];
        var pars = new Dictionary<string, string>(StringComparer.Ordinal) { ["weight"] = Weight(n, bt, w) };
        var ct = Const(n, 2, "bias C", false);
        if (ct != null)
        {
            var c = Floats(n, ct, "bias C");
            if (c.Shape.Length == 1 && c.Shape[0] == outN)
            {
                pars["bias"] = Weight(n, ct, c);
            }
            else if (c.Length == 1 && c.Shape.Length <= 2)
            {
                pars["bias"] = NewWeight(NodeLabel(n) + ".bias", new HostTensor([outN], Enumerable.Repeat(c.Data[0], outN).ToArray()));
            }
            else if (c.Shape.Length == 2 && c.Shape[0] == 1 && c.Shape[1] == outN)
            {
                pars["bias"] = NewWeight(NodeLabel(n) + ".bias", new HostTensor([outN], c.Data));
            }
            else
            {
                throw Unsupported(n, $"bias C '{ct.Name}' has shape {c.ShapeText}; only [{outN}], [1,{outN}] or a scalar is supported");
            }
        }
        var attrs = new Dictionary<string, double[]>(StringComparer.Ordinal)
        {
            ["transB"] = [transB],
            ["alpha"] = [alpha],
            ["beta"] = [beta],
        };
        Emit(n, Ops.Gemm, [x], pars, attrs);
    }

    private void PassThrough(OnnxNode n)
    {
        if (n.OpType == "Dropout")
        {
            CheckAttrs(n, "ratio", "seed", "is_test");
            // Dropout-12 takes training_mode as an optional third input; inference needs it off.
            if (n.Inputs.Count >= 3 && n.Inputs[2].Length > 0)
            {
                var t = Const(n, 2, "training_mode", true)!;
                // Training mode with a constant ratio of 0 (Swin's attention dropout at p = 0) is the identity too.
                bool zeroRatio = n.Inputs.Count >= 2 && n.Inputs[1].Length > 0 && IsConst(n, 1)
                                 && Const(n, 1, "ratio", true)! is { Count: 1 } r && (r.Floats?[0] ?? r.Ints![0]) == 0;
                if ((t.Ints is not { Length: 1 } || t.Ints[0] != 0) && !zeroRatio)
                    throw Unsupported(n, "Dropout with training_mode other than a constant false is not supported");
            }
        }
        else
        {
            CheckAttrs(n);
        }
        CheckExtraOutputsUnused(n);
        if (n.Inputs.Count < 1 || n.Inputs[0].Length == 0)
            throw Invalid(n, "input 0 is missing");
        string src = Resolve(n.Inputs[0]);
        string output = n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output) || output == src)
            throw Invalid(n, $"output '{output}' is produced twice");
        if (_inits.TryGetValue(src, out var init))
            _inits[output] = init with { Name = output };
        else if (_shapes.ContainsKey(src))
            _alias[output] = src;
        else
            throw Invalid(n, $"input '{src}' is not produced by an earlier node");
    }

    private void Constant(OnnxNode n)
    {
        CheckAttrs(n, "value");
        var t = Attr(n, "value", OnnxAttributeType.Tensor)?.T ?? throw Invalid(n, "needs a 'value' tensor attribute");
        string output = n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output))
            throw Invalid(n, $"output '{output}' is produced twice");
        _inits[output] = t with { Name = output };
    }

    private static Dictionary<string, double[]> Floats(params (string Key, double Value)[] items)
    {
        var r = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var (k, v) in items)
            r[k] = [v];
        return r;
    }

    /// <summary>Inference BatchNormalization kept as an op (nothing to fold it into): per-channel scale and shift
    /// computed in double, <c>scale = gamma / sqrt(var + eps)</c>, <c>shift = beta - mean * scale</c>.</summary>
    private void BatchNormOp(OnnxNode n, string x)
    {
        int c = _shapes[x].Length >= 1 ? _shapes[x][0] : 0;
        string[] roles = ["scale", "B", "mean", "var"];
        var stats = new HostTensor[4];
        for (int i = 0; i < 4; i++)
        {
            var t = Floats(n, Const(n, i + 1, roles[i], true)!, roles[i]);
            if (t.Shape.Length != 1 || t.Shape[0] != c)
                throw Invalid(n, $"{roles[i]} has shape {t.ShapeText}, expected [{c}]");
            stats[i] = t;
        }
        double eps = AttrFloat(n, "epsilon", 1e-5f);
        var scale = new float[c];
        var shift = new float[c];
        for (int k = 0; k < c; k++)
        {
            double v = stats[3].Data[k] + eps;
            if (!(v > 0))
                throw Invalid(n, $"var + epsilon is {v} for channel {k}; it must be positive");
            double sc = stats[0].Data[k] / Math.Sqrt(v);
            scale[k] = (float)sc;
            shift[k] = (float)(stats[1].Data[k] - stats[2].Data[k] * sc);
            if (!float.IsFinite(scale[k]) || !float.IsFinite(shift[k]))
                throw Invalid(n, $"channel {k} gives a non-finite scale or shift");
        }
        var pars = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["scale"] = NewWeight(NodeLabel(n) + ".scale", new HostTensor([c], scale)),
            ["shift"] = NewWeight(NodeLabel(n) + ".shift", new HostTensor([c], shift)),
        };
        Emit(n, Ops.BatchNorm, [x], pars, new());
    }

    /// <summary>True when input <paramref name="i"/> is a constant (initializer or Constant output).</summary>
    private bool IsConst(OnnxNode n, int i) =>
        i < n.Inputs.Count && n.Inputs[i].Length > 0 && _inits.ContainsKey(Resolve(n.Inputs[i]));



    /// <summary>Largest constant the shape arithmetic evaluates.</summary>
    private const long MaxFoldedElements = 1 << 16;

    private void DefineConstant(OnnxNode n, OnnxTensor t)
    {
        CheckExtraOutputsUnused(n);
        string output = n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output))
            throw Invalid(n, $"output '{output}' is produced twice");
        _inits[output] = t with { Name = output };
    }

    /// <summary>A constant integer tensor input (shape arithmetic, pads, reshape targets).</summary>
    private long[] ConstInts(OnnxNode n, int i, string role)
    {
        var t = Const(n, i, role, true)!;
        return t.Ints ?? throw Unsupported(n, $"the {role} '{t.Name}' must be an integer tensor");
    }

    /// <summary>
    /// Shape arithmetic that exporters emit around Reshape and Pad (x.view(x.size(0), -1), F.pad): evaluated at
    /// conversion time on constants, with the activation shapes known statically (batch from the ONNX input).
    /// </summary>
    private void ShapeArithmetic(OnnxNode n)
    {
        switch (n.OpType)
        {
            case "Shape":
            {
                CheckAttrs(n, "start", "end");
                string x = Act(n, 0);
                long[] full = [_batch, .. _shapes[x].Select(d => (long)d)];
                long start = AttrInt(n, "start", 0), end = AttrInt(n, "end", full.Length);
                start = Math.Clamp(start < 0 ? start + full.Length : start, 0, full.Length);
                end = Math.Clamp(end < 0 ? end + full.Length : end, start, full.Length);
                var r = full[(int)start..(int)end];
                DefineConstant(n, IntTensor(n, r, [r.Length]));
                return;
            }
            case "Cast":
            {
                CheckAttrs(n, "to", "saturate");
                var t = Const(n, 0, "input", true)!;
                long to = AttrInt(n, "to", 0);
                if (to is (long)OnnxDataType.Int64 or (long)OnnxDataType.Int32 && t.Ints != null)
                    DefineConstant(n, t with { DataType = (int)to });
                else if (to == (long)OnnxDataType.Float && t.Floats != null)
                    DefineConstant(n, t);
                else if (to == (long)OnnxDataType.Float && t.Ints != null)
                    DefineConstant(n, new OnnxTensor(n.Outputs[0], t.Dims, (int)OnnxDataType.Float, t.Ints.Select(v => (float)v).ToArray(), null) { Count = t.Count });
                else
                    throw Unsupported(n, $"Cast of a constant of type {t.DataType} to {to} is not supported");
                return;
            }
            case "ConstantOfShape":
            {
                CheckAttrs(n, "value");
                var dims = ConstInts(n, 0, "shape");
                long count = 1;
                foreach (long d in dims)
                {
                    if (d < 0 || (count *= d) > MaxFoldedElements)
                        throw Unsupported(n, "ConstantOfShape is only evaluated for small constant shapes");
                }
                var v = Attr(n, "value", OnnxAttributeType.Tensor)?.T;
                if (v == null || v.Floats != null)
                {
                    float f = v?.Floats is { Length: > 0 } fl ? fl[0] : 0f;
                    DefineConstant(n, new OnnxTensor(n.Outputs[0], dims, (int)OnnxDataType.Float, Enumerable.Repeat(f, (int)count).ToArray(), null) { Count = count });
                }
                else
                {
                    long iv = v.Ints is { Length: > 0 } il ? il[0] : 0;
                    DefineConstant(n, IntTensor(n, Enumerable.Repeat(iv, (int)count).ToArray(), dims));
                }
                return;
            }
            case "Gather":
            {
                CheckAttrs(n, "axis");
                var data = Const(n, 0, "data", true)!;
                var idx = ConstInts(n, 1, "indices");
                if (data.Ints == null || data.Dims.Length != 1 || AttrInt(n, "axis", 0) != 0)
                    throw Unsupported(n, "Gather is only evaluated on a constant 1-D integer tensor along axis 0");
                var r = new long[idx.Length];
                for (int i = 0; i < idx.Length; i++)
                {
                    long k = idx[i] < 0 ? idx[i] + data.Ints.Length : idx[i];
                    if (k < 0 || k >= data.Ints.Length)
                        throw Invalid(n, $"index {idx[i]} is out of range");
                    r[i] = data.Ints[k];
                }
                var indices = Const(n, 1, "indices", true)!;
                DefineConstant(n, IntTensor(n, r, indices.Dims));
                return;
            }
            case "Unsqueeze" or "Squeeze":
            {
                CheckAttrs(n, "axes");
                var t = Const(n, 0, "data", true)!;
                if (t.Ints == null || t.Count > MaxFoldedElements)
                    throw Unsupported(n, $"{n.OpType} is only evaluated on small constant integer tensors");
                // Only element order matters for the shape vectors this serves: rank 0/1 in, rank 0/1 out.
                if (t.Dims.Length > 1)
                    throw Unsupported(n, $"{n.OpType} is only evaluated on scalars and vectors");
                long[] dims = n.OpType == "Unsqueeze" ? [t.Count] : t.Count == 1 ? [] : [t.Count];
                DefineConstant(n, t with { Dims = dims });
                return;
            }
            case "Slice":
            {
                CheckAttrs(n, "starts", "ends", "axes");
                var t = Const(n, 0, "data", true)!;
                if (t.Ints == null || t.Dims.Length < 1 || t.Dims[0] < 1)
                    throw Unsupported(n, "Slice is only evaluated on constant integer tensors");
                long[] starts, ends, steps = [1];
                if (n.Inputs.Count >= 3)
                {
                    starts = ConstInts(n, 1, "starts");
                    ends = ConstInts(n, 2, "ends");
                    if (n.Inputs.Count >= 4 && n.Inputs[3].Length > 0 && ConstInts(n, 3, "axes") is var ax && (ax.Length != 1 || ax[0] is not (0 or -1)))
                        throw Unsupported(n, "Slice of a constant is only evaluated along axis 0");
                    if (n.Inputs.Count >= 5 && n.Inputs[4].Length > 0)
                        steps = ConstInts(n, 4, "steps");
                }
                else
                {
                    starts = Attr(n, "starts", OnnxAttributeType.Ints)?.Ints.ToArray() ?? throw Invalid(n, "starts are missing");
                    ends = Attr(n, "ends", OnnxAttributeType.Ints)?.Ints.ToArray() ?? throw Invalid(n, "ends are missing");
                }
                if (starts.Length != 1 || ends.Length != 1 || steps.Length != 1 || steps[0] == 0)
                    throw Unsupported(n, "Slice is only evaluated along one axis with a non-zero step");
                // Rows along axis 0, each of rowSize elements; ends may be huge (INT64_MAX means "to the end").
                long len = t.Dims[0], step = steps[0], rowSize = t.Ints.Length / len;
                long s0 = starts[0] < 0 ? starts[0] + len : starts[0];
                long e0 = ends[0] < 0 ? ends[0] + len : ends[0];
                var rows = new List<long>();
                if (step > 0)
                {
                    for (long k = Math.Clamp(s0, 0, len); k < Math.Clamp(e0, 0, len); k += step)
                        rows.Add(k);
                }
                else
                {
                    for (long k = Math.Clamp(s0, -1, len - 1); k > Math.Clamp(e0, -1, len - 1); k += step)
                        rows.Add(k);
                }
                var r = rows.SelectMany(k => t.Ints.Skip((int)(k * rowSize)).Take((int)rowSize)).ToArray();
                DefineConstant(n, IntTensor(n, r, [rows.Count, .. t.Dims[1..]]));
                return;
            }
            default: // Transpose
            {
                CheckAttrs(n, "perm");
                var t = Const(n, 0, "data", true)!;
                if (t.Ints == null || t.Dims.Length != 2)
                    throw Unsupported(n, "Transpose is only evaluated on constant 2-D integer tensors");
                var perm = Attr(n, "perm", OnnxAttributeType.Ints)?.Ints ?? [1, 0];
                if (perm.Count != 2 || (perm[0] == 0 && perm[1] == 1))
                {
                    DefineConstant(n, t);
                    return;
                }
                long rows = t.Dims[0], cols = t.Dims[1];
                var r = new long[t.Ints.Length];
                for (long i = 0; i < rows; i++)
                for (long j = 0; j < cols; j++)
                    r[j * rows + i] = t.Ints[i * cols + j];
                DefineConstant(n, IntTensor(n, r, [cols, rows]));
                return;
            }
        }
    }

    private static OnnxTensor IntTensor(OnnxNode n, long[] data, long[] dims) =>
        new(n.Outputs[0], dims, (int)OnnxDataType.Int64, null, data) { Count = data.Length };

    private void Clip(OnnxNode n)
    {
        CheckAttrs(n, "min", "max");
        string x = Act(n, 0);
        // Opset 6-10: attributes; opset 11+: optional constant inputs.
        float lo = AttrFloat(n, "min", float.NegativeInfinity), hi = AttrFloat(n, "max", float.PositiveInfinity);
        if (n.Inputs.Count >= 2 && n.Inputs[1].Length > 0)
            lo = Scalar(n, 1, "min");
        if (n.Inputs.Count >= 3 && n.Inputs[2].Length > 0)
            hi = Scalar(n, 2, "max");
        if (float.IsNaN(lo) || float.IsNaN(hi) || lo > hi)
            throw Invalid(n, $"bounds [{lo}, {hi}] are not an interval");
        var attrs = new Dictionary<string, double[]>(StringComparer.Ordinal);
        if (float.IsFinite(lo))
            attrs["min"] = [lo];
        if (float.IsFinite(hi))
            attrs["max"] = [hi];
        Emit(n, Ops.Clip, [x], new(), attrs);
    }

    private float Scalar(OnnxNode n, int i, string role)
    {
        var t = Const(n, i, role, true)!;
        if (t.Count != 1)
            throw Unsupported(n, $"the {role} '{t.Name}' must be a scalar");
        return t.Floats?[0] ?? t.Ints![0];
    }


    private void Alias(OnnxNode n, string src)
    {
        CheckExtraOutputsUnused(n);
        string output = n.Outputs[0];
        if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output) || output == src)
            throw Invalid(n, $"output '{output}' is produced twice");
        _alias[output] = src;
    }

    private void Reshape(OnnxNode n)
    {
        CheckAttrs(n, "allowzero");
        if (IsConst(n, 0))
        {
            // Shape arithmetic (e.g. F.pad's pads reshaped to (-1, 2)): same elements, new dims.
            var c = Const(n, 0, "data", true)!;
            var dims = ConstInts(n, 1, "shape").ToArray();
            int unknown = Array.IndexOf(dims, -1L);
            long rest = dims.Where(d => d != -1).Aggregate(1L, (a, b) => a * b);
            if (unknown >= 0 && rest > 0)
                dims[unknown] = c.Count / rest;
            if (dims.Any(d => d < 0) || dims.Aggregate(1L, (a, b) => a * b) != c.Count)
                throw Unsupported(n, $"cannot reshape constant '{c.Name}' of {c.Count} elements to [{string.Join(",", dims)}]");
            DefineConstant(n, c with { Dims = dims });
            return;
        }
        string x = Act(n, 0);
        var target = ConstInts(n, 1, "shape");
        bool allowZero = AttrInt(n, "allowzero", 0) != 0;
        long[] full = [_batch, .. _shapes[x].Select(d => (long)d)];
        long total = full.Aggregate(1L, (a, b) => a * b);
        var r = ResolveDims(n, full, target, allowZero);
        if (r.Length < 2 || r[0] != _batch || r.Aggregate(1L, (a, b) => a * b) != total)
            throw Unsupported(n, $"Reshape to [{string.Join(",", target)}] must keep the batch axis ({_batch}) first "
                + $"and the {total} elements of {TensorShape.Format(full.Select(d => (int)d).ToArray())}");
        var shape = r[1..].Select(d => (int)d).ToArray();
        if (TensorShape.Equal(shape, _shapes[x]))
        {
            Alias(n, x);
            return;
        }
        Emit(n, Ops.Reshape, [x], new(), A(("shape", shape)));
    }


}
