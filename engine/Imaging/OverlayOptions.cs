namespace CamEngine.Imaging;

/// <summary>
/// How an overlay (<see cref="CamResult.ToOverlay(OverlayOptions)"/>) draws a saliency map: the colormap, the heatmap's weight over the image, and an
/// optional contour around the map's top-k% region; the view (whole photo or the model's crop); and how pixel-space
/// attributions are signed and clipped.
/// </summary>
public sealed record OverlayOptions
{
    /// <summary>The defaults: jet, alpha 0.5, no contour, the whole photo, each method's own sign mode.</summary>
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

    /// <summary>Longest side of a <see cref="OverlayView.Full"/> picture: larger photos are scaled down to it.</summary>
    public const int MaxFullViewSide = 1600;

    /// <summary>The whole photo with the model's crop outlined (the default), or only the crop.</summary>
    public OverlayView View { get; init; } = OverlayView.Full;

    /// <summary>The sign mode of pixel-space attributions; null (the default) picks each method's own
    /// (<see cref="AttributionPicture.DefaultSign"/>: integrated gradients <see cref="AttributionSign.All"/>, the
    /// gradient methods <see cref="AttributionSign.Absolute"/>). CAM maps ignore it.</summary>
    public AttributionSign? Sign { get; init; }

    /// <summary>Captum's <c>outlier_perc</c> for pixel-space attributions: values are divided by the smallest
    /// |value| at which the sorted values' running sum reaches (100 - OutlierPercent)% of their total, then clipped
    /// to [-1, 1]. Default 1 (99%); Captum's own default is 2.</summary>
    public float OutlierPercent { get; init; } = 1;
}
