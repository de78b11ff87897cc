using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// A model as stored on disk: the graph and its named float32 weights. See <c>models/README.md</c>
/// for the file format (safetensors with the graph JSON in <c>__metadata__</c>).
/// </summary>
internal sealed partial class ModelFile
{
    /// <summary>Pairs a graph with its weights (no validation; <see cref="Validate"/> does that). When the graph's
    /// preprocessing names a mean image that is among <paramref name="weights"/>, <see cref="Graph"/> is a copy of
    /// <paramref name="graph"/> with that tensor attached (<see cref="Preprocessing.MeanImageTensor"/>), so code
    /// holding only the graph can preprocess images.</summary>
    public ModelFile(ModelGraph graph, IReadOnlyDictionary<string, HostTensor> weights)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(weights);
        var p = graph.Preprocessing;
        if (p.MeanImage is { } name && weights.TryGetValue(name, out var meanImage) && !ReferenceEquals(p.MeanImageTensor, meanImage))
            graph = graph.WithPreprocessing(p.WithMeanImageTensor(meanImage));
        Graph = graph;
        Weights = weights;
    }

    /// <summary>The graph.</summary>
    public ModelGraph Graph { get; }

    /// <summary>Weight tensors by name.</summary>
    public IReadOnlyDictionary<string, HostTensor> Weights { get; }

    /// <summary>Total number of parameters: the elements of every stored tensor except the preprocessing's mean image.</summary>
    public long ParameterCount =>
        Weights.Where(p => p.Key != Graph.Preprocessing.MeanImage).Sum(p => (long)p.Value.Length);

    /// <summary>Checks the graph against the weights (<see cref="GraphValidator"/>), then its size
    /// (<see cref="GraphBudget.Check"/>: node count and planned activations).</summary>
    public void Validate()
    {
        GraphValidator.Validate(Graph, Weights);
        GraphBudget.Check(Graph);
    }
}
