using CamEngine.Methods;

namespace CamEngine.Imaging;

/// <summary>
/// Finds the tiles of a grid whose maps coincide and says why, so that a <c>--method all</c> grid with ten identical
/// tiles explains itself. Two maps coincide when they have the same shape and differ by at most
/// <see cref="Tolerance"/> at every pixel (the maps are in [0, 1]); methods that are equal in exact arithmetic differ
/// by float rounding only. The reasons, checked in this order:
/// <list type="number">
/// <item>a channel-weight vector of the group (<see cref="Explanation.Weights"/>) with a single non-zero entry: the
/// target's gradient reaches one channel of the layer only (an embedding model's top-1 output channel is the
/// spatial mean of one channel), so every gradient method draws that channel's activation map;</item>
/// <item>Grad-CAM++ among them with Grad-CAM: its channel weights alpha_k ReLU(g_k), alpha_k = 1 / (2 + sum(A_k) g_k),
/// are proportional to Grad-CAM's g_k only when one channel carries the gradient, the same case;</item>
/// <item>known identities of the formulas: CAM = Grad-CAM on a GAP-linear head; HiResCAM, XGrad-CAM and Shapley-CAM
/// reduce to Grad-CAM when the gradient is constant over each channel and the head is linear (GAP then linear);
/// Layer-CAM = Grad-CAM element-wise for non-negative activations (after a ReLU);</item>
/// <item>otherwise: "identical maps".</item>
/// </list>
/// </summary>
public static class MapCoincidence
{
    /// <summary>Largest per-pixel difference of coinciding maps.</summary>
    public const float Tolerance = 1e-4f;

    /// <summary>One set of coinciding tiles: their labels in tile order, and why they coincide.</summary>
    /// <param name="Labels">Tile labels (at least two), in tile order.</param>
    /// <param name="Reason">Why, in words.</param>
    public sealed record Group(IReadOnlyList<string> Labels, string Reason)
    {
        /// <summary>"a = b = c: reason".</summary>
        public override string ToString() => $"{string.Join(" = ", Labels)}: {Reason}";
    }

    // Pairs of methods whose maps are equal under a condition that holds on common CNN heads.
    private static readonly (string A, string B, string Why)[] s_identities =
    [
        ("cam", "gradcam", "CAM = Grad-CAM on a GAP-linear head"),
        ("gradcam", "hirescam", "gradient constant over each channel (GAP then linear): HiResCAM = Grad-CAM"),
        ("gradcam", "xgradcam", "gradient constant over each channel (GAP then linear): XGrad-CAM = Grad-CAM"),
        ("hirescam", "xgradcam", "gradient constant over each channel (GAP then linear): XGrad-CAM = HiResCAM"),
        ("cam", "hirescam", "gradient constant over each channel (GAP then linear): HiResCAM = CAM"),
        ("cam", "xgradcam", "gradient constant over each channel (GAP then linear): XGrad-CAM = CAM"),
        ("gradcam", "shapleycam", "piecewise-linear head: the Hessian term of Shapley-CAM is 0"),
        ("gradcam-elementwise", "layercam", "non-negative activations: ReLU(g*A) = ReLU(g)*A"),
    ];

    /// <summary>The groups of coinciding tiles among <paramref name="tiles"/> (label, explanation), in the order of
    /// their first tile; tiles that coincide with no other are left out.</summary>
    public static IReadOnlyList<Group> Find(IReadOnlyList<(string Label, Explanation Explanation)> tiles)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        var groups = new List<List<int>>();
        for (int i = 0; i < tiles.Count; i++)
        {
            var group = groups.FirstOrDefault(g => Coincide(tiles[g[0]].Explanation, tiles[i].Explanation));
            if (group != null)
                group.Add(i);
            else
                groups.Add([i]);
        }
        return groups.Where(g => g.Count > 1)
            .Select(g => new Group(g.Select(i => tiles[i].Label).ToList(), Reason(g.Select(i => tiles[i].Explanation).ToList())))
            .ToList();
    }

    /// <summary>
    /// The grid of <paramref name="tiles"/> (<see cref="Grid.Render"/>) that says which tiles coincide: a tile that
    /// repeats an earlier one is labelled "label = first label", and one caption line per group under the tiles gives
    /// the labels and the reason (<see cref="Group.ToString"/>). <paramref name="explanations"/> are the tiles' maps,
    /// in tile order.
    /// </summary>
    public static RgbImage Grid(
        IReadOnlyList<(string Label, RgbImage Image)> tiles, IReadOnlyList<Explanation> explanations,
        out IReadOnlyList<Group> groups)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentNullException.ThrowIfNull(explanations);
        if (tiles.Count != explanations.Count)
            throw new ArgumentException($"{tiles.Count} tiles but {explanations.Count} maps", nameof(explanations));
        groups = Find(tiles.Select((t, i) => (t.Label, explanations[i])).ToList());
        var labels = tiles.Select(t => t.Label).ToArray();
        foreach (var g in groups)
        {
            for (int k = 1; k < g.Labels.Count; k++)
            {
                int i = Array.IndexOf(labels, g.Labels[k]);
                labels[i] = $"{g.Labels[k]} = {g.Labels[0]}";
            }
        }
        return Imaging.Grid.Render(
            tiles.Select((t, i) => (labels[i], t.Image)).ToList(), 0, groups.Select(g => g.ToString()).ToList());
    }

    /// <summary>Whether two maps have the same shape and differ by at most <see cref="Tolerance"/> everywhere.</summary>
    public static bool Coincide(Explanation a, Explanation b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Map.Shape.AsSpan().SequenceEqual(b.Map.Shape))
            return false;
        var x = a.Map.Data;
        var y = b.Map.Data;
        for (int i = 0; i < x.Length; i++)
        {
            if (!(Math.Abs(x[i] - y[i]) <= Tolerance))
                return false;
        }
        return true;
    }

    private const string SingleChannel =
        "Grad-CAM++ = Grad-CAM: the target's gradient reaches one channel of the layer only (e.g. a top-1 channel of a "
        + "pooled embedding as the target), so every gradient method draws that channel's activations";

    private static string Reason(List<Explanation> members)
    {
        foreach (var e in members)
        {
            if (e.Weights is { Length: > 1 } w && w.Count(v => v != 0) == 1)
            {
                int channel = Array.FindIndex(w, v => v != 0);
                return $"the target's gradient reaches channel {channel} of the layer only (e.g. a top-1 channel of a "
                       + "pooled embedding as the target), so every gradient method draws that channel's activations";
            }
        }
        var methods = members.Select(e => e.Method).ToHashSet(StringComparer.Ordinal);
        // Grad-CAM++ weighs channel k by alpha_k ReLU(g_k) with alpha_k = 1 / (2 + sum(A_k) g_k) on a GAP head, Grad-CAM
        // by g_k: the two maps agree only when a single channel carries the (positive) gradient.
        if (methods.Contains("gradcam") && methods.Contains("gradcampp"))
            return SingleChannel;
        var reasons = s_identities.Where(p => methods.Contains(p.A) && methods.Contains(p.B)).Select(p => p.Why).ToList();
        return reasons.Count > 0 ? string.Join("; ", reasons) : "identical maps";
    }
}
