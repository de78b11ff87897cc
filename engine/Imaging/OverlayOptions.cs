namespace CamEngine.Imaging;

/// <summary>
/// How an overlay (<see cref="CamResult.ToOverlay(OverlayOptions)"/>) draws a saliency map: the colormap, the heatmap's weight over the image, and an
/// optional contour around the map's top-k% region. The defaults (jet, alpha 0.5, no contour) are the overlays
/// CamEngine has always written.
/// </summary>
public sealed record OverlayOptions
{
    /// <summary>The defaults: jet, alpha 0.5, no contour.</summary>
    public static OverlayOptions Default { get; } = new();

    /// <summary>The colormap of the heatmap.</summary>
    public ColormapKind Colormap { get; init; } = ColormapKind.Jet;

    /// <summary>Weight of the heatmap in [0, 1]: out = (1 - alpha) * image + alpha * 255 * colormap(map).</summary>
    public float Alpha { get; init; } = Overlay.DefaultAlpha;

    /// <summary>k of the top-k% contour, in (0, 100]; 0 draws no contour. The region is every pixel whose map
    /// value is at least the (100 - k)th percentile of the map.</summary>
    public float ContourPercent { get; init; }

    /// <summary>Colour of the contour pixels (default white: jet, viridis and turbo have no white, so it stands
    /// out on every colormap and on most photos).</summary>
    public (byte R, byte G, byte B) ContourColor { get; init; } = (255, 255, 255);

    /// <summary>Contour width in pixels: 1 draws the region's own boundary pixels; 2 adds the outside pixels
    /// next to them, so the line straddles the boundary.</summary>
    public int ContourWidth { get; init; } = 2;
}
