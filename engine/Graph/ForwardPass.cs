using CamEngine.Backends;

namespace CamEngine.Graph;

/// <summary>
/// The activations of one forward run, by tensor name (the graph input included), plus max-pool routing.
/// Owns every tensor it created; disposing frees them.
/// </summary>
internal sealed class ForwardPass : IDisposable
{
    private readonly Dictionary<string, Tensor> _values = new(StringComparer.Ordinal);
    private readonly List<Tensor> _owned = [];

    internal ForwardPass(DeviceModel model, Tensor input, int batch)
    {
        Model = model;
        Input = input;
        Batch = batch;
        _values[model.Graph.InputName] = input;
    }

    /// <summary>The model that ran.</summary>
    public DeviceModel Model { get; }

    /// <summary>The input tensor (N, C, H, W), owned by the caller.</summary>
    public Tensor Input { get; }

    /// <summary>Batch size N.</summary>
    public int Batch { get; }

    /// <summary>The graph output (N, ...).</summary>
    public Tensor Output => _values[Model.Graph.OutputName];

    /// <summary>Max-pool argmax tensors by node name.</summary>
    internal Dictionary<string, Tensor> Argmax { get; } = new(StringComparer.Ordinal);

    /// <summary>An activation by tensor name.</summary>
    public Tensor this[string tensor] =>
        _values.TryGetValue(tensor, out var t) ? t : throw new CamEngineException($"no activation named '{tensor}'");

    internal Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    internal void Set(string name, Tensor t) => _values[name] = t;

    /// <summary>Frees an activation no later node reads (a forward that keeps only its output).</summary>
    internal void Release(string name)
    {
        if (_values.Remove(name, out var t))
            Release(t);
    }

    /// <summary>Drops a name whose storage a later node overwrote in place; the storage stays with the other names.</summary>
    internal void Unbind(string name) => _values.Remove(name);

    /// <summary>Frees a tensor this pass owns.</summary>
    internal void Release(Tensor t)
    {
        if (_owned.Remove(t))
            t.Dispose();
    }

    /// <summary>Frees the activations.</summary>
    public void Dispose()
    {
        foreach (var t in _owned)
            t.Dispose();
        _owned.Clear();
        _values.Clear();
    }
}

/// <summary>What a reverse pass should produce.</summary>
internal sealed class BackwardRequest
{
    /// <summary>Tensor names of the layers whose gradients are wanted.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>Also compute dL/d(input).</summary>
    public bool Input { get; init; }

    /// <summary>Also compute dL/d(every weight and bias).</summary>
    public bool Parameters { get; init; }

    /// <summary>ReLU backward rule for this pass.</summary>
    public Kernels.ReluRule ReluRule { get; init; } = Kernels.ReluRule.Standard;

    /// <summary>Names of ReLU nodes that keep the standard rule whatever <see cref="ReluRule"/> says (the
    /// functional ReLU calls pytorch-grad-cam's guided backprop does not replace).</summary>
    public IReadOnlySet<string>? StandardReluNodes { get; init; }
}

/// <summary>The result of a reverse pass. Owns its tensors; disposing frees them.</summary>
internal sealed class Gradients : IDisposable
{
    private readonly Dictionary<string, Tensor> _grads = new(StringComparer.Ordinal);
    private readonly List<Tensor> _owned = [];
    private readonly DeviceModel _model;

    internal Gradients(DeviceModel model) => _model = model;

    /// <summary>dL/dA for each requested layer, by tensor name.</summary>
    public Dictionary<string, Tensor> Layers { get; } = new(StringComparer.Ordinal);

    /// <summary>dL/d(input) when requested.</summary>
    public Tensor? Input { get; internal set; }

    /// <summary>dL/d(parameter) by parameter name, when requested.</summary>
    public Dictionary<string, Tensor> Parameters { get; } = new(StringComparer.Ordinal);

    internal Tensor this[string name] => _grads[name];

    internal bool TryGet(string name, out Tensor t) => _grads.TryGetValue(name, out t!);

    internal void Set(string name, Tensor t) => _grads[name] = t;

    internal Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    /// <summary>Adds a gradient contribution; a second contribution makes a new sum tensor (never in place,
    /// since contributions may be shared views).</summary>
    internal void Accumulate(string name, Tensor contribution)
    {
        if (_grads.TryGetValue(name, out var existing))
        {
            var sum = Own(_model.Backend.Allocate(existing.Shape));
            _model.Backend.Add(existing, contribution, sum);
            _grads[name] = sum;
        }
        else
        {
            _grads[name] = contribution;
        }
    }

    internal void AddParameter(string name, Tensor grad)
    {
        if (Parameters.TryGetValue(name, out var existing))
        {
            var sum = Own(_model.Backend.Allocate(existing.Shape));
            _model.Backend.Add(existing, grad, sum);
            Parameters[name] = sum;
        }
        else
        {
            Parameters[name] = grad;
        }
    }

    /// <summary>Frees the gradients.</summary>
    public void Dispose()
    {
        foreach (var t in _owned)
            t.Dispose();
        _owned.Clear();
        _grads.Clear();
        Layers.Clear();
        Parameters.Clear();
    }
}
