using System.Text.Json;
using System.Text.Json.Nodes;

namespace CamEngine.Model;

/// <summary>
/// A model's static DAG: one input (N, C, H, W), nodes in topological order, one output. Serialized as JSON
/// into the safetensors header's <c>__metadata__["engine.graph"]</c> (see <c>models/README.md</c>).
/// </summary>
internal sealed class ModelGraph
{
    /// <summary>Version of the graph JSON this engine writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>Graph JSON documents deeper than this are refused.</summary>
    public const int MaxJsonDepth = 16;

    /// <summary>Name of the input tensor.</summary>
    public required string InputName { get; init; }

    /// <summary>Input shape without the batch dimension (C, H, W).</summary>
    public required int[] InputShape { get; init; }

    /// <summary>Name of the output tensor (the logits or embedding).</summary>
    public required string OutputName { get; init; }

    /// <summary>The nodes in topological order.</summary>
    public required IReadOnlyList<GraphNode> Nodes { get; init; }

    /// <summary>How images become input tensors.</summary>
    public required Preprocessing Preprocessing { get; init; }

    /// <summary>Optional class labels, one per output index.</summary>
    public string[]? Labels { get; init; }

    /// <summary>Output shape without the batch dimension.</summary>
    public int[] OutputShape => Nodes.Count == 0 ? InputShape : FindByOutput(OutputName)!.Shape;

    /// <summary>The node producing tensor <paramref name="tensor"/>, or null.</summary>
    public GraphNode? FindByOutput(string tensor)
    {
        foreach (var n in Nodes)
        {
            if (n.Output == tensor)
                return n;
        }
        return null;
    }

    /// <summary>
    /// Resolves a user's layer name to a node: an output tensor name (<c>/layer4/Relu_output_0</c>), a node
    /// name (<c>/layer4/Relu</c>), or a PyTorch module path (<c>layer4</c>, <c>block2.relu2</c>), which
    /// selects the last node exported under that module, i.e. the module's output as a forward hook sees it.
    /// </summary>
    /// <exception cref="CamEngineException">No node matches; the message lists suggestions.</exception>
    public GraphNode ResolveLayer(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var byOutput = FindByOutput(name);
        if (byOutput != null)
            return byOutput;
        foreach (var n in Nodes)
        {
            if (n.Name == name)
                return n;
        }
        string prefix = "/" + name.Trim('/').Replace('.', '/') + "/";
        GraphNode? last = null;
        foreach (var n in Nodes)
        {
            if (n.Name.StartsWith(prefix, StringComparison.Ordinal))
                last = n;
        }
        if (last != null)
            return last;
        // Exporters nest scopes as "/features/features.3/features.3.0/block/block.2/Op": module "features.3.0.block.2".
        string module = name.Trim('/');
        foreach (var n in Nodes)
        {
            if (ModulePaths(n.Name).Contains(module, StringComparer.Ordinal))
                last = n;
        }
        if (last != null)
            return last;
        throw new CamEngineException(
            $"unknown layer '{name}'; try one of: {string.Join(", ", SuggestedLayers().Take(6))} (see `cam info`)");
    }

    /// <summary>The PyTorch module paths a node's exported name stands for: "/layer4/layer4.1/conv2/Conv" gives
    /// layer4, layer4.1, layer4.1.conv2 and "/features/features.3/features.3.0/block/block.2/LayerNormalization" gives
    /// features, features.3, features.3.0, features.3.0.block, features.3.0.block.2 (the exporter nests the scopes;
    /// the last segment is the operator).</summary>
    public static IEnumerable<string> ModulePaths(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        // A Sequential's children are scoped "<its scope>.<index>": "/features/features.3/features.3.0/block/block.2"
        // is features.3.0.block.2, so a part that extends the previous part extends the path by the same suffix.
        var parts = nodeName.Trim('/').Split('/');
        string path = "", previous = "";
        for (int i = 0; i < parts.Length - 1; i++)
        {
            string part = parts[i];
            path = path.Length == 0 ? part
                : previous.Length > 0 && part.StartsWith(previous + ".", StringComparison.Ordinal) ? path + part[previous.Length..]
                : path + "." + part;
            previous = part;
            yield return path;
        }
    }

    /// <summary>Layers that make good CAM targets, best first: the head's input (the deepest grid, channels first or
    /// last, or the deepest token LayerNorm that feeds an attention), then the residual block outputs and the stage
    /// outputs; see <see cref="Methods.LayerLayouts.Suggest"/>.</summary>
    public IEnumerable<string> SuggestedLayers() => Methods.LayerLayouts.Of(this).Suggest();

