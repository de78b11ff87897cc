namespace CamEngine.Imaging;

/// <summary>
/// A labelled contact sheet: equally sized tiles (e.g. one overlay per method) in a near-square grid, each under
/// a white strip with its label in the built-in <see cref="BitmapFont"/>. Small tiles are enlarged by an integer
/// factor (nearest neighbour) so that each is at least <see cref="MinTileWidth"/> pixels wide and the labels
/// stay readable.
/// </summary>
internal static class Grid
{
    /// <summary>Tiles narrower than this are enlarged by an integer factor.</summary>
    public const int MinTileWidth = 128;

    /// <summary>Pixels between tiles and around the sheet.</summary>
    public const int Gap = 4;

    private const int LabelPad = 3;

    /// <summary>Renders <paramref name="tiles"/> (label, image) into one image; <paramref name="columns"/> 0 means
    /// ceil(sqrt(count)). Labels too long for a tile are cut with a trailing '.'. Each of <paramref name="captions"/>
    /// is written under the tiles on a white strip, wrapped at spaces to the sheet's width.</summary>
    public static RgbImage Render(
        IReadOnlyList<(string Label, RgbImage Image)> tiles, int columns = 0, IReadOnlyList<string>? captions = null)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0)
            throw new ArgumentException("a grid needs at least one tile", nameof(tiles));
        int w = tiles[0].Image.Width, h = tiles[0].Image.Height;
        if (tiles.Any(t => t.Image.Width != w || t.Image.Height != h))
            throw new CamEngineException("grid tiles must all have the same size");
        int cols = columns > 0 ? columns : (int)Math.Ceiling(Math.Sqrt(tiles.Count));
        int rows = (tiles.Count + cols - 1) / cols;
        int zoom = Math.Max(1, (MinTileWidth + w - 1) / w);
        int tw = w * zoom, th = h * zoom;
        int textScale = tw >= 2 * MinTileWidth ? 2 : 1;
        int labelHeight = BitmapFont.GlyphHeight * textScale + 2 * LabelPad;
        int cellH = labelHeight + th;
        int sheetW = Gap + cols * (tw + Gap), tilesH = Gap + rows * (cellH + Gap);
        var lines = (captions ?? []).SelectMany(c => Wrap(c, sheetW - 2 * Gap - 2 * LabelPad, textScale)).ToList();
        int lineH = (BitmapFont.GlyphHeight + 3) * textScale;
        int captionH = lines.Count == 0 ? 0 : lines.Count * lineH + 2 * LabelPad + Gap;
        var sheet = new RgbImage(sheetW, tilesH + captionH);
        Fill(sheet, 0, 0, sheet.Width, sheet.Height, (48, 48, 48));
        if (lines.Count > 0)
        {
            Fill(sheet, Gap, tilesH, sheetW - 2 * Gap, captionH - Gap, (255, 255, 255));
            for (int k = 0; k < lines.Count; k++)
                BitmapFont.Draw(sheet, lines[k], Gap + LabelPad, tilesH + LabelPad + k * lineH, textScale, (0, 0, 0));
        }
        for (int t = 0; t < tiles.Count; t++)
        {
            int x0 = Gap + t % cols * (tw + Gap), y0 = Gap + t / cols * (cellH + Gap);
            Fill(sheet, x0, y0, tw, labelHeight, (255, 255, 255));
            string label = Fit(tiles[t].Label, tw - 2 * LabelPad, textScale);
            BitmapFont.Draw(sheet, label, x0 + LabelPad, y0 + LabelPad, textScale, (0, 0, 0));
            var img = tiles[t].Image;
            for (int y = 0; y < th; y++)
            {
                for (int x = 0; x < tw; x++)
                {
                    int s = img.Offset(x / zoom, y / zoom), d = sheet.Offset(x0 + x, y0 + labelHeight + y);
                    sheet.Data[d] = img.Data[s];
                    sheet.Data[d + 1] = img.Data[s + 1];
                    sheet.Data[d + 2] = img.Data[s + 2];
                }
            }
        }
        return sheet;
    }

    /// <summary><paramref name="text"/> in lines at most <paramref name="width"/> pixels wide, broken at spaces (a
    /// word longer than a line is cut into pieces).</summary>
    internal static IEnumerable<string> Wrap(string text, int width, int scale)
    {
        int perLine = Math.Max(1, (width / scale + 1) / BitmapFont.Advance);
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var rest = word;
            while (rest.Length > 0)
            {
                string candidate = line.Length == 0 ? rest : line + " " + rest;
                if (candidate.Length <= perLine)
                {
                    line = candidate;
                    rest = "";
                }
                else if (line.Length > 0)
                {
                    yield return line;
                    line = "";
                }
                else
                {
                    yield return rest[..perLine];
                    rest = rest[perLine..];
                }
            }
        }
        if (line.Length > 0)
            yield return line;
    }

    private static string Fit(string label, int width, int scale)
    {
        if (BitmapFont.MeasureWidth(label, scale) <= width)
            return label;
        int n = Math.Max(0, (width / scale + 1) / BitmapFont.Advance - 1);
        return label[..Math.Min(n, label.Length)] + ".";
    }

    private static void Fill(RgbImage image, int x0, int y0, int width, int height, (byte R, byte G, byte B) c)
    {
        for (int y = y0; y < y0 + height; y++)
        {
            for (int x = x0; x < x0 + width; x++)
            {
                int o = image.Offset(x, y);
                image.Data[o] = c.R;
                image.Data[o + 1] = c.G;
                image.Data[o + 2] = c.B;
            }
        }
    }
}
