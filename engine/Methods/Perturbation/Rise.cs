using CamEngine.Backends;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// RISE, Randomized Input Sampling for Explanation (Petsiuk, Das and Saenko, BMVC 2018, arXiv:1806.07421), as the
/// authors' code (eclique/RISE) computes it: N random masks M_i, each an s x s grid of cells kept with probability p,
/// upsampled bilinearly to (s + 1) * ceil(H / s) pixels (half-pixel centres, mirrored borders, as skimage's
/// <c>resize(order=1, mode='reflect')</c>) and cropped at a random shift of up to one cell; then
/// <code>S = (1 / (N p)) sum_i f(x * M_i) M_i</code>
/// with f the class probability (the paper's; <c>score=target</c> uses the target's score instead). The masked
/// inputs go through the shared perturbation batching, a chunk of masks at a time, so memory stays bounded for
/// thousands of masks. Masks are drawn from <see cref="ExplainOptions.Seed"/> (one stream per mask, so the
/// chunking does not change them) or replayed from <see cref="Masks"/>. Raw: S (H, W); map: ReLU, then min-max.
/// </summary>
public sealed class Rise : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "rise";

    /// <inheritdoc/>
    public override string Summary => "RISE: mean of random smooth masks weighted by the class probability of the masked image";

    /// <inheritdoc/>
    public override string Paper => "Petsiuk et al., RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC 2018 (arXiv:1806.07421)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Forward;

    /// <summary>Number of masks N.</summary>
    public int MaskCount { get; init; } = 4000;

    /// <summary>Cells per side of the random grid (the paper's s).</summary>
    public int Cells { get; init; } = 7;

    /// <summary>Probability that a cell is kept (p).</summary>
    public double KeepProbability { get; init; } = 0.5;

    /// <summary>What the masked inputs are scored by.</summary>
    public MaskedScore Score { get; init; } = MaskedScore.Probability;

    /// <summary>Masks (N, H, W) to replay instead of drawing them; null draws from the seed.</summary>
    public float[]? Masks { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("masks", "4000", "number of random masks N, an integer >= 1"),
        new("cells", "7", "cells per side of each mask's random grid (the paper's s), an integer >= 1"),
        new("p", "0.5", "probability that a grid cell is kept, in (0, 1]"),
        new("score", "probability", "what a masked image is scored by: probability (softmax of the target class, the paper's) or target"),
    ];

    private protected override string? TargetRefusal(Target target) =>
        ClassProbabilityObjective.Refusal(Score, target, Name);

    private protected override CamMethod Configure(ParameterValues values)
    {
        double p = values.Double("p", KeepProbability, 0, inclusive: false);
        if (p > 1)
            throw new CamEngineException($"rise: parameter 'p' must be in (0, 1], got {p}");
        return new Rise
        {
            MaskCount = values.Int("masks", MaskCount, 1), Cells = values.Int("cells", Cells, 1), KeepProbability = p,
            Score = values.Enum("score", Score), Masks = Masks,
        };
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var shape = context.Model.Graph.InputShape;
        int ch = shape[0], h = shape[1], w = shape[2], plane = h * w, size = ch * plane, n = context.Batch;
        int count = Masks != null ? Masks.Length / plane : MaskCount;
        if (Masks != null && Masks.Length != count * plane)
            throw new CamEngineException($"rise: {Masks.Length} replayed mask values are not a whole number of {h}x{w} masks");
        var scoring = Score == MaskedScore.Probability ? context.WithObjective(ClassProbabilityObjective.For(context, Name)) : context;
        var x = Perturbation.Inputs(context);
        var sums = new double[n * plane];
        int chunk = Math.Max(64, 4 * context.Plan.Rows(Reruns.Forward));
        var masks = new float[Math.Min(chunk, count) * plane];
        for (int start = 0; start < count; start += chunk)
        {
            int m = Math.Min(chunk, count - start);
            for (int k = 0; k < m; k++)
            {
                var mask = masks.AsSpan(k * plane, plane);
                if (Masks != null)
                    Masks.AsSpan((start + k) * plane, plane).CopyTo(mask);
                else
                    DrawMask(context.NewRandom(unchecked(0x52495345 + start + k)), Cells, KeepProbability, h, w, mask);
            }
            // item = image * m + mask: the chunk's masks go up once (shared by every image), the masked batches are
            // built on the device.
            using var deviceMasks = context.Model.Backend.Upload(masks.AsSpan(0, m * plane), m, h, w);
            var scores = DeviceMasked.Scores(scoring, deviceMasks, row => masks.AsSpan(row * plane, plane), x, n * m,
                item => new MaskedRow(item / m, item % m, -1, 1f));
            for (int i = 0; i < n; i++)
            {
                var s = sums.AsSpan(i * plane, plane);
                for (int k = 0; k < m; k++)
                {
                    double f = scores[i * m + k];
                    var mask = masks.AsSpan(k * plane, plane);
                    for (int j = 0; j < plane; j++)
                        s[j] += f * mask[j];
                }
            }
        }
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            var raw = new float[plane];
            for (int j = 0; j < plane; j++)
                raw[j] = (float)(sums[i * plane + j] / count / KeepProbability);
            result.Add(Occlusion.PixelExplanation(this, context, i, new HostTensor([h, w], raw)));
        }
        return result;
    }

    /// <summary>One RISE mask (H, W) into <paramref name="mask"/>: an s x s grid of Bernoulli(p) cells, bilinear
    /// upsampling to (s + 1) * cell pixels per axis with half-pixel centres and mirrored borders, cropped at a
    /// random shift in [0, cell).</summary>
    internal static void DrawMask(Random rng, int s, double p, int height, int width, Span<float> mask)
    {
        var grid = new float[s * s];
        for (int j = 0; j < grid.Length; j++)
            grid[j] = rng.NextDouble() < p ? 1f : 0f;
        int cellY = (height + s - 1) / s, cellX = (width + s - 1) / s;
        int shiftY = rng.Next(cellY), shiftX = rng.Next(cellX);
        var (y0, y1, ty) = Axis(s, cellY, shiftY, height);
        var (x0, x1, tx) = Axis(s, cellX, shiftX, width);
        for (int a = 0; a < height; a++)
        {
            for (int b = 0; b < width; b++)
            {
                double fa = ty[a], fb = tx[b];
                mask[a * width + b] = (float)(
                    (1 - fa) * (1 - fb) * grid[y0[a] * s + x0[b]] + (1 - fa) * fb * grid[y0[a] * s + x1[b]]
                    + fa * (1 - fb) * grid[y1[a] * s + x0[b]] + fa * fb * grid[y1[a] * s + x1[b]]);
            }
        }
    }

    // For each output pixel of the cropped axis: the two grid indices (mirrored at the borders) and the weight of
    // the second. Up-sampled position u = shift + j samples grid coordinate (u + 0.5) * s / ((s + 1) cell) - 0.5.
    private static (int[] Lo, int[] Hi, double[] T) Axis(int s, int cell, int shift, int size)
    {
        var lo = new int[size];
        var hi = new int[size];
        var t = new double[size];
        double scale = (double)s / ((s + 1) * cell);
        for (int j = 0; j < size; j++)
        {
            double g = (shift + j + 0.5) * scale - 0.5;
            int f = (int)Math.Floor(g);
            t[j] = g - f;
            lo[j] = Mirror(f, s);
            hi[j] = Mirror(f + 1, s);
        }
        return (lo, hi, t);
    }

    private static int Mirror(int i, int s) => s == 1 ? 0 : i < 0 ? -i : i > s - 1 ? 2 * (s - 1) - i : i;
}
