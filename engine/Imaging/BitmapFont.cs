namespace CamEngine.Imaging;

/// <summary>
/// A tiny built-in 5x7 bitmap font (after the classic HD44780 character ROM) for labelling images without a font
/// library: digits, letters (drawn as capitals; lower case maps to them), and <c>- + . : _ ( ) / = , ; * '</c> and space.
/// Any other character is drawn as '?'. Glyphs are 5 columns by 7 rows with a 1-column gap, scaled by an integer.
/// </summary>
internal static class BitmapFont
{
    /// <summary>Glyph width in font pixels.</summary>
    public const int GlyphWidth = 5;

    /// <summary>Glyph height in font pixels.</summary>
    public const int GlyphHeight = 7;

    /// <summary>Horizontal advance per character in font pixels (glyph plus a 1-pixel gap).</summary>
    public const int Advance = GlyphWidth + 1;

    // Each glyph: 7 rows, the low 5 bits of each row, bit 4 = leftmost column.
    private static readonly Dictionary<char, byte[]> s_glyphs = Build();

    private static Dictionary<char, byte[]> Build()
    {
        var rows = new Dictionary<char, string>
        {
            ['A'] = "01110 10001 10001 10001 11111 10001 10001",
            ['B'] = "11110 10001 10001 11110 10001 10001 11110",
            ['C'] = "01110 10001 10000 10000 10000 10001 01110",
            ['D'] = "11100 10010 10001 10001 10001 10010 11100",
            ['E'] = "11111 10000 10000 11110 10000 10000 11111",
            ['F'] = "11111 10000 10000 11110 10000 10000 10000",
            ['G'] = "01110 10001 10000 10111 10001 10001 01111",
            ['H'] = "10001 10001 10001 11111 10001 10001 10001",
            ['I'] = "01110 00100 00100 00100 00100 00100 01110",
            ['J'] = "00111 00010 00010 00010 00010 10010 01100",
            ['K'] = "10001 10010 10100 11000 10100 10010 10001",
            ['L'] = "10000 10000 10000 10000 10000 10000 11111",
            ['M'] = "10001 11011 10101 10101 10001 10001 10001",
            ['N'] = "10001 10001 11001 10101 10011 10001 10001",
            ['O'] = "01110 10001 10001 10001 10001 10001 01110",
            ['P'] = "11110 10001 10001 11110 10000 10000 10000",
            ['Q'] = "01110 10001 10001 10001 10101 10010 01101",
            ['R'] = "11110 10001 10001 11110 10100 10010 10001",
            ['S'] = "01111 10000 10000 01110 00001 00001 11110",
            ['T'] = "11111 00100 00100 00100 00100 00100 00100",
            ['U'] = "10001 10001 10001 10001 10001 10001 01110",
            ['V'] = "10001 10001 10001 10001 10001 01010 00100",
            ['W'] = "10001 10001 10001 10101 10101 10101 01010",
            ['X'] = "10001 10001 01010 00100 01010 10001 10001",
            ['Y'] = "10001 10001 10001 01010 00100 00100 00100",
            ['Z'] = "11111 00001 00010 00100 01000 10000 11111",
            ['0'] = "01110 10001 10011 10101 11001 10001 01110",
            ['1'] = "00100 01100 00100 00100 00100 00100 01110",
            ['2'] = "01110 10001 00001 00010 00100 01000 11111",
            ['3'] = "11111 00010 00100 00010 00001 10001 01110",
            ['4'] = "00010 00110 01010 10010 11111 00010 00010",
            ['5'] = "11111 10000 11110 00001 00001 10001 01110",
            ['6'] = "00110 01000 10000 11110 10001 10001 01110",
            ['7'] = "11111 00001 00010 00100 01000 01000 01000",
            ['8'] = "01110 10001 10001 01110 10001 10001 01110",
            ['9'] = "01110 10001 10001 01111 00001 00010 01100",
            ['-'] = "00000 00000 00000 11111 00000 00000 00000",
            ['+'] = "00000 00100 00100 11111 00100 00100 00000",
            ['.'] = "00000 00000 00000 00000 00000 01100 01100",
            [':'] = "00000 01100 01100 00000 01100 01100 00000",
            ['_'] = "00000 00000 00000 00000 00000 00000 11111",
            ['('] = "00010 00100 01000 01000 01000 00100 00010",
            [')'] = "01000 00100 00010 00010 00010 00100 01000",
            ['/'] = "00000 00001 00010 00100 01000 10000 00000",
            [' '] = "00000 00000 00000 00000 00000 00000 00000",
            ['='] = "00000 00000 11111 00000 11111 00000 00000",
            [','] = "00000 00000 00000 00000 01100 00100 01000",
            [';'] = "00000 01100 01100 00000 01100 00100 01000",
            ['*'] = "00000 00100 10101 01110 10101 00100 00000",
            ['\''] = "01100 00100 01000 00000 00000 00000 00000",
            ['?'] = "01110 10001 00001 00010 00100 00000 00100",
        };
        return rows.ToDictionary(
            kv => kv.Key,
            kv => kv.Value.Split(' ').Select(r => Convert.ToByte(r, 2)).ToArray());
    }

    /// <summary>The 7 row bitmasks of <paramref name="c"/> (bit 4 = leftmost column); '?' for unknown characters.</summary>
    public static ReadOnlySpan<byte> Glyph(char c) =>
        s_glyphs.TryGetValue(char.ToUpperInvariant(c), out var g) ? g : s_glyphs['?'];

    /// <summary>Width in pixels of <paramref name="text"/> at <paramref name="scale"/> (no trailing gap).</summary>
    public static int MeasureWidth(string text, int scale)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length == 0 ? 0 : (text.Length * Advance - 1) * scale;
    }

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (<paramref name="x"/>, <paramref name="y"/>),
    /// each font pixel a <paramref name="scale"/> x <paramref name="scale"/> block; pixels outside the image are skipped.</summary>
    public static void Draw(RgbImage image, string text, int x, int y, int scale, (byte R, byte G, byte B) color)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        for (int i = 0; i < text.Length; i++)
        {
            var glyph = Glyph(text[i]);
            int left = x + i * Advance * scale;
            for (int row = 0; row < GlyphHeight; row++)
            {
                for (int col = 0; col < GlyphWidth; col++)
                {
                    if ((glyph[row] >> (GlyphWidth - 1 - col) & 1) == 0)
                        continue;
                    for (int dy = 0; dy < scale; dy++)
                    {
                        for (int dx = 0; dx < scale; dx++)
                        {
                            int px = left + col * scale + dx, py = y + row * scale + dy;
                            if (px < 0 || py < 0 || px >= image.Width || py >= image.Height)
                                continue;
                            int o = image.Offset(px, py);
                            image.Data[o] = color.R;
                            image.Data[o + 1] = color.G;
                            image.Data[o + 2] = color.B;
                        }
                    }
                }
            }
        }
    }
}
