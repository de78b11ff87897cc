using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Metrics;

namespace CamEngine.Reporting;

/// <summary>One chart of <c>cam eval</c>: its name (the file is eval.NAME.png), the report caption and the
/// picture.</summary>
/// <param name="Name">deletion, insertion or road.</param>
/// <param name="Caption">What the chart shows, in a sentence, with the summary numbers.</param>
/// <param name="Image">The chart.</param>
public sealed record MetricChart(string Name, string Caption, RgbImage Image)
{
    /// <summary>The chart's file name, eval.NAME.png.</summary>
    public string FileName => $"eval.{Name}.png";
}

/// <summary>One method's curve results, as <see cref="MetricCharts.Build"/> draws them (null: not measured).</summary>
/// <param name="Method">The method's name.</param>
/// <param name="Deletion">Its deletion result.</param>
/// <param name="Insertion">Its insertion result.</param>
/// <param name="Road">Its ROAD result.</param>
public sealed record MethodCurves(string Method, DeletionInsertionResult? Deletion, DeletionInsertionResult? Insertion, RoadResult? Road);

/// <summary>
/// The curves of <c>cam eval</c> as <see cref="LineChart"/>s: deletion and insertion (the class score against the
/// fraction of pixels removed or inserted, averaged over the images point by point, one series per method) and
/// ROAD (the score after imputing the p% most and least relevant pixels, averaged over the images, two series per
/// method: MoRF in the method's colour, LeRF in a lighter tint of it).
/// </summary>
public static class MetricCharts
{
    /// <summary>The charts of the metrics measured (deletion, insertion, road; in that order).</summary>
    /// <param name="results">Each method's curves, in legend order.</param>
    /// <param name="score">The score the metrics read (the y axis).</param>
    /// <param name="images">Images averaged over (for the captions).</param>
    public static IReadOnlyList<MetricChart> Build(IReadOnlyList<MethodCurves> results, MetricScore score, int images)
    {
        ArgumentNullException.ThrowIfNull(results);
        var charts = new List<MetricChart>();
        string scoreName = score == MetricScore.Softmax ? "softmax probability" : "logit";
        string over = images == 1 ? "1 image" : string.Create(CultureInfo.InvariantCulture, $"{images} images");
        foreach (bool insertion in new[] { false, true })
        {
            var curves = results
                .Select((r, k) => (r.Method, Index: k, Result: insertion ? r.Insertion : r.Deletion))
                .Where(c => c.Result != null)
                .ToList();
            if (curves.Count == 0)
                continue;
            var series = curves.Select(c => new ChartSeries(
                string.Create(CultureInfo.InvariantCulture, $"{c.Method} (AUC {c.Result!.MeanAuc:F4})"),
                MeanCurve(c.Result.Curves)) { Color = MethodColor(c.Index) }).ToList();
            string name = insertion ? "insertion" : "deletion";
            string verb = insertion ? "inserted" : "removed";
            var image = LineChart.Render(series, new LineChartOptions
            {
                Title = insertion ? "Insertion (higher AUC is better)" : "Deletion (lower AUC is better)",
                XLabel = $"fraction of pixels {verb} (most relevant first)",
                YLabel = scoreName,
                XMin = 0, XMax = 1,
            });
            string aucs = string.Join(", ", curves.Select(c =>
                string.Create(CultureInfo.InvariantCulture, $"{c.Method} {c.Result!.MeanAuc:F4}")));
            string caption = $"{(insertion ? "Insertion" : "Deletion")}: mean {scoreName} of the explained class vs the "
                             + $"fraction of pixels {verb}, most relevant first, over {over}; AUC "
                             + $"({(insertion ? "higher" : "lower")} is better): {aucs}";
            charts.Add(new MetricChart(name, caption, image));
        }

        var roads = results.Select((r, k) => (r.Method, Index: k, r.Road)).Where(c => c.Road != null).ToList();
        if (roads.Count > 0)
        {
            var series = new List<ChartSeries>();
            foreach (var (method, index, road) in roads)
            {
                var color = MethodColor(index);
                series.Add(new ChartSeries($"{method} MoRF", MeanRoad(road!, road!.MostRelevantFirst)) { Color = color });
                series.Add(new ChartSeries($"{method} LeRF", MeanRoad(road, road.LeastRelevantFirst)) { Color = Tint(color) });
            }
            var image = LineChart.Render(series, new LineChartOptions
            {
                Title = "ROAD (low MoRF and high LeRF are better)",
                XLabel = "percentile of pixels imputed",
                YLabel = scoreName,
                XMin = 0, XMax = 100,
            });
            string combined = string.Join(", ", roads.Select(c =>
                string.Create(CultureInfo.InvariantCulture, $"{c.Method} {c.Road!.MeanCombined:F4}")));
            string caption = $"ROAD: mean {scoreName} of the explained class after imputing the p% most relevant "
                             + $"(MoRF, dark) and least relevant (LeRF, light) pixels, over {over}; combined score "
                             + $"(higher is better): {combined}";
            charts.Add(new MetricChart("road", caption, image));
        }
        return charts;
    }

    /// <summary>A method's line colour: <see cref="LineChart.Palette"/> at its index (cycled).</summary>
    internal static (byte R, byte G, byte B) MethodColor(int index) => LineChart.Palette[index % LineChart.Palette.Count];

    /// <summary>Halfway to white: the LeRF line of a method.</summary>
    internal static (byte R, byte G, byte B) Tint((byte R, byte G, byte B) c) =>
        ((byte)((c.R + 255 + 1) / 2), (byte)((c.G + 255 + 1) / 2), (byte)((c.B + 255 + 1) / 2));

    /// <summary>The point-by-point mean of the images' curves (they share their fractions: one input size, one
    /// step count).</summary>
    internal static List<(double X, double Y)> MeanCurve(IReadOnlyList<PerturbationCurve> curves)
    {
        var fractions = curves[0].Fractions;
        if (curves.Any(c => c.Fractions.Length != fractions.Length))
            throw new CamEngineException("the images' deletion/insertion curves have different lengths");
        return fractions.Select((x, k) => (x, curves.Average(c => c.Scores[k]))).ToList();
    }

    /// <summary>The mean over images of the scores after imputation, per percentile.</summary>
    internal static List<(double X, double Y)> MeanRoad(RoadResult road, double[][] scores) =>
        road.Percentiles.Select((p, k) => ((double)p, scores.Average(s => s[k]))).ToList();
}
