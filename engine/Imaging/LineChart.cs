using System.Globalization;

namespace CamEngine.Imaging;

/// <summary>
/// A line chart rasterizer without a plotting library: white background, a framed plot area with light grid lines
/// at "nice" ticks (1, 2 or 5 times a power of ten), numeric tick labels, axis titles, a title and a legend, all
/// text in the built-in <see cref="BitmapFont"/>.
/// <para>Layout: the plot frame's pixel rows and columns are fixed by the image size (<see cref="PlotArea"/>).
/// Data map linearly onto it, pixel centres at integer coordinates: x = XMin lands on column Left, XMax on
/// Right; y = YMax on row Top, YMin on row Bottom.</para>
/// <para>Lines: each segment is drawn with antialiased edges in the manner of Wu's algorithm, generalized to a
/// width w: stepping one pixel along the major axis, a pixel at minor-axis distance d from the line gets coverage
/// clamp(w' / 2 + 0.5 - |d|, 0, 1), where w' = w * sqrt(1 + slope^2) is the width measured along the minor
/// axis. A series keeps the largest coverage per pixel (joints are not darkened twice), then is blended over the
/// chart: out = (1 - coverage) * below + coverage * colour. A w = 2 horizontal line on a pixel row covers that
/// row fully and the rows above and below by half.</para>
/// <para>The legend goes into the corner of the plot (top right, top left, bottom right, bottom left, in that order
/// of preference) that hides the fewest line pixels.</para>
/// </summary>
internal static class LineChart
{
    /// <summary>Smallest image width.</summary>
    public const int MinWidth = 200;

    /// <summary>Smallest image height.</summary>
    public const int MinHeight = 150;

    /// <summary>Columns left of the plot frame: y title, tick labels of up to <see cref="MaxTickChars"/>
    /// characters, ticks.</summary>
    public const int MarginLeft = 76;

    /// <summary>Rows above the plot frame: the title.</summary>
    public const int MarginTop = 34;

    /// <summary>Columns right of the plot frame.</summary>
    public const int MarginRight = 16;

    /// <summary>Rows under the plot frame: ticks, tick labels, x title.</summary>
    public const int MarginBottom = 35;

    /// <summary>Longest tick label, in characters.</summary>
    public const int MaxTickChars = 8;

    private const int TickLength = 4;
    private const int TextGap = 3;
    private static readonly (byte R, byte G, byte B) s_white = (255, 255, 255);
    private static readonly (byte R, byte G, byte B) s_black = (0, 0, 0);
    private static readonly (byte R, byte G, byte B) s_gridGrey = (230, 230, 230);
    private static readonly (byte R, byte G, byte B) s_legendGrey = (150, 150, 150);

    /// <summary>Line colours by series index (cycled): blue, vermilion, green, orange, purple, teal, magenta,
    /// grey.</summary>
    public static IReadOnlyList<(byte R, byte G, byte B)> Palette { get; } =
    [
        (0, 90, 200), (220, 50, 32), (0, 150, 70), (240, 150, 0),
        (120, 60, 180), (0, 170, 190), (200, 60, 150), (90, 90, 90),
    ];

    /// <summary>The plot frame of a <paramref name="width"/> x <paramref name="height"/> chart: the pixel columns
    /// of its left and right edges and the pixel rows of its top and bottom edges (inclusive).</summary>
    public static (int Left, int Top, int Right, int Bottom) PlotArea(int width, int height)
    {
        if (width < MinWidth || height < MinHeight)
        {
            throw new ArgumentOutOfRangeException(nameof(width),
                $"a chart needs at least {MinWidth}x{MinHeight} pixels, got {width}x{height}");
        }
        return (MarginLeft, MarginTop, width - 1 - MarginRight, height - 1 - MarginBottom);
    }

