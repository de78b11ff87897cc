using System.CommandLine;
using System.Globalization;
using CamEngine.Imaging;

namespace CamEngine.Cli;

/// <summary>
/// The picture options shared by <c>cam explain</c> and <c>cam eval</c>, all in one place: their declaration
/// (<see cref="AddTo"/>), parsing into <see cref="OverlayOptions"/>, the manifest's settings text, and the picture of
/// one result. A new picture option is added here only.
/// </summary>
internal sealed class OverlayArgs
{
    private readonly Option<string> _colormap;
    private readonly Option<string> _alpha;
    private readonly Option<string> _contour;
    private readonly Option<string> _view;
    private readonly Option<string> _sign;

    private OverlayArgs(string what)
    {
        _colormap = CliOptions.Text("--colormap", "NAME", $"{what}: jet (default) | viridis | turbo | inferno");
        _alpha = CliOptions.Text("--alpha", "A", $"weight of the heatmap over the image{(what == "overlays" ? "" : " in the report")}, 0 to 1 (default 0.5)");
        _contour = CliOptions.Text("--contour", "PCT", "outline the top PCT% of each map (values >= its (100-PCT)th percentile) in white, 2 px; PCT in (0, 100]");
        _view = CliOptions.Text("--view", "V", $"{what}: full (default), the whole photo (at most 1600 px a side) with the map over the model's crop and the crop outlined; crop, the model's crop only");
        _sign = CliOptions.Text("--sign", "S", "absolute | positive | all: pixel-space maps (guided-backprop, saliency, integrated-gradients, deconvnet, smoothgrad, guided-gradcam) drawn as Captum does, summed over channels and clipped at 99% of the attribution mass, in blues, greens or red-white-green (default: all for integrated-gradients, else absolute)");
    }

    /// <summary>Declares the options on <paramref name="command"/>; <paramref name="what"/> names the pictures they
    /// shape in the help (overlays, or the report's overlays).</summary>
    public static OverlayArgs AddTo(Command command, string what = "overlays")
    {
        var args = new OverlayArgs(what);
        command.Options.Add(args._colormap);
        command.Options.Add(args._alpha);
        command.Options.Add(args._contour);
        command.Options.Add(args._view);
        command.Options.Add(args._sign);
        return args;
    }

    public OverlayOptions Parse(ParseResult r)
    {
        string name = r.Get(_colormap, "jet");
        if (!Enum.TryParse<ColormapKind>(name.Trim(), ignoreCase: true, out var colormap) || !Enum.IsDefined(colormap)
            || int.TryParse(name, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
        {
            CliOptions.Choice("--colormap", name, [.. Enum.GetNames<ColormapKind>().Select(n => n.ToLowerInvariant())]);
        }
        float alpha = r.GetFloats(_alpha, 1)?[0] ?? new OverlayOptions().Alpha;
        if (alpha is < 0 or > 1)
            throw new UsageException($"--alpha must lie in [0, 1], got {alpha.ToString(CultureInfo.InvariantCulture)}");
        float contour = r.GetFloats(_contour, 1)?[0] ?? 0;
        if (r.Has(_contour) && contour is <= 0 or > 100)
            throw new UsageException($"--contour must lie in (0, 100], got {contour.ToString(CultureInfo.InvariantCulture)}");
        var view = CliOptions.Choice("--view", r.Get(_view, "full"), "full", "crop") == "crop" ? OverlayView.Crop : OverlayView.Full;
        AttributionSign? sign = r.Get(_sign) is not { } s ? null : CliOptions.Choice("--sign", s, "absolute", "positive", "all") switch
        {
            "absolute" => AttributionSign.Absolute,
            "positive" => AttributionSign.Positive,
            _ => AttributionSign.All,
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

    /// <summary>The input picture a report shows beside the overlays: the whole photo in the full view, else the
    /// model's crop (or the denormalized tensor).</summary>
    public static RgbImage? Input(CamInput input, OverlayOptions options) =>
        options.View == OverlayView.Full && input.Photo is { } photo ? photo : input.Picture;

    /// <summary>The picture of one result: the map over the input's picture (for class-model the synthesized image).</summary>
    public static RgbImage Picture(CamResult result, OverlayOptions options) => result.ToOverlay(options);

    /// <summary>The PNG bytes of <see cref="Picture"/>.</summary>
    public static byte[] Png(CamResult result, OverlayOptions options) => result.EncodeOverlayPng(options);

    /// <summary>The PNG bytes of a grid of results of one image.</summary>
    public static byte[] GridPng(IReadOnlyList<CamResult> results, OverlayOptions options) => CamResult.EncodeGridPng(results, options);
}
