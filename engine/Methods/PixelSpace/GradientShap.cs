namespace CamEngine.Methods;

/// <summary>
/// GradientSHAP (Lundberg and Lee, NeurIPS 2017, arXiv:1705.07874; the expected-gradients estimator), exactly as
/// Captum's <c>GradientShap</c> computes it: for each of <see cref="Samples"/> samples, the input gets Gaussian noise
/// (std <see cref="NoiseStd"/>), a baseline b is drawn from the distribution <see cref="Baselines"/> and a point on
/// the segment from b to the noisy input at a uniform random position alpha; the attribution is the mean of
/// <code>(x~ - b) * dy/dx (b + alpha (x~ - b)),   x~ = x + N(0, std^2)</code>
/// Its expectation is SHAP values under the linearized model. The sampled points go through the shared perturbation
/// batching. Draws come from <see cref="ExplainOptions.Seed"/> or are replayed from <see cref="Draws"/>. Raw: the
/// signed (C, H, W) attribution; map: max over channels of |a|.
/// </summary>
public sealed class GradientShap : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "gradientshap";

    /// <inheritdoc/>
    public override string Summary => "GradientSHAP: gradients at random points between random baselines and the noisy image";

    /// <inheritdoc/>
    public override string Paper => "Lundberg and Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017 (arXiv:1705.07874)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Gradient;

    /// <summary>Samples per image (Captum's default 5).</summary>
    public int Samples { get; init; } = 5;

    /// <summary>Standard deviation of the Gaussian noise added to the input (Captum's default 0).</summary>
    public double NoiseStd { get; init; }

    /// <summary>The baseline distribution: each sample draws one of these uniformly.</summary>
    public IReadOnlyList<InputBaselineKind> Baselines { get; init; } = [InputBaselineKind.Zero];

    /// <summary>Standard deviation, in pixels, of the blur baseline.</summary>
    public double Sigma { get; init; } = 5;

    /// <summary>Draws to replay for every image instead of drawing them; null draws from the seed.</summary>
    public GradientShapDraws? Draws { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("samples", "5", "random points per image, an integer >= 1"),
        new("std", "0", "standard deviation of the Gaussian noise added to the input, >= 0"),
        new("baselines", "zero", "the baseline distribution, baselines joined by '+': zero, mean, blur (e.g. zero+blur)"),
        new("sigma", "5", "standard deviation in pixels of the blur baseline's Gaussian, > 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values)
    {
        var baselines = Baselines;
        if (values.Raw("baselines") is { } text)
        {
            baselines = text.Split('+', StringSplitOptions.TrimEntries).Select(b =>
                Enum.TryParse<InputBaselineKind>(b, ignoreCase: true, out var k) && Enum.IsDefined(k) && !b.Any(char.IsDigit)
                    ? k
                    : throw new CamEngineException($"{Name}: parameter 'baselines' must be zero, mean or blur joined by '+', got '{text}'")).ToList();
        }
        return new GradientShap
        {
            Samples = values.Int("samples", Samples, 1), NoiseStd = values.Double("std", NoiseStd, 0), Baselines = baselines,
            Sigma = values.Double("sigma", Sigma, 0, inclusive: false), Draws = Draws,
        };
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var shape = context.Model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2], n = context.Batch, s = Samples;
        if (Baselines.Count == 0)
            throw new CamEngineException("gradientshap needs at least one baseline");
        var x = Perturbation.Inputs(context);
        var baselines = new float[n][][];
        for (int i = 0; i < n; i++)
        {
            baselines[i] = Baselines.Select(b =>
                InputBaselines.Make(b, x.AsSpan(i * size, size), shape[0], shape[1], shape[2], Sigma)).ToArray();
        }
        // Per item (image i, sample k): alpha, baseline index, noisy input.
        var alpha = new double[n * s];
        var chosen = new int[n * s];
        var noise = NoiseStd > 0 || Draws?.Noise != null ? new float[n * s][] : null;
        for (int i = 0; i < n; i++)
        {
            var rng = context.NewRandom(unchecked(0x47534850 + i));
            for (int k = 0; k < s; k++)
            {
                int item = i * s + k;
                if (Draws != null)
                {
                    if (Draws.Alpha.Length != s || Draws.Baseline.Length != s || (Draws.Noise != null && Draws.Noise.Length != s * size))
                        throw new CamEngineException($"gradientshap: replayed draws must hold {s} samples of a {size}-value input");
                    alpha[item] = Draws.Alpha[k];
                    chosen[item] = Draws.Baseline[k];
                    if (chosen[item] < 0 || chosen[item] >= Baselines.Count)
                        throw new CamEngineException($"gradientshap: replayed baseline index {chosen[item]} of {Baselines.Count}");
                    if (noise != null)
                        noise[item] = Draws.Noise?.AsSpan(k * size, size).ToArray() ?? new float[size];
                    continue;
                }
                // Captum's order: noise, then the baseline, then the position.
                if (noise != null)
                {
                    var d = noise[item] = new float[size];
                    for (int j = 0; j < size; j++)
                        d[j] = (float)(NoiseStd * Perturbation.Gaussian(rng));
                }
                chosen[item] = rng.Next(Baselines.Count);
                alpha[item] = rng.NextDouble();
            }
        }
        float Noisy(int item, int j) => x[item / s * size + j] + (noise?[item][j] ?? 0f);
        var sums = new double[n * size];
        Perturbation.InputGradients(context, n * s, item => item / s, (item, input) =>
        {
            var b = baselines[item / s][chosen[item]];
            float a = (float)alpha[item];
            for (int j = 0; j < size; j++)
                input[j] = a * Noisy(item, j) + (1 - a) * b[j];
        }, (item, g) =>
        {
            var b = baselines[item / s][chosen[item]];
            int i = item / s;
            for (int j = 0; j < size; j++)
                sums[i * size + j] += (Noisy(item, j) - b[j]) * (double)g[j] / s;
        });
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
            result.Add(PixelMaps.Make(this, context, i, sums.AsSpan(i * size, size).ToArray().Select(v => (float)v).ToArray()));
        return result;
    }
}

/// <summary>GradientSHAP's random draws for one image, to replay (e.g. those Captum made).</summary>
/// <param name="Alpha">Position on the segment of each sample (S).</param>
/// <param name="Baseline">Index into <see cref="GradientShap.Baselines"/> of each sample (S).</param>
/// <param name="Noise">Input noise of each sample (S, C, H, W); null for none.</param>
public sealed record GradientShapDraws(float[] Alpha, int[] Baseline, float[]? Noise);
