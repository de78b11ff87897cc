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
    ];

    /// <summary>Looks a method up by name; throws <see cref="CamEngineException"/> listing the names otherwise.</summary>
    public static CamMethod Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(m => string.Equals(m.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
               ?? throw new CamEngineException(
                   $"unknown method '{name}'; implemented: {string.Join(", ", All.Select(m => m.Name))} (see `cam methods`)");
    }
}
