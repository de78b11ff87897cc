namespace CamEngine.Imaging;

/// <summary>One line of a <see cref="LineChart"/>: a legend name and its (x, y) points, joined in order.</summary>
/// <param name="Name">The legend entry.</param>
/// <param name="Points">The points, in drawing order; all finite, at least one.</param>
internal sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points)
{
    /// <summary>The line colour; null takes the colour of <see cref="LineChart.Palette"/> at the series index.</summary>
    public (byte R, byte G, byte B)? Color { get; init; }
}
