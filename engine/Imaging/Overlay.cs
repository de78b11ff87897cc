using CamEngine.IO;
using CamEngine.Tensors;
using StbImageWriteSharp;

namespace CamEngine.Imaging;

/// <summary>
/// Renders saliency maps in [0, 1] with the jet <see cref="Colormap"/>: alone, or blended over the image they
/// explain as out = (1 - alpha) * image + alpha * 255 * jet(map), rounded to the nearest byte. PNG output is
/// written atomically.
/// </summary>
public static class Overlay
{
    /// <summary>Default weight of the heatmap in <see cref="Blend"/>.</summary>
    public const float DefaultAlpha = 0.5f;

    /// <summary>Blends the jet colours of <paramref name="map"/> (H, W), or (1, H, W) / (1, 1, H, W), over
    /// <paramref name="image"/>, which must be W x H. Throws <see cref="CamEngineException"/> for NaN/Inf.</summary>
    public static RgbImage Blend(RgbImage image, HostTensor map, float alpha = DefaultAlpha)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(map);
        if (!(alpha >= 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), "alpha must lie in [0, 1]");
        var (h, w) = PlaneSize(map);
        if (h != image.Height || w != image.Width)
            throw new CamEngineException(
                $"map {map.ShapeText} does not match the {image.Width}x{image.Height} image");
        MapOps.EnsureFinite(map.Data, "overlay");
        var jet = Colormap.Jet;
        var dst = new byte[image.Data.Length];
        for (int i = 0; i < h * w; i++)
        {
            int k = 3 * Colormap.Index(map.Data[i]);
            for (int c = 0; c < 3; c++)
                dst[3 * i + c] = ToByte((1 - alpha) * image.Data[3 * i + c] + alpha * 255f * jet[k + c]);
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>The jet colours of <paramref name="map"/> alone (for inputs with no photo), rounded to bytes.</summary>
    public static RgbImage Heatmap(HostTensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var (h, w) = PlaneSize(map);
        MapOps.EnsureFinite(map.Data, "heatmap");
        var jet = Colormap.Jet;
        var dst = new byte[h * w * 3];
        for (int i = 0; i < h * w; i++)
        {
            int k = 3 * Colormap.Index(map.Data[i]);
            for (int c = 0; c < 3; c++)
                dst[3 * i + c] = ToByte(255f * jet[k + c]);
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>Encodes <paramref name="image"/> as PNG.</summary>
    public static byte[] EncodePng(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(image.Data, image.Width, image.Height, ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    /// <summary>Writes <paramref name="image"/> as a PNG file: encoded in memory, written to a temporary file in
    /// the same folder, then moved over <paramref name="path"/>; the temporary file is deleted on failure.</summary>
    public static void WritePng(RgbImage image, string path)
    {
        var png = EncodePng(image);
        AtomicFile.Write(path, s => s.Write(png));
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
