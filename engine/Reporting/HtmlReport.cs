using System.Globalization;
using System.Text;
using CamEngine.Imaging;
using CamEngine.IO;

namespace CamEngine.Reporting;

/// <summary>
/// Writes a <see cref="ReportContent"/> as one self-contained HTML page: every picture embedded as a base64 PNG
/// data URI, the style sheet inline, no scripts, no external requests; it opens from disk in any browser. Every
/// string of the content is HTML-escaped. Small pictures are shown enlarged by an integer factor with
/// <c>image-rendering: pixelated</c>, so that a 32 x 32 map stays a grid of sharp squares. Charts are shown at their
/// own size, pixel for pixel (their bitmap text would blur when scaled), and a caption wraps at its picture's width.
/// </summary>
public static class HtmlReport
{
    /// <summary>The name of the page in the report folder.</summary>
    public const string FileName = "index.html";

    /// <summary>Pictures narrower than this are shown enlarged by an integer factor.</summary>
    public const int MinDisplayWidth = 192;

    /// <summary>Pictures wider than this are shown scaled down to it (the embedded PNG keeps every pixel).</summary>
    public const int MaxDisplayWidth = 384;

    private const string Style = """
        body { font-family: system-ui, sans-serif; margin: 24px; color: #1a1a1a; background: #fafafa; }
        h1 { font-size: 22px; margin: 0 0 16px; }
        h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
        h3 { font-size: 15px; margin: 18px 0 8px; }
        table { border-collapse: collapse; background: #fff; }
        th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 13px; }
        th { background: #eee; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
        figure { margin: 0; background: #fff; border: 1px solid #ddd; padding: 6px; width: min-content; }
        figcaption { font-size: 13px; text-align: center; margin-top: 4px; }
        img { display: block; height: auto; }
        img.pixelated { image-rendering: pixelated; }
        .empty { color: #777; font-style: italic; }
        """;

    /// <summary>Writes the page as <paramref name="directory"/>/<see cref="FileName"/> (creating the folder),
    /// atomically: readers see the old page or the whole new one. Returns the page's path.</summary>
    public static string Write(string directory, ReportContent content)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string html = Render(content);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, FileName);
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(html);
        AtomicFile.Write(path, s => s.Write(bytes));
        return path;
    }

    /// <summary>The page as a string. Throws <see cref="CamEngineException"/> when a table row's cell count
    /// differs from the number of headers.</summary>
    public static string Render(ReportContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var b = new StringBuilder();
        b.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"generator\" content=\"CamEngine\">\n")
            .Append("<title>").Append(Escape(content.Title)).Append("</title>\n<style>\n").Append(Style)
            .Append("</style>\n</head>\n<body>\n<h1>").Append(Escape(content.Title)).Append("</h1>\n");

        if (content.Info.Count > 0)
        {
            b.Append("<h2>Run</h2>\n<table class=\"info\">\n");
            foreach (var (key, value) in content.Info)
            {
                b.Append("<tr><th>").Append(Escape(key)).Append("</th><td>").Append(Escape(value))
                    .Append("</td></tr>\n");
            }
            b.Append("</table>\n");
        }

        if (content.Images.Count > 0)
        {
            b.Append("<h2>Images</h2>\n");
            foreach (var image in content.Images)
            {
                ArgumentNullException.ThrowIfNull(image);
                b.Append("<section class=\"image\">\n<h3>").Append(Escape(image.Name))
                    .Append("</h3>\n<div class=\"row\">\n");
                if (image.Input is { } input)
                    AppendFigure(b, input, "input");
                foreach (var (method, overlay) in image.Overlays)
                    AppendFigure(b, overlay, method);
                b.Append("</div>\n</section>\n");
            }
        }

        if (content.Table is { } table)
            AppendTable(b, table);

        if (content.Charts.Count > 0)
        {
            b.Append("<h2>Charts</h2>\n<div class=\"row\">\n");
            foreach (var (caption, chart) in content.Charts)
                AppendFigure(b, chart, caption, chart.Width);
            b.Append("</div>\n");
        }
        b.Append("</body>\n</html>\n");
        return b.ToString();
    }

    /// <summary>Replaces &amp;, &lt;, &gt;, &quot; and &#39; by character references, so that text can stand in
    /// element content and in quoted attribute values.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        var b = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            b.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }
        return b.ToString();
    }

    /// <summary>The width at which a picture <paramref name="width"/> pixels wide is shown: enlarged by the
    /// smallest integer factor that reaches <see cref="MinDisplayWidth"/>, or reduced to
    /// <see cref="MaxDisplayWidth"/>.</summary>
    public static int DisplayWidth(int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (width < MinDisplayWidth)
            return width * ((MinDisplayWidth + width - 1) / width);
        return Math.Min(width, MaxDisplayWidth);
    }

    private static void AppendFigure(StringBuilder b, RgbImage image, string caption, int? width = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = width ?? DisplayWidth(image.Width);
        int h = (int)Math.Round((double)image.Height * w / image.Width);
        string cls = w > image.Width ? " class=\"pixelated\"" : "";
        b.Append("<figure><img").Append(cls)
            .Append(string.Create(CultureInfo.InvariantCulture, $" width=\"{w}\" height=\"{h}\""))
            .Append(" alt=\"").Append(Escape(caption)).Append("\" src=\"data:image/png;base64,")
            .Append(Convert.ToBase64String(Overlay.EncodePng(image)))
            .Append("\"><figcaption>").Append(Escape(caption)).Append("</figcaption></figure>\n");
    }

    private static void AppendTable(StringBuilder b, ReportTable table)
    {
        b.Append("<h2>").Append(Escape(table.Caption)).Append("</h2>\n<table class=\"metrics\">\n");
        if (table.Headers.Count > 0)
        {
            b.Append("<tr>");
            foreach (string header in table.Headers)
                b.Append("<th>").Append(Escape(header)).Append("</th>");
            b.Append("</tr>\n");
        }
        for (int r = 0; r < table.Rows.Count; r++)
        {
            var row = table.Rows[r];
            if (table.Headers.Count > 0 && row.Count != table.Headers.Count)
            {
                throw new CamEngineException(
                    $"report table row {r} has {row.Count} cells for {table.Headers.Count} headers");
            }
            b.Append("<tr>");
            foreach (string cell in row)
            {
                bool numeric = double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
                b.Append(numeric ? "<td class=\"num\">" : "<td>").Append(Escape(cell)).Append("</td>");
            }
            b.Append("</tr>\n");
        }
        if (table.Rows.Count == 0)
        {
            b.Append("<tr><td class=\"empty\" colspan=\"").Append(Math.Max(1, table.Headers.Count))
                .Append("\">no rows</td></tr>\n");
        }
        b.Append("</table>\n");
    }
}
