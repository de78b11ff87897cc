using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine;

/// <summary>
/// A CNN loaded on a device, ready to explain and classify images: the library's entry point. It owns the device
/// resources (the backend and the weights on it), so dispose it. Calls from several threads are safe; they take
/// turns on the device.
/// <example><code>
/// using CamEngine;
///
/// using var model = CamModel.Load("models/tiny_resnet.safetensors");   // device: auto
/// var result = model.Explain("models/images/chelsea.png", "gradcam");
/// Console.WriteLine($"class {result.ClassIndex} ({result.Label}), score {result.Score:F3}");
/// result.SaveOverlayPng("chelsea.gradcam.png");
/// </code></example>
/// Options of an explanation (layers, target, convention, fusion, smoothing, seed) are
/// <see cref="ExplainOptions"/> in <c>CamEngine.Methods</c>; methods are named as <c>cam methods</c> lists them
/// (<see cref="Methods"/>), or passed as configured <see cref="CamMethod"/> objects. The <c>Evaluate</c> methods
/// measure maps (deletion, insertion, ROAD, average drop, sanity check, pointing game); their options and results
/// are in <c>CamEngine.Metrics</c>.
/// </summary>
public sealed partial class CamModel : IDisposable
{
    // The graph and the parameter count only: the file's host copy of the weights goes once they are on the device
    // (on the CPU backend it would be a second copy of every weight for the model's lifetime).
    private readonly ModelGraph _graph;
    private readonly long _parameterCount;
    private readonly Backend _backend;
    private readonly DeviceModel _model;
    private readonly Explainer _explainer;
    private readonly int _batchSize;
    private readonly string[]? _labels;
    private volatile bool _disposed;

    private CamModel(ModelFile file, CamModelOptions? options)
    {
        options ??= new CamModelOptions();
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be at least 1, got {options.BatchSize}");
        _graph = file.Graph;
        _parameterCount = file.ParameterCount;
        _batchSize = options.BatchSize;
        _backend = Devices.Open(options.Device);
        try
        {
            _model = DeviceModel.Load(file, _backend);
        }
        catch
        {
            _backend.Dispose();
            throw;
        }
        _explainer = new Explainer(_model);
        _labels = options.Labels?.ToArray() ?? file.Graph.Labels;
    }

    /// <summary>Loads a model file (<c>cam convert</c> writes them) onto a device.</summary>
    /// <param name="path">The model file (.safetensors with the CamEngine graph).</param>
    /// <param name="options">Device and batch size; null for the defaults (device <c>auto</c>).</param>
    /// <exception cref="CamEngineException">The file is missing, unreadable or invalid (the message says why:
    /// <see cref="InvalidModelFileException"/>, <see cref="UnsupportedModelException"/>), or the device is absent.</exception>
    /// <example><code>using var model = CamModel.Load("model.safetensors", new CamModelOptions { Device = "cpu" });</code></example>
    public static CamModel Load(string path, CamModelOptions? options = null) => new(ModelFile.Load(path), options);

    /// <summary>Loads a model from a stream, read to its end, onto a device.</summary>
    /// <param name="stream">The model file's bytes.</param>
    /// <param name="options">Device and batch size; null for the defaults.</param>
    /// <exception cref="CamEngineException">The bytes hold no valid model, or the device is absent.</exception>
    public static CamModel Load(Stream stream, CamModelOptions? options = null) => new(ModelFile.Load(stream), options);

    /// <summary>Loads a model from the complete contents of a model file, onto a device.</summary>
    /// <param name="bytes">The model file's bytes (a <c>byte[]</c> converts implicitly).</param>
    /// <param name="options">Device and batch size; null for the defaults.</param>
    /// <exception cref="CamEngineException">The bytes hold no valid model, or the device is absent.</exception>
    public static CamModel Load(ReadOnlyMemory<byte> bytes, CamModelOptions? options = null) =>
        new(ModelFile.FromBytes(bytes.Span), options);

