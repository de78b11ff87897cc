using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.Metrics;

internal sealed partial class MetricEvaluator
{
    /// <summary>
    /// Cascading model-parameter randomization (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).
    /// A step is every graph node that owns parameters (conv, gemm, batch norm, a binary op with a constant
    /// operand), taken from the last in topological order (the output layer) to the first; at step k the top k
    /// of them have been re-drawn, cumulatively. Each parameter tensor is re-drawn from a normal distribution
    /// with the tensor's own mean and standard deviation (so activations keep their scale; a constant tensor
    /// such as zero biases stays constant), seeded by <see cref="SanityCheckOptions.Seed"/> and the step. After
    /// each step the maps are recomputed for the same classes as the original explanations (the randomized
    /// model's top-1 is not used) and compared with the original final maps by Spearman's rank correlation
    /// (<see cref="RankCorrelation.Spearman"/>). The original weights are put back when the call returns, also
    /// when it throws or is cancelled. Top-k targets (several maps per image) are not supported.
    /// </summary>
    /// <param name="input">The images (N, C, H, W).</param>
    /// <param name="method">The method checked.</param>
    /// <param name="explainOptions">Layers, target, convention and other options of the method (default: none).</param>
    /// <param name="options">The seed.</param>
    /// <param name="progress">Reports randomization steps finished.</param>
    /// <param name="cancellation">Checked between steps.</param>
    public SanityCheckResult SanityCheck(
        HostTensor input, CamMethod method, ExplainOptions? explainOptions = null, SanityCheckOptions? options = null,
        IProgress<MetricProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(method);
        explainOptions ??= new ExplainOptions();
        options ??= new SanityCheckOptions();
        var model = Explainer.Model;
        var original = Explainer.Explain(input, method, explainOptions);
        int n = input.Shape[0];
        if (original.Count != n)
            throw new CamEngineException(
                $"the sanity check needs one map per image; the target {explainOptions.Target} gives {original.Count} for {n} images");
        var fixedOptions = original.All(e => e.TargetClass >= 0)
            ? WithTarget(explainOptions, Target.PerImage(original.OrderBy(e => e.Image).Select(e => e.TargetClass).ToArray()))
            : explainOptions;
        var layers = model.Graph.Nodes.Where(node => node.Params.Count > 0).Reverse().ToList();
        var steps = new List<SanityStep>
        {
            new(0, "", [], original.Select(e => RankCorrelation.Spearman(e.Map.Data, e.Map.Data)).ToArray()),
        };
        progress?.Report(new MetricProgress("sanity", 0, layers.Count));
        var saved = new Dictionary<string, float[]>(StringComparer.Ordinal);
        try
        {
            for (int s = 0; s < layers.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                var drawn = new List<string>();
                foreach (string name in layers[s].Params.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
                {
                    if (saved.ContainsKey(name))
                        continue;
                    using (model.Backend.SyncRoot.EnterScope())
                    {
                        var values = model.Backend.Download(model.Parameter(name));
                        saved[name] = values;
                        model.SetParameter(name, Redraw(values, Stream(options.Seed, s, drawn.Count)));
                    }
                    drawn.Add(name);
                }
                var maps = Explainer.Explain(input, method, fixedOptions);
                var rho = new double[original.Count];
                for (int i = 0; i < original.Count; i++)
                {
                    var now = maps.First(m => m.Image == original[i].Image);
                    rho[i] = RankCorrelation.Spearman(original[i].Map.Data, now.Map.Data);
                }
                steps.Add(new SanityStep(s + 1, layers[s].Name, drawn, rho));
                progress?.Report(new MetricProgress("sanity", s + 1, layers.Count));
            }
        }
        finally
        {
            using (model.Backend.SyncRoot.EnterScope())
            {
                foreach (var (name, values) in saved)
                    model.SetParameter(name, values);
            }
        }
        return new SanityCheckResult { Method = method.Name, Original = original, Steps = steps };
    }

    /// <summary>Draws values from N(mean, std^2) of <paramref name="values"/> (population std, in double).</summary>
    internal static float[] Redraw(float[] values, Random random)
    {
        double mean = 0;
        foreach (float v in values)
            mean += v;
        mean /= values.Length;
        double var = 0;
        foreach (float v in values)
            var += (v - mean) * (v - mean);
        double std = Math.Sqrt(var / values.Length);
        var drawn = new float[values.Length];
        GaussianNoise.Fill(random, drawn, std);
        for (int i = 0; i < drawn.Length; i++)
            drawn[i] = (float)(drawn[i] + mean);
        return drawn;
    }

    private static ExplainOptions WithTarget(ExplainOptions o, Target target) => new()
    {
        Layers = o.Layers, Target = target, Convention = o.Convention, MemoryBudgetBytes = o.MemoryBudgetBytes,
        Fusion = o.Fusion, AugSmooth = o.AugSmooth, EigenSmooth = o.EigenSmooth,
        PerturbationBatch = o.PerturbationBatch, Seed = o.Seed, Layout = o.Layout,
    };
}