    /// <summary>The tick step for an axis spanning <paramref name="span"/> (&gt; 0): span / 5 rounded to 1, 2 or
    /// 5 times a power of ten (raw / 10^k below 1.5 takes 1, below 3 takes 2, below 7 takes 5, else 10).</summary>
    public static double NiceStep(double span)
    {
        if (!(span > 0) || double.IsInfinity(span))
            throw new ArgumentOutOfRangeException(nameof(span), span, "an axis span must be finite and positive");
        double raw = span / 5;
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double norm = raw / magnitude;
        double nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
        return nice * magnitude;
    }

    /// <summary>The tick values from <paramref name="min"/> to <paramref name="max"/> at multiples of
    /// <paramref name="step"/> (with a tolerance of a millionth of a step at both ends).</summary>
    public static IReadOnlyList<double> Ticks(double min, double max, double step)
    {
        var ticks = new List<double>();
        double eps = step * 1e-6;
        for (long k = (long)Math.Ceiling((min - eps) / step); k * step <= max + eps; k++)
            ticks.Add(k * step);
        return ticks;
    }

    /// <summary>The label of tick <paramref name="value"/> on an axis with tick <paramref name="step"/>: as many
    /// decimals as the step needs (0.25 is not a step; 0.2 gives one decimal), or 3 significant digits in
    /// exponent form when that is longer than <see cref="MaxTickChars"/>.</summary>
    public static string TickLabel(double value, double step)
    {
        if (Math.Abs(value) < step * 1e-6)
            value = 0; // no "-0"
        int decimals = Math.Max(0, -(int)Math.Floor(Math.Log10(step) + 1e-9));
        string format = "F" + decimals.ToString(CultureInfo.InvariantCulture);
        string text = value.ToString(format, CultureInfo.InvariantCulture);
        return text.Length <= MaxTickChars ? text : value.ToString("G3", CultureInfo.InvariantCulture);
    }

