namespace CamEngine.Imaging;

/// <summary>Size, texts and axis ranges of a <see cref="LineChart"/>.</summary>
internal sealed record LineChartOptions
{
    /// <summary>The title above the plot (drawn at twice the font size).</summary>
    public string Title { get; init; } = "";

    /// <summary>The x axis title, under the tick labels.</summary>
    public string XLabel { get; init; } = "";

    /// <summary>The y axis title, left of the tick labels, reading upwards.</summary>
    public string YLabel { get; init; } = "";

    /// <summary>Image width in pixels (at least <see cref="LineChart.MinWidth"/>).</summary>
    public int Width { get; init; } = 640;

    /// <summary>Image height in pixels (at least <see cref="LineChart.MinHeight"/>).</summary>
    public int Height { get; init; } = 400;

    /// <summary>Left end of the x axis; null: the data's minimum rounded down to a tick.</summary>
    public double? XMin { get; init; }

    /// <summary>Right end of the x axis; null: the data's maximum rounded up to a tick.</summary>
    public double? XMax { get; init; }

    /// <summary>Bottom of the y axis; null: the data's minimum rounded down to a tick.</summary>
    public double? YMin { get; init; }

    /// <summary>Top of the y axis; null: the data's maximum rounded up to a tick.</summary>
    public double? YMax { get; init; }

    /// <summary>Line width in pixels, in [1, 8].</summary>
    public float LineWidth { get; init; } = 2;
}
