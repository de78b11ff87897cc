using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.Metrics;

internal sealed partial class MetricEvaluator
{
    /// <summary>
    /// ROAD, remove and debias (Rong, Leemann et al., ICML 2022), with pytorch-grad-cam's semantics: for each
    /// percentile p, MoRF (most relevant first) imputes the pixels whose map value is at or above the p-th percentile
    /// t of the map (the top (100 - p) %; <c>RemoveMostRelevantFirst</c> keeps <c>map &lt; t</c>); LeRF
    /// (least relevant first) does the same on 1 - map (the bottom (100 - p) %). Percentiles interpolate linearly
    /// between order statistics, as NumPy's default. Imputation is
    /// <see cref="NoisyLinearImputation"/> on the preprocessed input, with seeded noise; the model is not
    /// retrained. The scores after imputation are compared with the score on the input; the combined score is
    /// the mean over percentiles of (LeRF - MoRF) / 2 (the original score cancels). pytorch-grad-cam scores with
    /// whatever target it is given (its tutorial: the softmax probability); the default here is the softmax
    /// probability too. All 2 x percentiles x explanations imputed inputs go through the model in batches; the
    /// imputations of a batch are solved in parallel.
    /// </summary>
    /// <param name="input">The batch (N, C, H, W) the explanations were computed on.</param>
    /// <param name="explanations">One method's explanations of that batch.</param>
    /// <param name="options">Percentiles, noise, seed, batch size, score.</param>
    /// <param name="progress">Reports imputed inputs scored.</param>
    /// <param name="cancellation">Checked between forward passes.</param>
    public RoadResult Road(
        HostTensor input, IReadOnlyList<Explanation> explanations, RoadOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new RoadOptions();
        options.ValidateRoad();
        var (c, h, w) = Check(input, explanations);
        int plane = h * w, size = c * plane;
        var percentiles = options.Percentiles.ToArray();
        int per = 2 * percentiles.Length; // MoRF at every percentile, then LeRF at every percentile
        var original = OriginalScores(input, explanations, options.Score, options.BatchSize, cancellation);
        var scores = ScoreInputs(explanations.Count * per, (i, dst) =>
        {
            int e = i / per, k = i % per;
            bool lerf = k >= percentiles.Length;
            int pi = lerf ? k - percentiles.Length : k;
            var ex = explanations[e];
            var removed = RoadMask(ex.Map.Data, percentiles[pi], lerf);
            var random = Stream(options.Seed, ex.Image, ex.TargetClass, pi, lerf ? 1 : 0);
            var imputed = NoisyLinearImputation.Impute(input.Data.AsSpan(ex.Image * size, size), c, h, w, removed,
                options.Noise, random, options.SolverTolerance);
            imputed.CopyTo(dst);
        }, i => explanations[i / per].TargetClass, options.Score, options.BatchSize, true, "road", progress, cancellation);
        var morf = new double[explanations.Count][];
        var lerfScores = new double[explanations.Count][];
        for (int e = 0; e < explanations.Count; e++)
        {
            morf[e] = scores.AsSpan(e * per, percentiles.Length).ToArray();
            lerfScores[e] = scores.AsSpan(e * per + percentiles.Length, percentiles.Length).ToArray();
        }
        return new RoadResult
        {
            Score = options.Score, Percentiles = percentiles, Original = original, MostRelevantFirst = morf,
            LeastRelevantFirst = lerfScores,
        };
    }

    /// <summary>
    /// The pixels ROAD imputes: MoRF, map &gt;= percentile(map, p); LeRF, (1 - map) &gt;= percentile(1 - map, p),
    /// with 1 - map formed in float32 as pytorch-grad-cam's <c>1 - mask</c> on a float32 tensor.
    /// </summary>
    internal static bool[] RoadMask(ReadOnlySpan<float> map, int percentile, bool leastRelevantFirst)
    {
        var values = new double[map.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = leastRelevantFirst ? 1f - map[i] : map[i];
        double threshold = Percentile(values, percentile);
        var removed = new bool[values.Length];
        for (int i = 0; i < values.Length; i++)
            removed[i] = values[i] >= threshold;
        return removed;
    }

    /// <summary>NumPy's default (linear) percentile: position p/100 (n - 1) in the sorted values, interpolated.</summary>
    internal static double Percentile(ReadOnlySpan<double> values, double p)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        double position = p / 100 * (sorted.Length - 1);
        int lo = (int)Math.Floor(position);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        double frac = position - lo;
        return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
    }
}
