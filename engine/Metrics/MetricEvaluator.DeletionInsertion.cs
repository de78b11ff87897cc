using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.Metrics;

internal sealed partial class MetricEvaluator
{
    /// <summary>
    /// Deletion (Petsiuk et al., "RISE", BMVC 2018): pixels are ranked by the map (highest first; equal values by
    /// row-major pixel index, lower first) and replaced, all channels together, by the baseline in
    /// steps of ceil(H W / steps) pixels; the curve is the class score against the fraction deleted, from the input
    /// (fraction 0) to the whole baseline (fraction 1). A faithful map makes the score fall fast: lower area is
    /// better. Every point of every explanation goes through the model in batches.
    /// </summary>
    /// <param name="input">The batch (N, C, H, W) the explanations were computed on.</param>
    /// <param name="explanations">One method's explanations of that batch.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellation">Checked between forward passes.</param>
    public DeletionInsertionResult Deletion(
        HostTensor input, IReadOnlyList<Explanation> explanations, DeletionInsertionOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellation = default) =>
        Curves(input, explanations, options ?? new DeletionInsertionOptions(), false, progress, cancellation);

    /// <summary>
    /// Insertion (RISE): the mirror of <see cref="Deletion"/>: starting from the baseline, the input's pixels are
    /// put back in the map's order; the curve runs from the baseline (fraction 0) to the input (fraction 1). A
    /// faithful map makes the score rise fast: higher area is better.
    /// </summary>
    /// <param name="input">The batch (N, C, H, W) the explanations were computed on.</param>
    /// <param name="explanations">One method's explanations of that batch.</param>
    /// <param name="options">Steps, baseline, batch size, score.</param>
    /// <param name="progress">Reports perturbed inputs scored.</param>
    /// <param name="cancellation">Checked between forward passes.</param>
    public DeletionInsertionResult Insertion(
        HostTensor input, IReadOnlyList<Explanation> explanations, DeletionInsertionOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellation = default) =>
        Curves(input, explanations, options ?? new DeletionInsertionOptions(), true, progress, cancellation);

    /// <summary>The pixel counts of the curve's points: 0, s, 2s, ... with s = ceil(P / steps), the last equal to P.</summary>
    internal static int[] CurveCounts(int pixels, int steps)
    {
        int step = (pixels + steps - 1) / steps;
        var counts = new List<int> { 0 };
        while (counts[^1] < pixels)
            counts.Add(Math.Min(pixels, counts[^1] + step));
        return [.. counts];
    }

    /// <summary>Pixel indices from the highest map value to the lowest; equal values keep index order.</summary>
    internal static int[] RankPixels(ReadOnlySpan<float> map)
    {
        var values = map.ToArray();
        var order = new int[values.Length];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            int c = values[b].CompareTo(values[a]);
            return c != 0 ? c : a.CompareTo(b);
        });
        return order;
    }

    /// <summary>Area under (x, y) by the trapezoid rule.</summary>
    internal static double Trapezoid(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        double area = 0;
        for (int k = 1; k < x.Length; k++)
            area += (x[k] - x[k - 1]) * (y[k] + y[k - 1]) / 2;
        return area;
    }

    private DeletionInsertionResult Curves(
        HostTensor input, IReadOnlyList<Explanation> explanations, DeletionInsertionOptions options, bool insertion,
        IProgress<MetricProgress>? progress, CancellationToken cancellation)
    {
        options.ValidateCurve();
        var (c, h, w) = Check(input, explanations);
        int plane = h * w, size = c * plane;
        var counts = CurveCounts(plane, options.Steps);
        int points = counts.Length;
        var ranks = explanations.Select(e => RankPixels(e.Map.Data)).ToArray();
        // Baselines per image (not per explanation): several explanations of one image share it.
        var baselines = new Dictionary<int, float[]>();
        foreach (int image in explanations.Select(e => e.Image).Distinct())
            baselines[image] = Baseline(input.Data.AsSpan(image * size, size), c, h, w, options);
        var scores = ScoreInputs(explanations.Count * points, (i, dst) =>
        {
            int e = i / points, n = counts[i % points];
            ReadOnlySpan<float> x = input.Data.AsSpan(explanations[e].Image * size, size);
            ReadOnlySpan<float> b = baselines[explanations[e].Image];
            // Deletion: start from x, the first n ranked pixels from b. Insertion: the reverse.
            (insertion ? b : x).CopyTo(dst);
            var from = insertion ? x : b;
            var order = ranks[e];
            for (int r = 0; r < n; r++)
            {
                int p = order[r];
                for (int ch = 0; ch < c; ch++)
                    dst[ch * plane + p] = from[ch * plane + p];
            }
        }, i => explanations[i / points].TargetClass, options.Score, options.BatchSize, false,
            insertion ? "insertion" : "deletion", progress, cancellation);
        var fractions = counts.Select(n => (double)n / plane).ToArray();
        var curves = new PerturbationCurve[explanations.Count];
        for (int e = 0; e < curves.Length; e++)
        {
            var s = scores.AsSpan(e * points, points).ToArray();
            curves[e] = new PerturbationCurve(explanations[e].Image, explanations[e].TargetClass, fractions, s,
                Trapezoid(fractions, s));
        }
        return new DeletionInsertionResult { Insertion = insertion, Score = options.Score, Curves = curves };
    }

    /// <summary>The baseline image (C*H*W) of one input image.</summary>
    internal static float[] Baseline(ReadOnlySpan<float> x, int c, int h, int w, DeletionInsertionOptions options)
    {
        int plane = h * w;
        var b = new float[c * plane];
        switch (options.Baseline)
        {
            case PerturbationBaseline.Zeros:
                break;
            case PerturbationBaseline.Mean:
                for (int ch = 0; ch < c; ch++)
                {
                    double sum = 0;
                    foreach (float v in x.Slice(ch * plane, plane))
                        sum += v;
                    b.AsSpan(ch * plane, plane).Fill((float)(sum / plane));
                }
                break;
            case PerturbationBaseline.Blur:
                for (int ch = 0; ch < c; ch++)
                    GaussianBlur(x.Slice(ch * plane, plane), b.AsSpan(ch * plane, plane), h, w, options.BlurSigma);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(options), options.Baseline, "unknown baseline");
        }
        return b;
    }

    /// <summary>Separable Gaussian blur of one (H, W) plane: radius ceil(3 sigma), normalized weights, borders
    /// replicated; rows first, then columns, in double.</summary>
    internal static void GaussianBlur(ReadOnlySpan<float> src, Span<float> dst, int h, int w, double sigma)
    {
        int radius = (int)Math.Ceiling(3 * sigma);
        var k = new double[2 * radius + 1];
        double total = 0;
        for (int d = -radius; d <= radius; d++)
            total += k[d + radius] = Math.Exp(-d * d / (2 * sigma * sigma));
        for (int j = 0; j < k.Length; j++)
            k[j] /= total;
        var rows = new double[h * w];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int d = -radius; d <= radius; d++)
                    s += k[d + radius] * src[y * w + Math.Clamp(x + d, 0, w - 1)];
                rows[y * w + x] = s;
            }
        }
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int d = -radius; d <= radius; d++)
                    s += k[d + radius] * rows[Math.Clamp(y + d, 0, h - 1) * w + x];
                dst[y * w + x] = (float)s;
            }
        }
    }
}
