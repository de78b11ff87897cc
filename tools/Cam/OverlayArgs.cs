using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Cli;

/// <summary>
/// The overlay options shared by <c>cam explain</c> and <c>cam eval</c> (--colormap, --alpha, --contour, --view,
/// --sign): parsing, the manifest's settings text, and the picture of one map over its input.
/// </summary>
internal static class OverlayArgs
{
    /// <summary>The option names, for <see cref="Args.Parse"/>.</summary>
    public static readonly string[] Options = ["--colormap", "--alpha", "--contour", "--view", "--sign"];

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
        var view = a.Get("--view") is not { } v ? OverlayView.Full : v.Trim().ToLowerInvariant() switch
        {
            "full" => OverlayView.Full,
            "crop" => OverlayView.Crop,
            _ => throw new UsageException($"unknown view '{v}': use full or crop"),
        };
        AttributionSign? sign = a.Get("--sign") is not { } sg ? null : sg.Trim().ToLowerInvariant() switch
        {
            "absolute" or "absolute_value" => AttributionSign.Absolute,
            "positive" => AttributionSign.Positive,
            "all" => AttributionSign.All,
            _ => throw new UsageException($"unknown sign '{sg}': use absolute, positive or all"),
        };
        return new OverlayOptions { Colormap = colormap, Alpha = alpha, ContourPercent = contour, View = view, Sign = sign };
    }

    /// <summary>colormap, alpha and contour as the manifest records them.</summary>
    public static IEnumerable<(string Key, string Value)> Settings(OverlayOptions o)
    {
        yield return ("colormap", o.Colormap.ToString().ToLowerInvariant());
        yield return ("alpha", o.Alpha.ToString("G", CultureInfo.InvariantCulture));
        yield return ("contour", o.ContourPercent == 0 ? "none" : o.ContourPercent.ToString("G", CultureInfo.InvariantCulture) + "%");
        yield return ("view", o.View.ToString().ToLowerInvariant());
        yield return ("sign", o.Sign?.ToString().ToLowerInvariant() ?? "per method");
    }

    /// <summary>Ordered settings as the manifest's dictionary (insertion order is kept).</summary>
    public static Dictionary<string, string> Table(IEnumerable<(string Key, string Value)> settings)
    {
        var table = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in settings)
            table[key] = value;
        return table;
    }

    /// <summary>The map over the image in the options' view (the whole photo with the crop outlined, or the model's
    /// crop), or the colormapped map alone for an input without a picture.</summary>
    public static RgbImage Picture(InputImage image, HostTensor map, OverlayOptions options) =>
        ExplanationPicture.Map(map, image.Display, image.Photo, options);

    /// <summary>The picture of one explanation (<see cref="ExplanationPicture.Draw"/>): CAM maps as above, pixel-space
    /// attributions in the options' sign mode, the class-model image deprocessed with <paramref name="pre"/>.</summary>
    public static RgbImage Picture(InputImage image, Methods.Explanation e, OverlayOptions options, Model.Preprocessing pre) =>
        ExplanationPicture.Draw(e, image.Display, image.Photo, pre, options);

    /// <summary>The grid of one image's tiles, saying which tiles coincide and why (<see cref="MapCoincidence.Grid"/>);
    /// each group is also printed as a note.</summary>
    public static RgbImage Grid(
        IReadOnlyList<(string, RgbImage)> tiles, IReadOnlyList<Methods.Explanation> maps, string stem, TextWriter stdout)
    {
        var grid = MapCoincidence.Grid(tiles, maps, out var groups);
        foreach (var g in groups)
            stdout.WriteLine($"note: {stem}: identical tiles {g}");
        return grid;
    }

    /// <summary>The input picture a report shows beside the overlays: the whole photo in the full view, else the
    /// model's crop.</summary>
    public static RgbImage? Input(InputImage image, OverlayOptions options) =>
        options.View == OverlayView.Full && image.Photo is { } photo ? photo.Photo : image.Display;

    /// <summary>A grid tile: <paramref name="picture"/> scaled to the size of the image's map pictures in this view,
    /// at most 512 pixels a side (the class-model image has the model's input size), so that all tiles of an image
    /// match.</summary>
    public static RgbImage Tile(RgbImage picture, InputImage image, OverlayOptions options) =>
        ExplanationPicture.TileSize(image.Display, image.Photo, options) is { } size
        && (picture.Width, picture.Height) != size
            ? Resize.ImageBilinear(picture, size.Width, size.Height)
            : picture;
}
