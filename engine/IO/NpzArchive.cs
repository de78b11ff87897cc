using CamEngine.Tensors;

namespace CamEngine.IO;

/// <summary>The arrays of an <c>.npz</c> file, keyed by entry name without the <c>.npy</c> suffix.</summary>
internal sealed class NpzArchive
{
    /// <summary>Creates an archive from already-read arrays.</summary>
    public NpzArchive(Dictionary<string, HostTensor> arrays, Dictionary<string, string[]> strings)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        ArgumentNullException.ThrowIfNull(strings);
        Arrays = arrays;
        Strings = strings;
    }

    /// <summary>Numeric arrays, converted to float32.</summary>
    public Dictionary<string, HostTensor> Arrays { get; }

    /// <summary>Unicode (<c>&lt;U</c>) arrays, flattened row-major; a 0-d string array gives one element.</summary>
    public Dictionary<string, string[]> Strings { get; }
}