    /// <summary>Renders <paramref name="series"/> into a new image. Throws <see cref="CamEngineException"/> when
    /// there is no series, a series has no points, or a coordinate is NaN or infinite.</summary>
    public static RgbImage Render(IReadOnlyList<ChartSeries> series, LineChartOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        options ??= new LineChartOptions();
        Validate(series, options);
        var (left, top, right, bottom) = PlotArea(options.Width, options.Height);
        var all = series.SelectMany(s => s.Points).ToList();
        var (xMin, xMax, xStep) = AxisRange(all.Select(p => p.X), options.XMin, options.XMax, "x");
        var (yMin, yMax, yStep) = AxisRange(all.Select(p => p.Y), options.YMin, options.YMax, "y");
        double ToPx(double x) => left + (x - xMin) / (xMax - xMin) * (right - left);
        double ToPy(double y) => bottom - (y - yMin) / (yMax - yMin) * (bottom - top);

        var image = new RgbImage(options.Width, options.Height);
        Array.Fill(image.Data, (byte)255);
        var xTicks = Ticks(xMin, xMax, xStep);
        var yTicks = Ticks(yMin, yMax, yStep);
        foreach (double t in xTicks)
            FillRect(image, (int)Math.Round(ToPx(t)), top, 1, bottom - top + 1, s_gridGrey);
        foreach (double t in yTicks)
            FillRect(image, left, (int)Math.Round(ToPy(t)), right - left + 1, 1, s_gridGrey);
        FillRect(image, left, top, right - left + 1, 1, s_black);
        FillRect(image, left, bottom, right - left + 1, 1, s_black);
        FillRect(image, left, top, 1, bottom - top + 1, s_black);
        FillRect(image, right, top, 1, bottom - top + 1, s_black);

        var drawn = new float[options.Width * options.Height];
        for (int s = 0; s < series.Count; s++)
        {
            var coverage = new float[options.Width * options.Height];
            var points = series[s].Points;
            var clip = (left, top, right, bottom);
            if (points.Count == 1)
            {
                // a lone point: a line-width square
                double px = ToPx(points[0].X), py = ToPy(points[0].Y), h = options.LineWidth / 2.0;
                Segment(coverage, options.Width, clip, px - h, py, px + h, py, options.LineWidth);
            }
            for (int i = 1; i < points.Count; i++)
            {
                Segment(coverage, options.Width, clip, ToPx(points[i - 1].X), ToPy(points[i - 1].Y),
                    ToPx(points[i].X), ToPy(points[i].Y), options.LineWidth);
            }
            Composite(image, coverage, SeriesColor(series, s));
            for (int i = 0; i < drawn.Length; i++)
                drawn[i] = Math.Max(drawn[i], coverage[i]);
        }

        DrawLegend(image, series, drawn, (left, top, right, bottom));
        foreach (double t in xTicks)
        {
            int px = (int)Math.Round(ToPx(t));
            FillRect(image, px, bottom + 1, 1, TickLength, s_black);
            string label = TickLabel(t, xStep);
            BitmapFont.Draw(image, label, px - BitmapFont.MeasureWidth(label, 1) / 2,
                bottom + 1 + TickLength + TextGap, 1, s_black);
        }
        foreach (double t in yTicks)
        {
            int py = (int)Math.Round(ToPy(t));
            FillRect(image, left - TickLength, py, TickLength, 1, s_black);
            string label = TickLabel(t, yStep);
            BitmapFont.Draw(image, label, left - TickLength - TextGap - BitmapFont.MeasureWidth(label, 1),
                py - BitmapFont.GlyphHeight / 2, 1, s_black);
        }
        string title = Fit(options.Title, options.Width - 8, 2);
        BitmapFont.Draw(image, title, (options.Width - BitmapFont.MeasureWidth(title, 2)) / 2, 8, 2, s_black);
        string xLabel = Fit(options.XLabel, right - left, 1);
        BitmapFont.Draw(image, xLabel, (left + right - BitmapFont.MeasureWidth(xLabel, 1)) / 2,
            bottom + 1 + TickLength + TextGap + BitmapFont.GlyphHeight + 6, 1, s_black);
        string yLabel = Fit(options.YLabel, bottom - top, 1);
        DrawUpwards(image, yLabel, 6, (top + bottom + BitmapFont.MeasureWidth(yLabel, 1)) / 2, s_black);
        return image;
    }

    private static void Validate(IReadOnlyList<ChartSeries> series, LineChartOptions options)
    {
        if (series.Count == 0)
            throw new CamEngineException("a line chart needs at least one series");
        if (!(options.LineWidth >= 1 && options.LineWidth <= 8))
            throw new CamEngineException($"line width must lie in [1, 8], got {options.LineWidth}");
        foreach (var s in series)
        {
            ArgumentNullException.ThrowIfNull(s);
            if (s.Points == null || s.Points.Count == 0)
                throw new CamEngineException($"chart series '{s.Name}' has no points");
            for (int i = 0; i < s.Points.Count; i++)
            {
                var (x, y) = s.Points[i];
                if (!double.IsFinite(x) || !double.IsFinite(y))
                {
                    throw new CamEngineException(string.Create(CultureInfo.InvariantCulture,
                        $"chart series '{s.Name}' point {i} is ({x}, {y}); every coordinate must be finite"));
                }
            }
        }
        (string, double?)[] ends = [("XMin", options.XMin), ("XMax", options.XMax), ("YMin", options.YMin), ("YMax", options.YMax)];
        foreach (var (name, v) in ends)
        {
            if (v is { } d && !double.IsFinite(d))
                throw new CamEngineException($"chart {name} must be finite, got {d}");
        }
    }

