using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// A model as stored on disk: the graph and its named float32 weights. See <c>models/README.md</c>
/// for the file format (safetensors with the graph JSON in <c>__metadata__</c>).
/// </summary>
public sealed partial class ModelFile
{
    /// <summary>Pairs a graph with its weights (no validation; <see cref="Validate"/> does that).</summary>
    public ModelFile(ModelGraph graph, IReadOnlyDictionary<string, HostTensor> weights)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(weights);
        Graph = graph;
        Weights = weights;
    }

    /// <summary>The graph.</summary>
    public ModelGraph Graph { get; }

    /// <summary>Weight tensors by name.</summary>
    public IReadOnlyDictionary<string, HostTensor> Weights { get; }

    /// <summary>Total number of parameters.</summary>
    public long ParameterCount => Weights.Values.Sum(t => (long)t.Length);

    /// <summary>Checks the graph against the weights; see <see cref="GraphValidator"/>.</summary>
    public void Validate() => GraphValidator.Validate(Graph, Weights);
}
