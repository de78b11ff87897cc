namespace CamEngine.Methods;

/// <summary>
/// Recipro-CAM (Byun and Lee, 2022, arXiv:2209.14074), as OpenVINO XAI builds it for CNNs
/// (<c>openvino_xai/methods/white_box/recipro_cam.py</c>): the layer's features A (C, h, w) are copied h*w times,
/// copy (i, j) keeping only position (i, j) of every channel, and the copies run through the layers after the
/// target in batches (nothing before the layer runs again); the map is each copy's score,
/// <code>L[i, j] = f( A * e_ij )</code>
/// with f the class probability, as in the paper (<c>score=target</c> gives the target's raw score, OpenVINO XAI's
/// choice for a model without a softmax). No gradients. The paper's optional 3x3 Gaussian spreading of each
/// position is not implemented; OpenVINO XAI does not use it for CNNs either.
/// </summary>
public sealed class ReciproCam : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "reciprocam";

    /// <inheritdoc/>
    public override string Summary => "Recipro-CAM: score of the layer's features kept at one position at a time (gradient-free)";

    /// <inheritdoc/>
    public override string Paper => "Byun and Lee, Recipro-CAM: Fast Gradient-free Visual Explanations for CNNs, 2022 (arXiv:2209.14074)";

    /// <summary>What the masked feature maps are scored by.</summary>
    public MaskedScore Score { get; init; } = MaskedScore.Probability;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("score", "probability", "what a masked feature map is scored by: probability (softmax of the target class, the paper's) or target"),
    ];

    private protected override string? TargetRefusal(Target target) =>
        ClassProbabilityObjective.Refusal(Score, target, Name);

    private protected override CamMethod Configure(ParameterValues values) => new ReciproCam { Score = values.Enum("score", Score) };

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Suffix;

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var model = context.Model;
        var scoring = Score == MaskedScore.Probability ? context.WithObjective(ClassProbabilityObjective.For(context, Name)) : context;
        string name = context.Layers[layer].Output;
        var shape = context.Layers[layer].Shape;
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane, n = context.Batch, count = n * plane;
        int batch = context.Plan.Rows(Reruns.Suffix);
        var buffer = context.Plan.Scratch(Math.Min(batch, count) * size);
        var maps = new float[n][];
        for (int i = 0; i < n; i++)
            maps[i] = new float[plane];
        // item = image * plane + position
        for (int start = 0; start < count; start += batch)
        {
            int filled = Math.Min(batch, count - start);
            Array.Clear(buffer, 0, filled * size);
            for (int r = 0; r < filled; r++)
            {
                int item = start + r, i = item / plane, j = item % plane;
                for (int k = 0; k < c; k++)
                    buffer[r * size + k * plane + j] = activations[i * size + k * plane + j];
            }
            foreach (var (offset, m) in MemoryPlan.Pieces(filled, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                var rows = new int[m];
                for (int r = 0; r < m; r++)
                    rows[r] = (start + offset + r) / plane;
                using var replaced = model.Backend.Upload(buffer.AsSpan(offset * size, m * size), [m, .. shape]);
                using var pass = model.ForwardFrom(context.Forward, name, replaced, rows);
                var y = model.Backend.Download(pass.Output);
                context.Plan.Record(Reruns.Suffix, m, t0);
                int classes = y.Length / m;
                for (int r = 0; r < m; r++)
                {
                    int item = start + offset + r;
                    maps[item / plane][item % plane] = scoring.Score(item / plane, y.AsSpan(r * classes, classes));
                }
            }
        }
        return new LayerMaps(maps);
    }
}
