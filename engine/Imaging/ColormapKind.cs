namespace CamEngine.Imaging;

/// <summary>The colormaps an overlay can use (<see cref="OverlayOptions.Colormap"/>); names as matplotlib spells them.</summary>
public enum ColormapKind
{
    /// <summary>matplotlib's 'jet' (the default of pytorch-grad-cam's overlays; not perceptually uniform).</summary>
    Jet,

    /// <summary>matplotlib's 'viridis' (perceptually uniform, dark blue to yellow; CC0).</summary>
    Viridis,

    /// <summary>Google's 'turbo' (a smoother rainbow than jet; Apache-2.0).</summary>
    Turbo,

    /// <summary>matplotlib's 'inferno' (perceptually uniform, black to pale yellow; CC0).</summary>
    Inferno,
}