    /// <summary>The axis ends and tick step: given ends are kept; missing ones are the data's extremes rounded
    /// outwards to a tick of the data's nice step. A zero-width data range is widened by max(|v| / 10, 0.5).</summary>
    private static (double Min, double Max, double Step) AxisRange(
        IEnumerable<double> values, double? min, double? max, string axis)
    {
        double lo = min ?? double.PositiveInfinity, hi = max ?? double.NegativeInfinity;
        if (min == null || max == null)
        {
            double dataLo = double.PositiveInfinity, dataHi = double.NegativeInfinity;
            foreach (double v in values)
            {
                dataLo = Math.Min(dataLo, v);
                dataHi = Math.Max(dataHi, v);
            }
            if (min == null && max != null)
                dataHi = max.Value;
            if (max == null && min != null)
                dataLo = min.Value;
            if (dataHi <= dataLo)
            {
                double pad = Math.Max(Math.Abs(dataLo) / 10, 0.5);
                dataLo = min ?? dataLo - pad;
                dataHi = max ?? dataHi + pad;
            }
            double step0 = NiceStep(dataHi - dataLo);
            lo = min ?? Math.Floor(dataLo / step0 + 1e-9) * step0;
            hi = max ?? Math.Ceiling(dataHi / step0 - 1e-9) * step0;
        }
        if (!(hi > lo))
            throw new CamEngineException($"chart {axis} axis: the minimum {lo} must be below the maximum {hi}");
        return (lo, hi, NiceStep(hi - lo));
    }

    /// <summary>Adds one segment's coverage (max per pixel) inside the clip rectangle; see the class comment.</summary>
    private static void Segment(float[] coverage, int stride, (int L, int T, int R, int B) clip,
        double x0, double y0, double x1, double y1, float width)
    {
        bool steep = Math.Abs(y1 - y0) > Math.Abs(x1 - x0);
        if (steep)
        {
            (x0, y0) = (y0, x0);
            (x1, y1) = (y1, x1);
        }
        if (x0 > x1)
        {
            (x0, x1) = (x1, x0);
            (y0, y1) = (y1, y0);
        }
        double slope = x1 > x0 ? (y1 - y0) / (x1 - x0) : 0;
        double half = width / 2.0 * Math.Sqrt(1 + slope * slope);
        int first = (int)Math.Round(x0), last = (int)Math.Round(x1);
        for (int major = first; major <= last; major++)
        {
            double m = Math.Clamp(major, x0, x1);
            double center = y0 + slope * (m - x0);
            int from = (int)Math.Floor(center - half - 0.5), to = (int)Math.Ceiling(center + half + 0.5);
            for (int minor = from; minor <= to; minor++)
            {
                float c = (float)Math.Clamp(half + 0.5 - Math.Abs(minor - center), 0, 1);
                if (c <= 0)
                    continue;
                int px = steep ? minor : major, py = steep ? major : minor;
                if (px < clip.L || px > clip.R || py < clip.T || py > clip.B)
                    continue;
                int i = py * stride + px;
                coverage[i] = Math.Max(coverage[i], c);
            }
        }
    }

    private static void Composite(RgbImage image, float[] coverage, (byte R, byte G, byte B) color)
    {
        for (int i = 0; i < coverage.Length; i++)
        {
            float c = coverage[i];
            if (c <= 0)
                continue;
            image.Data[3 * i] = Mix(image.Data[3 * i], color.R, c);
            image.Data[3 * i + 1] = Mix(image.Data[3 * i + 1], color.G, c);
            image.Data[3 * i + 2] = Mix(image.Data[3 * i + 2], color.B, c);
        }
    }

    private static byte Mix(byte below, byte color, float c) =>
        (byte)Math.Clamp(MathF.Round((1 - c) * below + c * color, MidpointRounding.AwayFromZero), 0f, 255f);

    private static (byte R, byte G, byte B) SeriesColor(IReadOnlyList<ChartSeries> series, int index) =>
        series[index].Color ?? Palette[index % Palette.Count];

