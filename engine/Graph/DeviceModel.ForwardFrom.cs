using CamEngine.Backends;

namespace CamEngine.Graph;

internal sealed partial class DeviceModel
{
    /// <summary>
    /// Runs only the part of the graph after <paramref name="layer"/>, with that layer's activation replaced by
    /// <paramref name="replaced"/> (M, shape of the layer): the re-run Ablation-CAM and similar methods need.
    /// Row r of the result belongs to image <c>rows[r]</c> of <paramref name="pass"/> (default: row r, which
    /// needs M = N); any tensor that a later node reads and that was computed before the layer (a residual
    /// branch, the graph input) is taken from <paramref name="pass"/> for those images, so nothing before the
    /// layer runs again. The result owns what it computed and copied; <paramref name="replaced"/> stays the
    /// caller's. Nodes before the layer have no activations in the result, so it cannot be differentiated
    /// below the layer.
    /// </summary>
    public ForwardPass ForwardFrom(ForwardPass pass, string layer, Tensor replaced, IReadOnlyList<int>? rows = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(replaced);
        return ForwardFrom(pass, [(layer, replaced)], rows);
    }

    /// <summary>
    /// <see cref="ForwardFrom(ForwardPass, string, Tensor, IReadOnlyList{int}?)"/> with several activations
    /// replaced at once (ViT Recipro-CAM replaces a block's input and its normalized copy): the run starts after
    /// the earliest of them, and a node whose output is replaced does not run. Every replacement has the same
    /// batch M.
    /// </summary>
    public ForwardPass ForwardFrom(ForwardPass pass, IReadOnlyList<(string Layer, Tensor Replaced)> replacements, IReadOnlyList<int>? rows = null)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(replacements);
        if (replacements.Count == 0)
            throw new CamEngineException("ForwardFrom: nothing to replace");
        var g = Graph;
        int at = int.MaxValue;
        int m = replacements[0].Replaced.Shape[0];
        foreach (var (layer, replaced) in replacements)
        {
            ArgumentNullException.ThrowIfNull(layer);
            ArgumentNullException.ThrowIfNull(replaced);
            at = Math.Min(at, IndexOfOutput(layer));
            var original = pass[layer];
            if (replaced.Shape.Length != original.Shape.Length || !replaced.Shape.AsSpan(1).SequenceEqual(original.Shape.AsSpan(1)))
                throw new CamEngineException(
                    $"replacement for '{layer}' has shape {replaced.ShapeText}; the layer is (N,{string.Join(",", original.Shape[1..])})");
            if (replaced.Shape[0] != m)
                throw new CamEngineException($"ForwardFrom: the replacements have batches {m} and {replaced.Shape[0]}");
        }
        int[] map = rows?.ToArray() ?? Enumerable.Range(0, m).ToArray();
        if (map.Length != m)
            throw new CamEngineException($"ForwardFrom: {map.Length} row indices for a replacement of batch {m}");
        foreach (int r in map)
        {
            if ((uint)r >= (uint)pass.Batch)
                throw new CamEngineException($"ForwardFrom: row index {r} is outside the pass's batch of {pass.Batch}");
        }
        bool identity = m == pass.Batch && map.Select((r, i) => r == i).All(b => b);

        var replacedNames = replacements.Select(p => p.Layer).ToHashSet(StringComparer.Ordinal);
        var produced = new HashSet<string>(replacedNames, StringComparer.Ordinal);
        for (int i = at + 1; i < g.Nodes.Count; i++)
            produced.Add(g.Nodes[i].Output);
        var input = identity ? pass.Input : GatherRows(pass.Input, map);
        var result = new ForwardPass(this, input, m);
        try
        {
            if (!identity)
                result.Own(input);
            foreach (var (layer, replaced) in replacements)
                result.Set(layer, replaced);
            for (int i = at + 1; i < g.Nodes.Count; i++)
            {
                var node = g.Nodes[i];
                if (replacedNames.Contains(node.Output))
                    continue;
                foreach (var name in node.Inputs)
                {
                    // An earlier activation (residual branch): copied once for the rows.
                    if (name == g.InputName || !produced.Add(name))
                        continue;
                    result.Set(name, identity ? pass[name] : result.Own(GatherRows(pass[name], map)));
                }
                RunNode(result, node, m);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    // Rows of an (N, ...) tensor gathered on the device, one copy per row (no host round trip): only residual
    // branches and the graph input take this path.
    private Tensor GatherRows(Tensor t, int[] rows)
    {
        int size = t.Length / t.Shape[0];
        var gathered = Backend.Allocate([rows.Length, .. t.Shape[1..]]);
        try
        {
            for (int r = 0; r < rows.Length; r++)
                Backend.CopyRange(t, rows[r] * size, gathered, r * size, size);
        }
        catch
        {
            gathered.Dispose();
            throw;
        }
        return gathered;
    }
}
