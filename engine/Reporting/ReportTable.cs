namespace CamEngine.Reporting;

/// <summary>A table of text for a <see cref="ReportContent"/>: column headers and rows with one cell per header.
/// Either may be empty.</summary>
public sealed class ReportTable
{
    /// <summary>The heading shown above the table.</summary>
    public string Caption { get; init; } = "Metrics";

    /// <summary>Column headers.</summary>
    public IReadOnlyList<string> Headers { get; init; } = [];

    /// <summary>Rows of cells; each row has as many cells as there are headers.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Rows { get; init; } = [];
}