    private static void DrawLegend(RgbImage image, IReadOnlyList<ChartSeries> series, float[] drawn,
        (int L, int T, int R, int B) plot)
    {
        const int pad = 4, swatch = 16, rowHeight = BitmapFont.GlyphHeight + 4;
        int maxText = (plot.R - plot.L) / 2;
        var names = series.Select(s => Fit(s.Name, maxText, 1)).ToList();
        int boxW = 2 * pad + swatch + 4 + names.Max(n => BitmapFont.MeasureWidth(n, 1));
        int boxH = 2 * pad + series.Count * rowHeight - 4;
        if (boxW > plot.R - plot.L - 8 || boxH > plot.B - plot.T - 8)
            return; // no room: a legend over the whole plot would hide it
        (int X, int Y)[] corners =
        [
            (plot.R - 6 - boxW, plot.T + 6), (plot.L + 6, plot.T + 6),
            (plot.R - 6 - boxW, plot.B - 6 - boxH), (plot.L + 6, plot.B - 6 - boxH),
        ];
        var best = corners.MinBy(c => Hidden(drawn, image.Width, c.X, c.Y, boxW, boxH));
        FillRect(image, best.X, best.Y, boxW, boxH, s_legendGrey);
        FillRect(image, best.X + 1, best.Y + 1, boxW - 2, boxH - 2, s_white);
        for (int s = 0; s < series.Count; s++)
        {
            int rowTop = best.Y + pad + s * rowHeight;
            FillRect(image, best.X + pad, rowTop + BitmapFont.GlyphHeight / 2 - 1, swatch, 3, SeriesColor(series, s));
            BitmapFont.Draw(image, names[s], best.X + pad + swatch + 4, rowTop, 1, s_black);
        }
    }

    private static double Hidden(float[] drawn, int stride, int x0, int y0, int w, int h)
    {
        double sum = 0;
        for (int y = y0; y < y0 + h; y++)
        {
            for (int x = x0; x < x0 + w; x++)
                sum += drawn[y * stride + x];
        }
        return sum;
    }

    /// <summary>Draws <paramref name="text"/> rotated a quarter turn anticlockwise (reading upwards) with the
    /// first character's bottom-left corner at (<paramref name="x"/>, <paramref name="bottom"/>).</summary>
    private static void DrawUpwards(RgbImage image, string text, int x, int bottom, (byte R, byte G, byte B) color)
    {
        for (int i = 0; i < text.Length; i++)
        {
            var glyph = BitmapFont.Glyph(text[i]);
            for (int row = 0; row < BitmapFont.GlyphHeight; row++)
            {
                for (int col = 0; col < BitmapFont.GlyphWidth; col++)
                {
                    if ((glyph[row] >> (BitmapFont.GlyphWidth - 1 - col) & 1) == 0)
                        continue;
                    // unrotated (u, v) = (i * Advance + col, row) goes to (x + v, bottom - u)
                    int px = x + row, py = bottom - (i * BitmapFont.Advance + col);
                    if (px >= 0 && py >= 0 && px < image.Width && py < image.Height)
                        SetPixel(image, px, py, color);
                }
            }
        }
    }

    private static string Fit(string text, int width, int scale)
    {
        text ??= "";
        if (BitmapFont.MeasureWidth(text, scale) <= width)
            return text;
        int n = Math.Max(0, (width / scale + 1) / BitmapFont.Advance - 1);
        return text[..Math.Min(n, text.Length)] + ".";
    }

    private static void FillRect(RgbImage image, int x0, int y0, int width, int height, (byte R, byte G, byte B) color)
    {
        for (int y = Math.Max(0, y0); y < Math.Min(image.Height, y0 + height); y++)
        {
            for (int x = Math.Max(0, x0); x < Math.Min(image.Width, x0 + width); x++)
                SetPixel(image, x, y, color);
        }
    }

    private static void SetPixel(RgbImage image, int x, int y, (byte R, byte G, byte B) color)
    {
        int o = image.Offset(x, y);
        image.Data[o] = color.R;
        image.Data[o + 1] = color.G;
        image.Data[o + 2] = color.B;
    }
}
