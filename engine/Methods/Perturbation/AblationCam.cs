namespace CamEngine.Methods;

/// <summary>
/// Ablation-CAM (Desai and Ramaswamy, WACV 2020), as pytorch-grad-cam implements it:
/// <code>w_k = (y - y_k) / y;   L = ReLU(sum_k w_k A_k)</code>
/// where y_k is the target score with channel k of the layer ablated. Ablation sets the channel to 0 when the
/// image's activations have minimum 0 (after a ReLU), otherwise to <c>min(A) - 1e7</c> (pytorch-grad-cam's
/// choice for signed activations; it compounds that value across a batch, here each ablation uses the image's
/// own minimum). Only the layers after the target run again,
/// as many ablations per pass as the call's <see cref="MemoryPlan"/> gives forwards from a layer. A channel that is already all zeros is
/// not re-run: ablating it to 0 changes nothing, so its weight is exactly 0. Dividing by y flips the sign when
/// the score is negative (as in pytorch-grad-cam).
/// </summary>
public sealed class AblationCam : LayerMapMethod
{
    /// <summary>pytorch-grad-cam's offset below the minimum for signed activations.</summary>
    public const float AblationOffset = 1e7f;

    /// <inheritdoc/>
    public override string Name => "ablationcam";

    /// <inheritdoc/>
    public override string Summary => "Ablation-CAM: channels weighted by the score drop when each is zeroed";

    /// <inheritdoc/>
    public override string Paper => "Desai and Ramaswamy, Ablation-CAM, WACV 2020";

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Suffix;

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var model = context.Model;
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane, n = context.Batch;
        var baseline = new float[n];
        var outputs = model.Backend.Download(context.Forward.Output);
        int classes = outputs.Length / n;
        for (int i = 0; i < n; i++)
            baseline[i] = context.Score(i, outputs.AsSpan(i * classes, classes));

        var fill = new float[n];
        var items = new List<(int Image, int Channel)>();
        for (int i = 0; i < n; i++)
        {
            var a = activations.AsSpan(i * size, size);
            float min = float.PositiveInfinity;
            foreach (float v in a)
                min = Math.Min(min, v);
            fill[i] = min == 0 ? 0f : min - AblationOffset;
            for (int k = 0; k < c; k++)
            {
                var channel = a.Slice(k * plane, plane);
                bool unchanged = !channel.ContainsAnyExcept(fill[i]);
                if (!unchanged)
                    items.Add((i, k));
            }
        }

        var ablated = new float[n * c];
        for (int i = 0; i < n; i++)
            Array.Fill(ablated, baseline[i], i * c, c);
        int batch = context.Plan.Rows(Reruns.Suffix);
        var buffer = context.Plan.Scratch(Math.Min(batch, Math.Max(items.Count, 1)) * size);
        for (int start = 0; start < items.Count; start += batch)
        {
            int filled = Math.Min(batch, items.Count - start);
            for (int r = 0; r < filled; r++)
            {
                var (i, k) = items[start + r];
                var slot = buffer.AsSpan(r * size, size);
                activations.AsSpan(i * size, size).CopyTo(slot);
                slot.Slice(k * plane, plane).Fill(fill[i]);
            }
            foreach (var (offset, m) in MemoryPlan.Pieces(filled, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                var rows = new int[m];
                for (int r = 0; r < m; r++)
                    rows[r] = items[start + offset + r].Image;
                using var pass = context.ForwardFromGrid(layer, buffer.AsSpan(offset * size, m * size), m, rows);
                var y = model.Backend.Download(pass.Output);
                context.Plan.Record(Reruns.Suffix, m, t0);
                for (int r = 0; r < m; r++)
                {
                    var (i, k) = items[start + offset + r];
                    ablated[i * c + k] = context.Score(i, y.AsSpan(r * classes, classes));
                }
            }
        }

        var weights = new float[n][];
        var maps = new float[n][];
        for (int i = 0; i < n; i++)
        {
            weights[i] = new float[c];
            for (int k = 0; k < c; k++)
                weights[i][k] = (baseline[i] - ablated[i * c + k]) / baseline[i];
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), weights[i], plane);
        }
        return new LayerMaps(maps, weights);
    }
}
