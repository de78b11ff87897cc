using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>
/// The picture of one explanation, as <c>cam explain</c> writes it and <see cref="CamResult.ToOverlay(OverlayOptions)"/>
/// returns it:
/// <list type="bullet">
/// <item>class-model: the synthesized image, deprocessed with the model's own preprocessing
/// (<see cref="ClassModel.ToPicture"/>), at input resolution, in either view;</item>
/// <item>pixel-space attributions (<see cref="AttributionPicture.PixelSpaceMethods"/>): their signed (C, H, W) raw
/// drawn as Captum does (<see cref="AttributionPicture"/>) with the options' sign mode or the method's own;</item>
/// <item>factorization methods (Deep Feature Factorization, <see cref="Explanation.Concepts"/>): one colour per
/// concept with its top classes (<see cref="ConceptOverlay"/>);</item>
/// <item>every other map: its colormap blended over the picture (<see cref="Overlay.Blend(RgbImage, HostTensor, OverlayOptions)"/>).</item>
/// </list>
/// <see cref="OverlayView.Full"/> paints the map over the model's crop inside the whole photo and outlines the crop
/// (<see cref="PhotoView.Render"/>); <see cref="OverlayView.Crop"/>, or an input that is not a photo, paints over the
/// crop picture alone; with no picture at all, the colours alone at map resolution.
/// </summary>
internal static class ExplanationPicture
{
    /// <summary>The picture of <paramref name="e"/> over <paramref name="crop"/> (the model's crop at display
    /// resolution, or null) or <paramref name="photo"/> (the whole photo, or null), as <paramref name="options"/> say;
    /// <paramref name="preprocessing"/> deprocesses the class-model image (null: drawn as a map).</summary>
    public static RgbImage Draw(
        Explanation e, RgbImage? crop, PhotoView? photo, Preprocessing? preprocessing, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(options);
        if (e.Method == "class-model" && preprocessing != null && e.Raw.Shape.Length == 3)
            return ClassModel.ToPicture(e.Raw, preprocessing);
        if (e.Concepts is { Count: > 0 })
        {
            // Deep Feature Factorization: one colour per concept, labelled with its top classes.
            return Paint(crop, photo, options, bg => ConceptOverlay.Draw(bg, e),
                () => ConceptOverlay.Draw(new RgbImage(e.Map.Shape[^1], e.Map.Shape[^2]), e));
        }
        if (IsAttribution(e))
        {
            var sign = options.Sign ?? AttributionPicture.DefaultSign(e.Method);
            var values = AttributionPicture.Normalize(e.Raw, sign, options.OutlierPercent);
            return Paint(crop, photo, options, bg => AttributionPicture.Blend(bg, values, sign, options.Alpha),
                () => AttributionPicture.Colors(values, sign));
        }
        return Map(e.Map, crop, photo, options);
    }

    /// <summary>A [0, 1] map (H, W) in the options' colormap over the view's picture (the CAM drawing of
    /// <see cref="Draw"/>).</summary>
    public static RgbImage Map(HostTensor map, RgbImage? crop, PhotoView? photo, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        return Paint(crop, photo, options, bg => Overlay.Blend(bg, Resize.Bilinear(map, bg.Height, bg.Width), options),
            () => Overlay.Heatmap(map, options));
    }

    /// <summary>Whether <paramref name="e"/> is drawn as a signed pixel-space attribution: a method of
    /// <see cref="AttributionPicture.PixelSpaceMethods"/> whose raw is (C, H, W) over the map's H x W.</summary>
    public static bool IsAttribution(Explanation e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var r = e.Raw.Shape;
        var m = e.Map.Shape;
        return AttributionPicture.PixelSpaceMethods.Contains(e.Method)
               && r.Length == 3 && r[1] == m[^2] && r[2] == m[^1];
    }

    /// <summary>The size of <see cref="Draw"/>'s pictures for maps (not the class-model image) in this view:
    /// the whole photo's, the crop picture's, or null when neither exists.</summary>
    public static (int Width, int Height)? Size(RgbImage? crop, PhotoView? photo, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.View == OverlayView.Full && photo != null)
            return (photo.Photo.Width, photo.Photo.Height);
        return crop is null ? null : (crop.Width, crop.Height);
    }

    /// <summary>Longest side of a grid tile: a grid of 26 whole photos at 1600 pixels would be a 10,000-pixel sheet.</summary>
    public const int MaxTileSide = 512;

    /// <summary>The size grid tiles of this view share: <see cref="Size"/> scaled down to at most
    /// <see cref="MaxTileSide"/> pixels on the longer side (sides rounded, at least 1); null when there is no picture.</summary>
    public static (int Width, int Height)? TileSize(RgbImage? crop, PhotoView? photo, OverlayOptions options)
    {
        if (Size(crop, photo, options) is not { } size)
            return null;
        int longest = Math.Max(size.Width, size.Height);
        if (longest <= MaxTileSide)
            return size;
        double f = (double)MaxTileSide / longest;
        return (Math.Max(1, (int)Math.Round(size.Width * f)), Math.Max(1, (int)Math.Round(size.Height * f)));
    }

    private static RgbImage Paint(
        RgbImage? crop, PhotoView? photo, OverlayOptions options, Func<RgbImage, RgbImage> over, Func<RgbImage> alone)
    {
        if (options.View == OverlayView.Full && photo != null)
            return photo.Render(over);
        return crop is null ? alone() : over(crop);
    }
}
