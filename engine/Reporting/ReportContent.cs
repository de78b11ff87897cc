using CamEngine.Imaging;

namespace CamEngine.Reporting;

/// <summary>
/// What an <see cref="HtmlReport"/> shows, top to bottom: the title, the run's facts (ordered key/value pairs,
/// e.g. the <see cref="RunManifest"/> fields), one block per explained image (the input and each method's
/// overlay), an optional table (e.g. metrics: any headers and rows of text), and charts (e.g. deletion/insertion
/// curves from <see cref="LineChart"/>). Every string is HTML-escaped when written.
/// </summary>
public sealed class ReportContent
{
    /// <summary>The page title and top heading.</summary>
    public string Title { get; init; } = "CamEngine report";

    /// <summary>Facts about the run, shown as a two-column table in this order.</summary>
    public IReadOnlyList<(string Key, string Value)> Info { get; init; } = [];

    /// <summary>One block per explained image.</summary>
    public IReadOnlyList<ReportImage> Images { get; init; } = [];

    /// <summary>A table of text (e.g. metrics per method); null shows no table.</summary>
    public ReportTable? Table { get; init; }

    /// <summary>Pictures with captions (e.g. deletion and insertion curves), shown after the table.</summary>
    public IReadOnlyList<(string Caption, RgbImage Image)> Charts { get; init; } = [];
}
