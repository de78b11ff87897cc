using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Finer-CAM (Zhang et al., CVPR 2025, arXiv:2501.11309): Grad-CAM of a contrastive score that subtracts the
/// classes most similar to the target, so the map shows what tells the class apart from its neighbours.
/// Comparison classes D: the <see cref="Comparisons"/> classes whose logits are nearest the target's.
/// <list type="bullet">
/// <item>pytorch-grad-cam and the paper (default; pytorch-grad-cam's <c>FinerWeightedTarget</c>, alpha = 1):
/// <c>y = sum_{d in D} p_d (y_c - alpha y_d) / (sum_{d in D} p_d + 1e-9)</c>, p = softmax of all logits;
/// the gradient flows through p as well.</item>
/// <item>TorchCAM: <c>y = y_c - gamma mean_{d in D} y_d</c>, gamma = 0.6.</item>
/// </list>
/// With alpha = 0 (or gamma = 0) it is Grad-CAM.
/// </summary>
public sealed class FinerCam : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "finercam";

    /// <inheritdoc/>
    public override string Summary => "Finer-CAM: Grad-CAM of the target score minus its most similar classes' scores";

    /// <inheritdoc/>
    public override string Paper => "Zhang et al., Finer-CAM, CVPR 2025 (arXiv:2501.11309)";

    /// <inheritdoc/>
    public override bool UsesLayers => true;

    /// <summary>Weight of the comparison scores (alpha; TorchCAM's gamma); null means 1 (pytorch-grad-cam) or 0.6 (TorchCAM).</summary>
    public float? Alpha { get; init; }

    /// <summary>How many nearest classes to compare with (pytorch-grad-cam's ranks 1, 2, 3).</summary>
    public int Comparisons { get; init; } = 3;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("alpha", "auto", "weight of the comparison scores (TorchCAM's gamma); auto is 1, or 0.6 under --convention torchcam"),
        new("comparisons", "3", "how many classes with the nearest logits to compare with, an integer >= 1"),
    ];

    private protected override string? TargetRefusal(Target target) =>
        target.NamesOutputClass
            ? null
            : "Finer-CAM contrasts a class's logit with the nearest classes' logits, so it needs a class target "
              + "(top1, an index, topK, softmax or one index per image)";

    private protected override CamMethod Configure(ParameterValues values)
    {
        double? alpha = values.OptionalDouble("alpha", Alpha, double.NegativeInfinity, inclusive: true);
        return new FinerCam { Alpha = (float?)alpha, Comparisons = values.Int("comparisons", Comparisons, 1) };
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var outputs = context.Model.Backend.Download(context.Forward.Output);
        int k = outputs.Length / context.Batch;
        var similar = new int[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
        {
            var row = outputs.AsSpan(i * k, k).ToArray();
            int c = context.Classes[i];
            if (c < 0 || c >= k)
                throw new UnsupportedTargetException($"{Name}: row {i} has no class among the model's {k} outputs to contrast");
            similar[i] = Enumerable.Range(0, k).Where(j => j != c)
                .OrderBy(j => Math.Abs(row[j] - row[c])).ThenBy(j => j).Take(Comparisons).ToArray();
        }
        bool torchCam = context.Convention == Convention.TorchCam;
        var objective = new FinerObjective(context.Classes, similar, Alpha ?? (torchCam ? 0.6f : 1f), torchCam);
        var cams = new GradCam().Run(context.WithObjective(objective));
        return cams.Select(e => new Explanation
        {
            Image = e.Image, Method = Name, TargetClass = e.TargetClass, Score = e.Score, Layers = e.Layers,
            Raw = e.Raw, Map = e.Map, Weights = e.Weights,
        }).ToList();
    }
}

/// <summary>Finer-CAM's contrastive score and its exact gradient with respect to the logits.</summary>
internal sealed class FinerObjective(int[] classes, int[][] comparisons, float alpha, bool meanDifference) : ScoreObjective
{
    public override float Score(int image, ReadOnlySpan<float> outputRow)
    {
        int c = classes[image];
        var d = comparisons[image];
        if (meanDifference)
        {
            double mean = 0;
            foreach (int j in d)
                mean += outputRow[j];
            return (float)(outputRow[c] - alpha * mean / d.Length);
        }
        var p = Softmax(outputRow);
        double num = 0, den = 0;
        foreach (int j in d)
        {
            num += p[j] * (outputRow[c] - alpha * (double)outputRow[j]);
            den += p[j];
        }
        return (float)(num / (den + 1e-9));
    }

    public override void Gradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient)
    {
        gradient.Clear();
        int c = classes[image];
        var d = comparisons[image];
        if (meanDifference)
        {
            gradient[c] = 1f;
            foreach (int j in d)
                gradient[j] -= alpha / d.Length;
            return;
        }
        // f = N / D, N = sum_j p_j (y_c - alpha y_j), D = sum_j p_j + 1e-9, dp_j/dy_m = p_j (delta_jm - p_m).
        var p = Softmax(outputRow);
        double n = 0, s = 0;
        foreach (int j in d)
        {
            n += p[j] * (outputRow[c] - alpha * (double)outputRow[j]);
            s += p[j];
        }
        double den = s + 1e-9;
        var inD = new bool[outputRow.Length];
        foreach (int j in d)
            inD[j] = true;
        for (int m = 0; m < outputRow.Length; m++)
        {
            double dn = -p[m] * n + (m == c ? s : 0);
            double ds = -p[m] * s;
            if (inD[m])
            {
                dn += p[m] * (outputRow[c] - alpha * (double)outputRow[m]) - alpha * p[m];
                ds += p[m];
            }
            gradient[m] = (float)((dn * den - n * ds) / (den * den));
        }
    }

    private static double[] Softmax(ReadOnlySpan<float> row) => StableSoftmax.Probabilities(row);
}
