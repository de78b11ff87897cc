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

    /// <summary>Images per forward (and reverse) pass of the perturbation methods' re-runs: Score-CAM's masked
    /// inputs, Ablation-CAM's ablated activations, SmoothGrad's noisy copies, integrated gradients' path points.</summary>
    public int PerturbationBatch { get; init; } = 32;

    /// <summary>Seed of every random draw (SmoothGrad, SS-CAM), so runs repeat exactly.</summary>
    public int Seed { get; init; }
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
        using var x = backend.Upload(input);
        using var forward = Model.Forward(x);
        var outputs = backend.Download(forward.Output);
        int n = forward.Batch;
        var classes = options.Target.Resolve(outputs, n);
        int k = outputs.Length / n;
        var scores = classes.Select((c, i) => outputs[i * k + c]).ToArray();
        var context = new ExplainContext
        {
            Model = Model, Forward = forward, Classes = classes, Scores = scores, Layers = layers,
            Convention = options.Convention,
            PerturbationBatch = options.PerturbationBatch >= 1
                ? options.PerturbationBatch
                : throw new CamEngineException($"the perturbation batch must be at least 1, got {options.PerturbationBatch}"),
            RandomSeed = options.Seed,
        };
        var result = new Dictionary<string, IReadOnlyList<Explanation>>(StringComparer.Ordinal);
        foreach (var method in methods)
            result[method.Name] = method.Run(context);
        return result;
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
