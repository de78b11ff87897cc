using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>Options of an <see cref="Explainer"/> run.</summary>
public sealed class ExplainOptions
{
    /// <summary>Layer names (tensor, node or module path); empty means the model's default target layer.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>Which score to explain; top-1 by default.</summary>
    public Target Target { get; init; } = Target.Top1;

    /// <summary>Which library's (or the paper's) definition to follow.</summary>
    public Convention Convention { get; init; } = Convention.PytorchGradCam;
}

/// <summary>
/// Runs methods on a batch: uploads the input, runs the graph once, resolves targets, then lets the method do
/// its passes. <example><code>
/// using var backend = Devices.Open();
/// using var model = DeviceModel.Load(ModelFile.Load("model.safetensors"), backend);
/// var maps = new Explainer(model).Explain(input, new GradCam());
/// </code></example>
/// </summary>
public sealed class Explainer(DeviceModel model)
{
    /// <summary>The model explained.</summary>
    public DeviceModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>Resolves the layers a method works at.</summary>
    public IReadOnlyList<GraphNode> ResolveLayers(IReadOnlyList<string> names) =>
        names.Count == 0 ? [Model.Graph.DefaultTargetLayer()] : names.Select(Model.Graph.ResolveLayer).ToList();

    /// <summary>Explains every image of <paramref name="input"/> (N, C, H, W) with <paramref name="method"/>.</summary>
    public IReadOnlyList<Explanation> Explain(HostTensor input, CamMethod method, ExplainOptions? options = null) =>
        Explain(input, [method], options)[method.Name];

    /// <summary>Explains the batch with several methods, sharing one forward pass.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Explanation>> Explain(
        HostTensor input, IReadOnlyList<CamMethod> methods, ExplainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(methods);
        options ??= new ExplainOptions();
        var layers = ResolveLayers(options.Layers);
        foreach (var layer in layers)
        {
            if (layer.Shape.Length != 3)
                throw new CamEngineException(
                    $"layer '{layer.Output}' has shape {TensorShape.Format(layer.Shape)}; pick a convolutional layer (C, h, w)");
        }
        MapOpsGuard(input);
        var backend = Model.Backend;
        using var scope = backend.SyncRoot.EnterScope();
        using var x = backend.Upload(input);
        using var forward = Model.Forward(x);
        var outputs = backend.Download(forward.Output);
        if (outputs.Any(v => !float.IsFinite(v)))
            throw new CamEngineException(FirstNonFinite(forward));
        int n = forward.Batch;
        var classes = options.Target.Resolve(outputs, n);
        int k = outputs.Length / n;
        var scores = classes.Select((c, i) => outputs[i * k + c]).ToArray();
        var context = new ExplainContext
        {
            Model = Model, Forward = forward, Classes = classes, Scores = scores, Layers = layers,
            Convention = options.Convention,
        };
        var result = new Dictionary<string, IReadOnlyList<Explanation>>(StringComparer.Ordinal);
        foreach (var method in methods)
            result[method.Name] = method.Run(context);
        return result;
    }

    /// <summary>Names the first node (in execution order) whose output holds NaN or infinity.</summary>
    private string FirstNonFinite(ForwardPass forward)
    {
        foreach (var node in Model.Graph.Nodes)
        {
            var values = Model.Backend.Download(forward[node.Output]);
            int at = Array.FindIndex(values, v => !float.IsFinite(v));
            if (at >= 0)
                return $"the model produced a non-finite value ({values[at]}) first in the output of node '{node.Name}' ({node.Op}), element {at}";
        }
        return "the model output holds non-finite values";
    }

    private static void MapOpsGuard(HostTensor input)
    {
        for (int i = 0; i < input.Data.Length; i++)
        {
            if (!float.IsFinite(input.Data[i]))
                throw new InvalidInputException($"the input holds a non-finite value ({input.Data[i]}) at element {i}");
        }
    }
}
