using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>What <see cref="Safetensors.Read"/> returns: the header's <c>__metadata__</c> map and the
/// tensors, all converted to float32.</summary>
internal sealed class SafetensorsContents
{
    /// <summary>Pairs a metadata map with tensors.</summary>
    public SafetensorsContents(IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, HostTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        Metadata = metadata;
        Tensors = tensors;
    }

    /// <summary>The <c>__metadata__</c> string-to-string map (empty when the header has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors by name, float32, row-major.</summary>
    public IReadOnlyDictionary<string, HostTensor> Tensors { get; }
}
