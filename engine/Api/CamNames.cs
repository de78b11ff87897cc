using CamEngine.Methods;

namespace CamEngine;

/// <summary>
/// Names as people type them: method names with the class names of pytorch-grad-cam and TorchCAM as aliases, class
/// labels as targets, and "did you mean" suggestions for every name a user can misspell (commands, options,
/// methods, layers, labels). The command line and library callers share these rules.
/// </summary>
public static class CamNames
{
    // pytorch-grad-cam (pytorch_grad_cam/__init__.py) and TorchCAM (torchcam/methods) class names whose folded form
    // (lower case, without '-', '_' and spaces) differs from ours; the others fold to our names already
    // (GradCAM -> gradcam, KPCA_CAM -> kpcacam, GradCAMElementWise -> gradcam-elementwise).
    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal)
    {
        ["gradcamplusplus"] = "gradcampp",
        ["smoothgradcamplusplus"] = "smoothgradcampp",
        ["guidedbackproprelumodel"] = "guided-backprop",
        ["vanillagradient"] = "saliency",
        ["vanillagradients"] = "saliency",
    };

    /// <summary>The aliases beyond case and punctuation: folded alias to method name.</summary>
    public static IReadOnlyDictionary<string, string> MethodAliases => s_aliases;

    /// <summary>
    /// The method a name stands for: our name (<c>gradcampp</c>), or a pytorch-grad-cam / TorchCAM class name
    /// (<c>GradCAMPlusPlus</c>, <c>GradCAMpp</c>, <c>KPCA_CAM</c>, <c>SmoothGradCAMpp</c>...), compared without case,
    /// hyphens, underscores or spaces.
    /// </summary>
    /// <param name="name">The name as typed.</param>
    /// <exception cref="CamEngineException">No method has that name; the message suggests the nearest one.</exception>
    public static CamMethod ResolveMethod(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string folded = Fold(name);
        if (s_aliases.TryGetValue(folded, out var alias))
            folded = Fold(alias);
        foreach (var m in MethodCatalog.All)
        {
            if (Fold(m.Name) == folded)
                return m;
        }
        string? near = Suggest(name, MethodCatalog.All.Select(m => m.Name).Concat(s_aliases.Keys));
        if (near != null && s_aliases.TryGetValue(near, out var target))
            near = target;
        throw new CamEngineException(near != null
            ? $"unknown method '{name}'; did you mean '{near}'? (see `cam methods`)"
            : $"unknown method '{name}'; implemented: {string.Join(", ", MethodCatalog.All.Select(m => m.Name))} (see `cam methods`)");
    }

    /// <summary>True when <paramref name="names"/> is the single word <c>all</c> (any case, spaces and stray commas
    /// ignored): every method.</summary>
    public static bool IsAll(string names) =>
        names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) is [var one]
        && one.Equals("all", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>all</c> (every method), or comma-separated names as <see cref="ResolveMethod"/> reads them,
    /// duplicates dropped, in the order given.</summary>
    /// <param name="names">The list as typed.</param>
    /// <exception cref="CamEngineException">The list is empty or names an unknown method.</exception>
    public static IReadOnlyList<CamMethod> ResolveMethods(string names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var parts = names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
            throw new CamEngineException("no method named; see `cam methods`");
        if (IsAll(names))
            return MethodCatalog.All;
        return parts.Select(ResolveMethod).DistinctBy(m => m.Name).ToList();
    }

    /// <summary>
    /// The class index of a label: the label equal to <paramref name="name"/> ignoring case (and surrounding
    /// spaces).
    /// </summary>
    /// <param name="name">The label as typed.</param>
    /// <param name="labels">The model's labels, in class order.</param>
    /// <exception cref="CamEngineException">No label matches (the message suggests the nearest), or several do (the
    /// message lists them with their indices).</exception>
    public static int ResolveLabel(string name, IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(labels);
        string want = name.Trim();
        var matches = Enumerable.Range(0, labels.Count)
            .Where(i => string.Equals(labels[i].Trim(), want, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 1)
            return matches[0];
        if (matches.Count > 1)
        {
            throw new CamEngineException(
                $"label '{name}' is ambiguous: it matches {string.Join(", ", matches.Select(i => $"{i} ({labels[i]})"))}; give the class index");
        }
        string? near = Suggest(want, labels);
        throw new CamEngineException(near != null
            ? $"unknown label '{name}'; did you mean '{near}'?"
            : $"unknown label '{name}': the model's {labels.Count} labels do not include it");
    }

    /// <summary>
    /// The candidate nearest to <paramref name="input"/> by edit distance (insertions, deletions, substitutions
    /// and swaps of neighbours, ignoring case), when it is close enough to be a typo: at most a third of the
    /// longer word, and at least 1; null otherwise. Ties go to the first candidate.
    /// </summary>
    /// <param name="input">What was typed.</param>
    /// <param name="candidates">The valid names.</param>
    public static string? Suggest(string input, IEnumerable<string> candidates)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(candidates);
        string a = input.Trim().ToLowerInvariant();
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            string b = c.Trim().ToLowerInvariant();
            if (b.Length == 0 || b == a)
                continue;
            int d = Distance(a, b);
            int limit = Math.Max(1, Math.Max(a.Length, b.Length) / 3);
            if (d <= limit && d < bestDistance)
            {
                best = c;
                bestDistance = d;
            }
        }
        return best;
    }

    /// <summary>Lower case without '-', '_' and spaces: the form method names are compared in.</summary>
    internal static string Fold(string name) =>
        string.Concat(name.Trim().ToLowerInvariant().Where(ch => ch is not ('-' or '_' or ' ')));

    // Optimal string alignment distance (Levenshtein with adjacent transpositions).
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
            d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++)
            d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    v = Math.Min(v, d[i - 2, j - 2] + 1);
                d[i, j] = v;
            }
        }
        return d[a.Length, b.Length];
    }
}
