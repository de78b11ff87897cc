using System.Globalization;

namespace CamEngine.Metrics;

/// <summary>
/// A ground-truth box in pixel coordinates of the map (the model's input resolution): x is the column, y the
/// row, and the box covers the pixels with <c>X0 &lt;= x &lt;= X1</c> and <c>Y0 &lt;= y &lt;= Y1</c> (both ends
/// included, pixel centres at integer coordinates).
/// </summary>
/// <param name="X0">Left column.</param>
/// <param name="Y0">Top row.</param>
/// <param name="X1">Right column (inclusive).</param>
/// <param name="Y1">Bottom row (inclusive).</param>
public readonly record struct PixelBox(double X0, double Y0, double X1, double Y1)
{
    /// <summary>Distance from pixel (x, y) to the nearest point of the box; 0 inside.</summary>
    public double Distance(int x, int y)
    {
        double dx = Math.Max(Math.Max(X0 - x, 0), x - X1);
        double dy = Math.Max(Math.Max(Y0 - y, 0), y - Y1);
        return Math.Sqrt(dx * dx + dy * dy);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"({X0},{Y0})-({X1},{Y1})");
}