    /// <summary>True when <paramref name="tensor"/> is laid out (N, C, H, W) as the input is: see
    /// <see cref="ChannelsFirst"/>.</summary>
    public bool IsChannelsFirst(string tensor) => tensor == InputName || ChannelsFirst().Contains(tensor);

    /// <summary>
    /// The tensors laid out (N, C, H, W): the input; the outputs of conv, pooling and a transpose by (0, 3, 1, 2) of a
    /// channels-last tensor; a reshape back to (C, H, W) with its input's last two sides (ShuffleNet's channel
    /// shuffle); every other op keeps the layout of its first activation input. A transpose by (0, 2, 3, 1) makes
    /// a channels-last tensor, and any other transpose or reshape an unknown layout.
    /// </summary>
    private HashSet<string> ChannelsFirst()
    {
        var nchw = new HashSet<string>(StringComparer.Ordinal) { InputName };
        var nhwc = new HashSet<string>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal) { [InputName] = InputShape };
        foreach (var n in Nodes)
        {
            shapes[n.Output] = n.Shape;
            string x = n.Inputs.Length > 0 ? n.Inputs[0] : "";
            switch (n.Op)
            {
                case Ops.Conv or Ops.MaxPool or Ops.AvgPool or Ops.GlobalAvgPool:
                    nchw.Add(n.Output);
                    break;
                case Ops.Transpose:
                {
                    var perm = n.Ints("perm", []);
                    if (nchw.Contains(x) && perm.SequenceEqual([0, 2, 3, 1]))
                        nhwc.Add(n.Output);
                    else if (nhwc.Contains(x) && perm.SequenceEqual([0, 3, 1, 2]))
                        nchw.Add(n.Output);
                    break;
                }
                case Ops.Reshape or Ops.Flatten:
                    if (n.Shape.Length == 3 && shapes.TryGetValue(x, out var xs) && xs.Length >= 3
                        && xs[^2] == n.Shape[1] && xs[^1] == n.Shape[2])
                        nchw.Add(n.Output);
                    break;
                default:
                    if (nchw.Contains(x))
                        nchw.Add(n.Output);
                    else if (nhwc.Contains(x))
                        nhwc.Add(n.Output);
                    break;
            }
        }
        return nchw;
    }

    /// <summary>The default CAM target layer: the deepest node whose output is still a spatial map.</summary>
    public GraphNode DefaultTargetLayer()
    {
        string? name = SuggestedLayers().FirstOrDefault();
        return name == null
            ? throw new CamEngineException("the model has no spatial layer to explain")
            : FindByOutput(name)!;
    }

    /// <summary>A copy of this graph (sharing its nodes) with another <see cref="Preprocessing"/>.</summary>
    public ModelGraph WithPreprocessing(Preprocessing preprocessing)
    {
        ArgumentNullException.ThrowIfNull(preprocessing);
        return new ModelGraph
        {
            InputName = InputName,
            InputShape = InputShape,
            OutputName = OutputName,
            Nodes = Nodes,
            Preprocessing = preprocessing,
            Labels = Labels,
        };
    }

    /// <summary>Serializes the graph to its JSON form.</summary>
    public string ToJson()
    {
        var nodes = new JsonArray();
        foreach (var n in Nodes)
        {
            var attrs = new JsonObject();
            foreach (var (k, v) in n.Attrs.OrderBy(p => p.Key, StringComparer.Ordinal))
                attrs[k] = new JsonArray(v.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray());
            var pars = new JsonObject();
            foreach (var (k, v) in n.Params.OrderBy(p => p.Key, StringComparer.Ordinal))
                pars[k] = v;
            nodes.Add(new JsonObject
            {
                ["name"] = n.Name,
                ["op"] = n.Op,
                ["inputs"] = new JsonArray(n.Inputs.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
                ["output"] = n.Output,
                ["params"] = pars,
                ["attrs"] = attrs,
                ["shape"] = IntArray(n.Shape),
            });
        }
        var p = Preprocessing;
        var pre = new JsonObject
        {
            ["height"] = p.Height,
            ["width"] = p.Width,
            ["resize_shorter"] = p.ResizeShorter,
            ["mean"] = new JsonArray(p.Mean.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray()),
            ["std"] = new JsonArray(p.Std.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray()),
        };
        // The optional fields are written only when they differ from the defaults, so files of models without
        // them stay byte-identical to what earlier versions wrote.
        if (p.Scale != Preprocessing.DefaultScale)
            pre["scale"] = p.Scale;
        if (p.ChannelOrder != Preprocessing.Rgb)
            pre["channel_order"] = p.ChannelOrder;
        if (p.MeanImage != null)
            pre["mean_image"] = p.MeanImage;
        var root = new JsonObject
        {
            ["format"] = FormatVersion,
            ["input"] = new JsonObject { ["name"] = InputName, ["shape"] = IntArray(InputShape) },
            ["output"] = OutputName,
            ["preprocessing"] = pre,
            ["nodes"] = nodes,
        };
        if (Labels != null)
            root["labels"] = new JsonArray(Labels.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray());
        return root.ToJsonString();
    }

    private static JsonArray IntArray(int[] v) => new(v.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray());

    /// <summary>
    /// Parses graph JSON from an untrusted file. Rejects duplicate keys, deep nesting, unknown format versions,
    /// missing fields and values of the wrong type with <see cref="InvalidModelFileException"/>.
    /// </summary>
    public static ModelGraph FromJson(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions
            {
                MaxDepth = MaxJsonDepth,
                AllowDuplicateProperties = false,
            });
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: the duplicate-key check meets a property name with a lone surrogate escape.
            throw new InvalidModelFileException($"graph JSON is malformed: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        using (doc)
        {
            try
            {
                return Parse(doc.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException
                                          or OverflowException or ArgumentException)
            {
                throw new InvalidModelFileException($"graph JSON is invalid: {e.Message}", e);
            }
        }
    }

    private static ModelGraph Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException("graph JSON must be an object");
        int format = root.GetProperty("format").GetInt32();
        if (format != FormatVersion)
            throw new InvalidModelFileException($"graph format version {format} is not supported (this engine reads {FormatVersion})");
        var input = root.GetProperty("input");
        var pre = root.GetProperty("preprocessing");
        var nodesElement = root.GetProperty("nodes");
        GraphBudget.CheckNodeCount(nodesElement.GetArrayLength());
        var nodes = new List<GraphNode>();
        foreach (var e in nodesElement.EnumerateArray())
        {
            var pars = new Dictionary<string, string>(StringComparer.Ordinal);
            if (e.TryGetProperty("params", out var pe))
            {
                foreach (var p in pe.EnumerateObject())
                    pars[p.Name] = p.Value.GetString() ?? throw new InvalidModelFileException("null parameter name");
            }
            var attrs = new Dictionary<string, double[]>(StringComparer.Ordinal);
            if (e.TryGetProperty("attrs", out var ae))
            {
                foreach (var a in ae.EnumerateObject())
                    attrs[a.Name] = a.Value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            }
            nodes.Add(new GraphNode
            {
                Name = Str(e, "name"),
                Op = Str(e, "op"),
                Inputs = e.GetProperty("inputs").EnumerateArray().Select(v => v.GetString() ?? "").ToArray(),
                Output = Str(e, "output"),
                Params = pars,
                Attrs = attrs,
                Shape = Ints(e.GetProperty("shape")),
            });
        }
        string[]? labels = null;
        if (root.TryGetProperty("labels", out var le))
            labels = le.EnumerateArray().Select(v => v.GetString() ?? "").ToArray();
        return new ModelGraph
        {
            InputName = Str(input, "name"),
            InputShape = Ints(input.GetProperty("shape")),
            OutputName = Str(root, "output"),
            Nodes = nodes,
            Labels = labels,
            Preprocessing = new Preprocessing
            {
                Height = pre.GetProperty("height").GetInt32(),
                Width = pre.GetProperty("width").GetInt32(),
                ResizeShorter = pre.GetProperty("resize_shorter").GetInt32(),
                Mean = pre.GetProperty("mean").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
                Std = pre.GetProperty("std").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
                Scale = pre.TryGetProperty("scale", out var scale) ? scale.GetSingle() : Preprocessing.DefaultScale,
                ChannelOrder = pre.TryGetProperty("channel_order", out _) ? Str(pre, "channel_order") : Preprocessing.Rgb,
                MeanImage = pre.TryGetProperty("mean_image", out _) ? Str(pre, "mean_image") : null,
            },
        };
    }

    private static string Str(JsonElement e, string name) =>
        e.GetProperty(name).GetString() ?? throw new InvalidModelFileException($"'{name}' must be a string");

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();
}
