namespace CamEngine.Methods;

/// <summary>The methods this version implements, by command-line name.</summary>
public static class MethodCatalog
{
    /// <summary>Every implemented method.</summary>
    public static IReadOnlyList<CamMethod> All { get; } =
    [
        // In DESIGN.md's order of the command-line names.
        new ClassActivationMap(), new GradCam(), new GradCamPlusPlus(), new XGradCam(), new HiResCam(),
        new GradCamElementwise(), new LayerCam(), new ScoreCam(), new SsCam(), new IsCam(), new AblationCam(),
        new EigenCam(), new EigenGradCam(), new KpcaCam(), new FullGrad(), new ShapleyCam(), new FinerCam(),
        new SmoothGradCamPlusPlus(),
        new GuidedBackprop(), new GuidedGradCam(), new Deconvnet(), new Saliency(), new SmoothGrad(),
        new IntegratedGradients(), new ClassModel(),
        // Issue 20: black-box, gradient-free and relevance methods.
        new Fem(), new RandomCam(), new Occlusion(), new Rise(), new ReciproCam(), new DeepFeatureFactorization(), new DeepLift(), new GradientShap(), new Lrp(),
        // Issue 20: vision-transformer methods (they refuse any other model before work).
        new AttentionRollout(), new LeGrad(), new VitReciproCam(),
    ];

    /// <summary>Looks a method up by name; throws <see cref="CamEngineException"/> listing the names otherwise.</summary>
    public static CamMethod Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(m => string.Equals(m.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
               ?? throw new CamEngineException(
                   $"unknown method '{name}'; implemented: {string.Join(", ", All.Select(m => m.Name))} (see `cam methods`)");
    }

    /// <summary>
    /// <paramref name="methods"/> with the settings of <paramref name="text"/> applied: <c>KEY=VALUE[,KEY=VALUE...]</c>,
    /// where KEY is a parameter name (applied to every listed method that has it, e.g. <c>samples=50</c>) or
    /// <c>METHOD.KEY</c> for one method (e.g. <c>sscam.samples=8</c>). Null or blank text changes nothing.
    /// </summary>
    /// <exception cref="CamEngineException">An item is not KEY=VALUE, a key is given twice, no listed method has
    /// the key (the message lists the valid keys of the listed methods), or a value is invalid.</exception>
    public static IReadOnlyList<CamMethod> WithParameters(IReadOnlyList<CamMethod> methods, string? text)
    {
        ArgumentNullException.ThrowIfNull(methods);
        if (string.IsNullOrWhiteSpace(text))
            return methods;
        var perMethod = methods.DistinctBy(m => m.Name).ToDictionary(m => m.Name, _ => new Dictionary<string, string>(StringComparer.Ordinal));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                throw new CamEngineException($"parameter '{item}' is not KEY=VALUE");
            string key = item[..eq].Trim().ToLowerInvariant(), value = item[(eq + 1)..].Trim();
            if (!seen.Add(key))
                throw new CamEngineException($"parameter '{key}' is given twice");
            int dot = key.LastIndexOf('.');
            string? only = dot > 0 ? key[..dot] : null;
            string name = dot > 0 ? key[(dot + 1)..] : key;
            var takers = methods.Where(m => (only == null || m.Name == only) && m.Parameters.Any(p => p.Key == name)).ToList();
            if (takers.Count == 0)
                throw new CamEngineException($"no chosen method has the parameter '{key}'; {ValidKeys(methods)}");
            foreach (var m in takers)
                perMethod[m.Name][name] = value;
        }
        return methods.Select(m => m.WithParameters(perMethod[m.Name])).ToList();
    }

    private static string ValidKeys(IReadOnlyList<CamMethod> methods)
    {
        var with = methods.Where(m => m.Parameters.Count > 0).ToList();
        return with.Count == 0
            ? $"{string.Join(", ", methods.Select(m => m.Name))} take{(methods.Count == 1 ? "s" : "")} no parameters"
            : "valid: " + string.Join("; ", with.Select(m => $"{m.Name}: {string.Join(", ", m.Parameters.Select(p => p.Key))}"));
    }
}
