using System.Globalization;
using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// Bounds on a graph, checked before anything runs: a node count, and the memory its activations need, computed
/// from the output shapes the file declares (and the validator proved). A hostile file of 9 MB can describe
/// 60,000 nodes whose activations fill 14 GB; such a model is refused with the numbers instead of growing until
/// the process dies.
/// <list type="bullet">
/// <item>Loading (<see cref="Check"/>, from <see cref="ModelFile.Validate"/>): at most <see cref="MaxNodes"/> nodes,
/// and one image's activations (every node's output kept, as a reverse pass needs them) within the memory the
/// process can use at all.</item>
/// <item>Explaining (<see cref="CheckFits"/>, from the explainer): one image's activations within the device's
/// memory budget (or <c>ExplainOptions.MemoryBudgetBytes</c> where that is larger; a smaller one only splits batches).</item>
/// </list>
/// </summary>
internal static class GraphBudget
{
    /// <summary>Most nodes a graph may have. Converted CNNs have tens to a few thousand (ResNet-152: about 500, an
    /// EfficientNet-B7 under 2,000).</summary>
    public const int MaxNodes = 20_000;

    /// <summary>Bytes of one image's activations: the input and every node's output, float32, all kept (what a
    /// forward pass feeding a reverse pass holds at its peak).</summary>
    public static long ActivationBytesPerImage(ModelGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        long elements = TensorShape.CheckedLength(graph.InputShape);
        foreach (var node in graph.Nodes)
            elements = checked(elements + TensorShape.CheckedLength(node.Shape));
        return checked(4 * elements);
    }

    /// <summary>Refuses a graph with more than <see cref="MaxNodes"/> nodes; <paramref name="count"/> can come from
    /// the file before the nodes are parsed.</summary>
    /// <exception cref="InvalidModelFileException">Too many nodes.</exception>
    public static void CheckNodeCount(int count)
    {
        if (count > MaxNodes)
            throw new InvalidModelFileException(
                $"the graph has {count} nodes, more than the {MaxNodes} this engine accepts");
    }

    /// <summary>The load-time checks: the node count, and one image's activations within the memory available to
    /// the process (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>).</summary>
    /// <exception cref="InvalidModelFileException">Too many nodes.</exception>
    /// <exception cref="UnsupportedModelException">One image's activations exceed the memory available.</exception>
    public static void Check(ModelGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        CheckNodeCount(graph.Nodes.Count);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long planned = Planned(graph);
        if (available > 0 && planned > available)
            throw new UnsupportedModelException(
                $"the graph's activations need {Size(planned)} per image over {graph.Nodes.Count} nodes, "
                + $"more than the {Size(available)} of memory this process can use");
    }

    /// <summary>The explain-time check: one image's activations within <paramref name="budgetBytes"/>.</summary>
    /// <exception cref="DeviceMemoryException">They do not fit; the message gives both numbers.</exception>
    public static void CheckFits(ModelGraph graph, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(graph);
        long planned = Planned(graph);
        if (planned > budgetBytes)
            throw new DeviceMemoryException(
                $"out of memory before starting: explaining one image needs {Size(planned)} of activations over "
                + $"{graph.Nodes.Count} nodes, more than the memory budget of {Size(budgetBytes)}");
    }

    private static long Planned(ModelGraph graph)
    {
        try
        {
            return ActivationBytesPerImage(graph);
        }
        catch (Exception e) when (e is OverflowException or ArgumentException)
        {
            return long.MaxValue; // more than any budget
        }
    }

    /// <summary>Bytes in the largest binary unit that keeps the number at least 1 (e.g. <c>13.9 GiB</c>), with the
    /// exact count for small sizes.</summary>
    internal static string Size(long bytes)
    {
        if (bytes == long.MaxValue)
            return "more than 8 EiB";
        string[] units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes")
            : string.Create(CultureInfo.InvariantCulture, $"{v:0.0} {units[u]}");
    }
}
