using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>
/// Pictures of pixel-space attributions (the signed (C, H, W) <c>Raw</c> of guided-backprop, saliency,
/// integrated-gradients, deconvnet, smoothgrad and guided-gradcam) as Captum's <c>visualize_image_attr</c> draws a
/// <c>blended_heat_map</c> (captum/attr/_utils/visualization.py, as read):
/// <list type="number">
/// <item>sum over channels: s = sum_c raw[c];</item>
/// <item>by <see cref="AttributionSign"/>: Absolute takes |s|, Positive max(s, 0), All keeps s;</item>
/// <item>threshold t = Captum's <c>_cumulative_sum_threshold</c> of |s| at (100 - outlier) percent: sort the values
/// ascending, take the first whose running sum reaches (100 - outlier)% of the total (<see cref="Threshold"/>);</item>
/// <item>v = clip(s / t, -1, 1) (all 0 when t is 0);</item>
/// <item>colours: Absolute in matplotlib's "Blues", Positive in "Greens" (v in [0, 1]), All in the diverging
/// red-white-green map over [-1, 1] (Captum's <c>LinearSegmentedColormap.from_list("RdWhGn", ["red", "white",
/// "green"])</c>); each a 256-entry table looked up as matplotlib does;</item>
/// <item>blended over the photo in grey (the mean of R, G, B, as Captum shows the image with <c>cmap="gray"</c>):
/// out = (1 - alpha) * grey + alpha * 255 * colour, alpha 0.5 as Captum's <c>alpha_overlay</c>.</item>
/// </list>
/// Blues and Greens are Cynthia Brewer's ColorBrewer sequential schemes (9 classes, Apache-2.0), which matplotlib
/// interpolates linearly into 256 entries.
/// </summary>
internal static class AttributionPicture
{
    /// <summary>The methods whose raw output is a pixel-space attribution with a sign (C, H, W).</summary>
    public static IReadOnlySet<string> PixelSpaceMethods { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "guided-backprop", "saliency", "integrated-gradients", "deconvnet", "smoothgrad", "guided-gradcam",
        "deeplift", "gradientshap", "lrp",
    };

    /// <summary>
    /// Each method's own sign mode. Integrated gradients, DeepLIFT, GradientSHAP and LRP: <see cref="AttributionSign.All"/>,
    /// because their attributions add up to the score difference from the baseline or to the score (completeness,
    /// conservation), so a negative value is evidence against the class. Saliency, SmoothGrad, guided backprop, deconvnet and guided Grad-CAM: <see cref="AttributionSign.Absolute"/>,
    /// because their values are gradients, whose sign says which way a pixel would move the score rather than
    /// whether it supports the class (Captum's <c>Saliency</c> itself returns |gradient| by default).
    /// </summary>
    public static AttributionSign DefaultSign(string method) =>
        method is "integrated-gradients" or "deeplift" or "gradientshap" or "lrp" ? AttributionSign.All : AttributionSign.Absolute;

    /// <summary>Captum's cumulative-sum threshold of non-negative <paramref name="values"/>: the first sorted value
    /// (ascending) at which the running sum reaches <paramref name="percentile"/>% of the total. Sums in double.</summary>
    public static float Threshold(ReadOnlySpan<float> values, float percentile)
    {
        if (values.IsEmpty)
            throw new ArgumentException("no values", nameof(values));
        if (!(percentile >= 0 && percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "the percentile lies in [0, 100]");
        var sorted = values.ToArray();
        Array.Sort(sorted);
        double total = 0;
        foreach (float v in sorted)
            total += v;
        double goal = total * 0.01 * percentile, sum = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            sum += sorted[i];
            if (sum >= goal)
                return sorted[i];
        }
        return sorted[^1];
    }

    /// <summary>Steps 1 to 4: the (H, W) values in [-1, 1] (or [0, 1] for Absolute and Positive) of a (C, H, W)
    /// attribution <paramref name="raw"/> (a leading 1 is allowed).</summary>
    public static HostTensor Normalize(HostTensor raw, AttributionSign sign, float outlierPercent)
    {
        ArgumentNullException.ThrowIfNull(raw);
        if (!(outlierPercent >= 0 && outlierPercent < 100))
            throw new ArgumentOutOfRangeException(nameof(outlierPercent), outlierPercent, "the outlier percentage lies in [0, 100)");
        var s = raw.Shape;
        if (s.Length < 3 || s.Take(s.Length - 3).Any(d => d != 1))
            throw new CamEngineException($"expected a (C, H, W) attribution, got {raw.ShapeText}");
        int c = s[^3], h = s[^2], w = s[^1], plane = h * w;
        MapOps.EnsureFinite(raw.Data, "attribution");
        var sum = new float[plane];
        for (int k = 0; k < c; k++)
        {
            for (int j = 0; j < plane; j++)
                sum[j] += raw.Data[k * plane + j];
        }
        var magnitude = new float[plane];
        for (int j = 0; j < plane; j++)
        {
            sum[j] = sign switch
            {
                AttributionSign.Absolute => Math.Abs(sum[j]),
                AttributionSign.Positive => Math.Max(sum[j], 0f),
                _ => sum[j],
            };
            magnitude[j] = Math.Abs(sum[j]);
        }
        float t = Threshold(magnitude, 100 - outlierPercent);
        for (int j = 0; j < plane; j++)
            sum[j] = t > 0 ? Math.Clamp(sum[j] / t, -1f, 1f) : 0f;
        return new HostTensor([h, w], sum);
    }