    /// <summary>Reads a model file asynchronously, then loads it onto a device.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="options">Device and batch size; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="CamEngineException">The file is missing, unreadable or invalid, or the device is absent.</exception>
    /// <example><code>using var model = await CamModel.LoadAsync("model.safetensors", cancellationToken: ct);</code></example>
    public static async Task<CamModel> LoadAsync(
        string path, CamModelOptions? options = null, CancellationToken cancellationToken = default)
    {
        var file = await ModelFile.LoadAsync(path, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return new CamModel(file, options);
    }

    /// <summary>Reads a model from a stream asynchronously, to its end, then loads it onto a device.</summary>
    /// <param name="stream">The model file's bytes.</param>
    /// <param name="options">Device and batch size; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="CamEngineException">The bytes hold no valid model, or the device is absent.</exception>
    public static async Task<CamModel> LoadAsync(
        Stream stream, CamModelOptions? options = null, CancellationToken cancellationToken = default)
    {
        var file = await ModelFile.LoadAsync(stream, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return new CamModel(file, options);
    }

    /// <summary>Every explanation method, by the name the <c>method</c> arguments take, with a one-line summary
    /// (<see cref="CamMethod.Summary"/>) and its paper (<see cref="CamMethod.Paper"/>).</summary>
    public static IReadOnlyList<CamMethod> Methods => MethodCatalog.All;

    /// <summary>Every device this machine offers (the managed CPU backend and each accelerator ILGPU sees) with
    /// its memory, and which one <c>auto</c> picks.</summary>
    /// <example><code>
    /// foreach (var d in CamModel.ListDevices())
    ///     Console.WriteLine($"{d.Kind}: {d.Name}, {d.MemoryBytes >> 20} MiB{(d.UsedByAuto ? " (auto)" : "")}");
    /// </code></example>
    public static IReadOnlyList<DeviceInfo> ListDevices() => Devices.List();

    /// <summary>The device's short name: <c>cuda</c>, <c>opencl</c>, <c>cpu</c>, <c>ilgpu-cpu</c> or <c>reference</c>.</summary>
    public string DeviceName => Live()._backend.Name;

    /// <summary>The device in words (accelerator name and memory, or the CPU's vector width and cores).</summary>
    public string DeviceDescription => Live()._backend.DeviceDescription;

    /// <summary>The model's graph (for the methods' model checks).</summary>
    internal ModelGraph GraphOf => Live()._graph;

    /// <summary>Channels of the model input (3 for RGB, 1 for grey).</summary>
    public int InputChannels => Live()._graph.InputShape[0];

    /// <summary>Height of the model input: images are resized and centre-cropped to it.</summary>
    public int InputHeight => Live()._graph.InputShape[1];

    /// <summary>Width of the model input.</summary>
    public int InputWidth => Live()._graph.InputShape[2];

    /// <summary>Shape of one image's output (classes for a classifier).</summary>
    public IReadOnlyList<int> OutputShape => Live()._graph.OutputShape;

    /// <summary>The class labels: <see cref="CamModelOptions.Labels"/> when given, else those stored in the model; null
    /// when there are none.</summary>
    public IReadOnlyList<string>? Labels => Live()._labels;

    /// <summary>Every layer's name (its output tensor), in execution order; any of these, a node name or a PyTorch
    /// module path goes into <see cref="ExplainOptions.Layers"/>.</summary>
    public IReadOnlyList<string> Layers => Live()._graph.Nodes.Select(n => n.Output).ToList();

    /// <summary>Layers that make good CAM targets, deepest first; the first is the default layer.</summary>
    public IReadOnlyList<string> SuggestedLayers => Live()._graph.SuggestedLayers().ToList();

    /// <summary>Frees the weights on the device and the device itself. Later calls throw
    /// <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        // Wait for a call in flight on another thread: calls hold the device's lock while they run.
        using (_backend.SyncRoot.EnterScope())
        {
            _disposed = true;
            _model.Dispose();
        }
        _backend.Dispose();
    }

    private CamModel Live()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return this;
    }
}
