using CamEngine.Backends;
using CamEngine.Graph;

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
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane, n = context.Batch, count = n * plane;
        int batch = context.Plan.Rows(Reruns.Suffix);
        var maps = new float[n][];
        for (int i = 0; i < n; i++)
            maps[i] = new float[plane];
        // On an NCHW layer the feature maps that keep one position are built on the device: A_i times the one-hot
        // mask of position j (the plane x plane one-hot masks go up once; a masked feature batch never crosses the
        // bus). A layer read through another layout is masked on its (C, h, w) grid on the host and written back.
        var backend = model.Backend;
        bool onDevice = context.Grid(layer).IsIdentity;
        string name = context.Layers[layer].Output;
        float[]? identity = null;
        if (onDevice)
        {
            identity = new float[plane * plane];
            for (int j = 0; j < plane; j++)
                identity[j * plane + j] = 1f;
        }
        using var onehot = onDevice ? backend.Upload(identity!, plane, shape[1], shape[2]) : null;
        using var features = onDevice ? context.Forward[name].Reshape([n, .. shape]) : null;
        var buffer = onDevice ? null : context.Plan.Scratch(Math.Min(batch, count) * size);
        // item = image * plane + position
        for (int start = 0; start < count; start += batch)
        {
            int filled = Math.Min(batch, count - start);
            if (buffer != null)
            {
                Array.Clear(buffer, 0, filled * size);
                for (int r = 0; r < filled; r++)
                {
                    int item = start + r, i = item / plane, j = item % plane;
                    for (int k = 0; k < c; k++)
                        buffer[r * size + k * plane + j] = activations[i * size + k * plane + j];
                }
            }
            foreach (var (offset, m) in MemoryPlan.Pieces(filled, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                var rows = new int[m];
                var table = new MaskedRow[m];
                for (int r = 0; r < m; r++)
                {
                    int item = start + offset + r;
                    rows[r] = item / plane;
                    table[r] = new MaskedRow(item / plane, item % plane, -1, 1f);
                }
                ForwardPass pass;
                if (onDevice)
                {
                    using var replaced = backend.Allocate([m, .. shape]);
                    backend.MaskedInputs(features!, onehot!, null, table, replaced);
                    pass = model.ForwardFrom(context.Forward, name, replaced, rows);
                }
                else
                {
                    pass = context.ForwardFromGrid(layer, buffer.AsSpan(offset * size, m * size), m, rows);
                }
                using var _ = pass;
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
