using CamEngine.IO;
using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>
/// Renders saliency maps in [0, 1] with a <see cref="Colormap"/> (jet unless <see cref="OverlayOptions"/> says
/// otherwise): alone, or blended over the image they explain as
/// out = (1 - alpha) * image + alpha * 255 * colormap(map), rounded to the nearest byte; optionally with the
/// contour of the map's top-k% region drawn over it. PNG output is written atomically.
/// </summary>
internal static class Overlay
{
    /// <summary>Default weight of the heatmap in <see cref="Blend(RgbImage, HostTensor, float)"/>.</summary>
    public const float DefaultAlpha = 0.5f;

    /// <summary>Blends the jet colours of <paramref name="map"/> (H, W), or (1, H, W) / (1, 1, H, W), over
    /// <paramref name="image"/>, which must be W x H. Throws <see cref="CamEngineException"/> for NaN/Inf.</summary>
    public static RgbImage Blend(RgbImage image, HostTensor map, float alpha = DefaultAlpha) =>
        Blend(image, map, OverlayOptions.Default with { Alpha = alpha });

    /// <summary>Blends the colours of <paramref name="map"/> (H, W), or (1, H, W) / (1, 1, H, W), over
    /// <paramref name="image"/>, which must be W x H, with the colormap, alpha and contour of
    /// <paramref name="options"/>. Throws <see cref="CamEngineException"/> for NaN/Inf.</summary>
    public static RgbImage Blend(RgbImage image, HostTensor map, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        float alpha = options.Alpha;
        if (!(alpha >= 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), "alpha must lie in [0, 1]");
        var (h, w) = PlaneSize(map);
        if (h != image.Height || w != image.Width)
            throw new CamEngineException(
                $"map {map.ShapeText} does not match the {image.Width}x{image.Height} image");
        MapOps.EnsureFinite(map.Data, "overlay");
        var table = Colormap.Table(options.Colormap);
        var dst = new byte[image.Data.Length];
        for (int i = 0; i < h * w; i++)
        {
            int k = 3 * Colormap.Index(map.Data[i]);
            for (int c = 0; c < 3; c++)
                dst[3 * i + c] = ToByte((1 - alpha) * image.Data[3 * i + c] + alpha * 255f * table[k + c]);
        }
        var result = new RgbImage(w, h, dst);
        DrawContour(result, map, options);
        return result;
    }

    /// <summary>The jet colours of <paramref name="map"/> alone (for inputs with no photo), rounded to bytes.</summary>
    public static RgbImage Heatmap(HostTensor map) => Heatmap(map, OverlayOptions.Default);

    /// <summary>The colours of <paramref name="map"/> alone (for inputs with no photo) in the colormap of
    /// <paramref name="options"/>, rounded to bytes, with its contour if it asks for one (alpha is not used).</summary>
    public static RgbImage Heatmap(HostTensor map, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        var (h, w) = PlaneSize(map);
        MapOps.EnsureFinite(map.Data, "heatmap");
        var table = Colormap.Table(options.Colormap);
        var dst = new byte[h * w * 3];
        for (int i = 0; i < h * w; i++)
        {
            int k = 3 * Colormap.Index(map.Data[i]);
            for (int c = 0; c < 3; c++)
                dst[3 * i + c] = ToByte(255f * table[k + c]);
        }
        var result = new RgbImage(w, h, dst);
        DrawContour(result, map, options);
        return result;
    }

    /// <summary>
    /// The (100 - <paramref name="percent"/>)th percentile of <paramref name="values"/>, interpolated linearly
    /// between the two nearest ranks as numpy's default <c>np.percentile</c> does: sorted s, rank
    /// r = q / 100 * (n - 1), s[floor r] + (s[ceil r] - s[floor r]) * (r - floor r). Values at or above it form
    /// the top-k% region.
    /// </summary>
    public static float TopThreshold(ReadOnlySpan<float> values, float percent)
    {
        if (values.IsEmpty)
            throw new ArgumentException("the map is empty", nameof(values));
        if (!(percent > 0 && percent <= 100))
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "the top-k% contour needs k in (0, 100]");
        var sorted = values.ToArray();
        Array.Sort(sorted);
        double rank = (100.0 - percent) / 100.0 * (sorted.Length - 1);
        int lo = (int)Math.Floor(rank), hi = Math.Min(lo + 1, sorted.Length - 1);
        return (float)(sorted[lo] + (sorted[hi] - (double)sorted[lo]) * (rank - lo));
    }

    /// <summary>
    /// The contour of the top-<paramref name="percent"/>% region of <paramref name="map"/> (H, W) as a row-major
    /// H x W mask. Width 1: the region's pixels with a 4-neighbour outside it. Width 2: those and the outside
    /// pixels with a 4-neighbour inside it. The image border is not a boundary: a region touching the edge stays
    /// open there, and a region covering the whole map has no contour.
    /// </summary>
    public static bool[] Contour(HostTensor map, float percent, int width = 2)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (width is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(width), width, "the contour is 1 or 2 pixels wide");
        var (h, w) = PlaneSize(map);
        MapOps.EnsureFinite(map.Data, "contour");
        float threshold = TopThreshold(map.Data.AsSpan(0, h * w), percent);
        var inside = new bool[h * w];
        for (int i = 0; i < h * w; i++)
            inside[i] = map.Data[i] >= threshold;
        var contour = new bool[h * w];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (!inside[i] && width == 1)
                    continue;
                bool differs = (x > 0 && inside[i - 1] != inside[i]) || (x + 1 < w && inside[i + 1] != inside[i])
                               || (y > 0 && inside[i - w] != inside[i]) || (y + 1 < h && inside[i + w] != inside[i]);
                contour[i] = differs;
            }
        }
        return contour;
    }

    /// <summary>Encodes <paramref name="image"/> as PNG.</summary>
    public static byte[] EncodePng(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return PngEncoder.Encode(image.Data, image.Width, image.Height);
    }

    /// <summary>Writes <paramref name="image"/> as a PNG file: encoded in memory, written to a temporary file in
    /// the same folder, then moved over <paramref name="path"/>; the temporary file is deleted on failure.</summary>
    public static void WritePng(RgbImage image, string path)
    {
        var png = EncodePng(image);
        AtomicFile.Write(path, s => s.Write(png));
    }

    private static void DrawContour(RgbImage image, HostTensor map, OverlayOptions options)
    {
        if (options.ContourPercent == 0)
            return;
        var contour = Contour(map, options.ContourPercent, options.ContourWidth);
        var (r, g, b) = options.ContourColor;
        for (int i = 0; i < contour.Length; i++)
        {
            if (!contour[i])
                continue;
            image.Data[3 * i] = r;
            image.Data[3 * i + 1] = g;
            image.Data[3 * i + 2] = b;
        }
    }

    private static (int H, int W) PlaneSize(HostTensor map)
    {
        var s = map.Shape;
        bool ok = s.Length >= 2 && s.Take(s.Length - 2).All(d => d == 1) && s[^1] > 0 && s[^2] > 0;
        if (!ok)
            throw new CamEngineException($"expected a map of shape (H, W), got {map.ShapeText}");
        return (s[^2], s[^1]);
    }

    private static byte ToByte(float v) => (byte)Math.Clamp(MathF.Round(v, MidpointRounding.AwayFromZero), 0f, 255f);
}