    /// <summary>Steps 5 and 6: <paramref name="values"/> (H, W) from <see cref="Normalize"/>, resized to
    /// <paramref name="background"/>'s size if needed (bilinear), coloured and blended over it in grey.</summary>
    public static RgbImage Blend(RgbImage background, HostTensor values, AttributionSign sign, float alpha)
    {
        ArgumentNullException.ThrowIfNull(background);
        ArgumentNullException.ThrowIfNull(values);
        if (!(alpha >= 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must lie in [0, 1]");
        var v = values.Shape[^2] == background.Height && values.Shape[^1] == background.Width
            ? values
            : Resize.Bilinear(values, background.Height, background.Width);
        var table = Table(sign);
        var src = background.Data;
        var dst = new byte[src.Length];
        for (int i = 0; i < background.Width * background.Height; i++)
        {
            float grey = (src[3 * i] + src[3 * i + 1] + src[3 * i + 2]) / 3f;
            int k = 3 * Index(v.Data[i], sign);
            for (int ch = 0; ch < 3; ch++)
                dst[3 * i + ch] = ToByte((1 - alpha) * grey + alpha * 255f * table[k + ch]);
        }
        return new RgbImage(background.Width, background.Height, dst);
    }

    /// <summary>The coloured values alone, for an input with no picture.</summary>
    public static RgbImage Colors(HostTensor values, AttributionSign sign)
    {
        ArgumentNullException.ThrowIfNull(values);
        int h = values.Shape[^2], w = values.Shape[^1];
        var table = Table(sign);
        var dst = new byte[h * w * 3];
        for (int i = 0; i < h * w; i++)
        {
            int k = 3 * Index(values.Data[i], sign);
            for (int ch = 0; ch < 3; ch++)
                dst[3 * i + ch] = ToByte(255f * table[k + ch]);
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>The table entry of value <paramref name="v"/>: v over [0, 1], or (v + 1) / 2 for the diverging map.</summary>
    public static int Index(float v, AttributionSign sign) =>
        Colormap.Index(sign == AttributionSign.All ? (v + 1) / 2 : v);

    /// <summary>The 256 x 3 colour table (R, G, B in [0, 1]) of a sign mode.</summary>
    public static ReadOnlySpan<float> Table(AttributionSign sign) => sign switch
    {
        AttributionSign.Absolute => s_blues,
        AttributionSign.Positive => s_greens,
        AttributionSign.All => s_redWhiteGreen,
        _ => throw new ArgumentOutOfRangeException(nameof(sign), sign, "unknown sign mode"),
    };

    // ColorBrewer 9-class sequential schemes, light to dark, and matplotlib's named colours red, white and green
    // (green is #008000).
    private static readonly float[] s_blues = FromList(
        [0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6, 0x4292c6, 0x2171b5, 0x08519c, 0x08306b]);
    private static readonly float[] s_greens = FromList(
        [0xf7fcf5, 0xe5f5e0, 0xc7e9c0, 0xa1d99b, 0x74c476, 0x41ab5d, 0x238b45, 0x006d2c, 0x00441b]);
    private static readonly float[] s_redWhiteGreen = FromList([0xff0000, 0xffffff, 0x008000]);

    /// <summary>matplotlib's <c>LinearSegmentedColormap.from_list</c> with N = 256: the colours evenly spaced on
    /// [0, 1], entry i the linear interpolation at i / 255.</summary>
    private static float[] FromList(int[] colors)
    {
        var table = new float[Colormap.Size * 3];
        int segments = colors.Length - 1;
        for (int i = 0; i < Colormap.Size; i++)
        {
            double x = i / (double)(Colormap.Size - 1) * segments;
            int k = Math.Min((int)x, segments - 1);
            double f = x - k;
            for (int ch = 0; ch < 3; ch++)
            {
                int shift = 16 - 8 * ch;
                double a = (colors[k] >> shift & 0xFF) / 255.0, b = (colors[k + 1] >> shift & 0xFF) / 255.0;
                table[3 * i + ch] = (float)(a + (b - a) * f);
            }
        }
        return table;
    }

    private static byte ToByte(float v) => (byte)Math.Clamp(MathF.Round(v, MidpointRounding.AwayFromZero), 0f, 255f);
}
