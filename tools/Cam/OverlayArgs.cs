using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Cli;

/// <summary>
/// The overlay options shared by <c>cam explain</c> and <c>cam eval</c> (--colormap, --alpha, --contour): parsing,
/// the manifest's settings text, and the picture of one map over its input.
/// </summary>
internal static class OverlayArgs
{
    /// <summary>The option names, for <see cref="Args.Parse"/>.</summary>
    public static readonly string[] Options = ["--colormap", "--alpha", "--contour"];

    public static OverlayOptions Parse(Args a)
    {
        ColormapKind colormap;
        try
        {
            colormap = Colormap.Parse(a.Get("--colormap", "jet"));
        }
        catch (CamEngineException e)
        {
            throw new UsageException(e.Message);
        }
        float alpha = a.GetFloats("--alpha", 1)?[0] ?? Overlay.DefaultAlpha;
        if (alpha is < 0 or > 1)
            throw new UsageException($"--alpha must lie in [0, 1], got {alpha.ToString(CultureInfo.InvariantCulture)}");
        float contour = a.GetFloats("--contour", 1)?[0] ?? 0;
        if (a.Has("--contour") && contour is <= 0 or > 100)
            throw new UsageException($"--contour must lie in (0, 100], got {contour.ToString(CultureInfo.InvariantCulture)}");
        return new OverlayOptions { Colormap = colormap, Alpha = alpha, ContourPercent = contour };
    }

    /// <summary>colormap, alpha and contour as the manifest records them.</summary>
    public static IEnumerable<(string Key, string Value)> Settings(OverlayOptions o)
    {
        yield return ("colormap", o.Colormap.ToString().ToLowerInvariant());
        yield return ("alpha", o.Alpha.ToString("G", CultureInfo.InvariantCulture));
        yield return ("contour", o.ContourPercent == 0 ? "none" : o.ContourPercent.ToString("G", CultureInfo.InvariantCulture) + "%");
    }

    /// <summary>Ordered settings as the manifest's dictionary (insertion order is kept).</summary>
    public static Dictionary<string, string> Table(IEnumerable<(string Key, string Value)> settings)
    {
        var table = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in settings)
            table[key] = value;
        return table;
    }

    /// <summary>The map over the image's display picture (the model's crop, map resized to it), or the colormapped
    /// map alone for an input without a picture (a .npy tensor).</summary>
    public static RgbImage Picture(InputImage image, HostTensor map, OverlayOptions options) =>
        image.Display is { } display
            ? Overlay.Blend(display, Resize.Bilinear(map, display.Height, display.Width), options)
            : Overlay.Heatmap(map, options);
}
