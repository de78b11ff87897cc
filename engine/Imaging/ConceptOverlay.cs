using CamEngine.Methods;

namespace CamEngine.Imaging;

/// <summary>
/// Draws the concepts of a factorization method one colour each, as pytorch-grad-cam's
/// <c>show_factorization_on_image</c> does: every pixel takes the colour of the concept whose normalized map is
/// largest there, with that map's value as its brightness (HSV V channel), blended over the image; a legend lists
/// each concept's colour and top classes. Colours are evenly spaced hues (pytorch-grad-cam samples matplotlib's
/// gist_rainbow at the same spacing).
/// </summary>
public static class ConceptOverlay
{
    /// <summary>The share of the picture that is the image (pytorch-grad-cam's <c>run_dff_on_image</c> uses 0.3).</summary>
    public const float DefaultImageWeight = 0.3f;

    /// <summary>The colour of concept <paramref name="index"/> of <paramref name="count"/>, at full brightness.</summary>
    public static (byte R, byte G, byte B) Colour(int index, int count, float value = 1f)
    {
        double hue = 6.0 * index / Math.Max(count, 1), f = hue - Math.Floor(hue);
        double v = Math.Clamp(value, 0f, 1f), p = 0, q = v * (1 - f), t = v * f;
        var (r, g, b) = ((int)Math.Floor(hue) % 6) switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        return ((byte)Math.Round(255 * r), (byte)Math.Round(255 * g), (byte)Math.Round(255 * b));
    }

    /// <summary>
    /// The concepts of <paramref name="explanation"/> over <paramref name="image"/> (any size; maps are resized to
    /// it), with a legend of each concept's top classes, named by <paramref name="labels"/> when given.
    /// </summary>
    /// <exception cref="CamEngineException">The explanation has no concepts.</exception>
    public static RgbImage Draw(RgbImage image, Explanation explanation, IReadOnlyList<string>? labels = null,
        float imageWeight = DefaultImageWeight)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(explanation);
        var concepts = explanation.Concepts;
        if (concepts is not { Count: > 0 })
            throw new CamEngineException($"the {explanation.Method} explanation has no concepts to draw");
        int w = image.Width, h = image.Height;
        var maps = concepts.Select(c => c.Map.Shape[^2] == h && c.Map.Shape[^1] == w ? c.Map : Resize.Bilinear(c.Map, h, w)).ToList();
        var result = new RgbImage(w, h);
        for (int j = 0; j < w * h; j++)
        {
            int winner = 0;
            for (int t = 1; t < maps.Count; t++)
            {
                if (maps[t].Data[j] > maps[winner].Data[j])
                    winner = t;
            }
            var (r, g, b) = Colour(winner, maps.Count, maps[winner].Data[j]);
            result.Data[3 * j] = Mix(image.Data[3 * j], r, imageWeight);
            result.Data[3 * j + 1] = Mix(image.Data[3 * j + 1], g, imageWeight);
            result.Data[3 * j + 2] = Mix(image.Data[3 * j + 2], b, imageWeight);
        }
        int scale = Math.Max(1, Math.Min(w, h) / 160), line = (BitmapFont.GlyphHeight + 2) * scale;
        for (int t = 0; t < concepts.Count; t++)
        {
            string text = string.Join(", ", concepts[t].TopClasses.Select((c, i) =>
                string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"{(labels != null && c < labels.Count ? labels[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture))} {concepts[t].TopProbabilities[i]:0.00}")));
            int y = 2 + t * line;
            if (y + line > h)
                break;
            BitmapFont.Draw(result, text, 2, y, scale, Colour(t, concepts.Count));
        }
        return result;
    }

    private static byte Mix(byte image, byte colour, float imageWeight) =>
        (byte)Math.Clamp(Math.Round(imageWeight * image + (1 - imageWeight) * colour), 0, 255);
}
