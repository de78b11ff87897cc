using CamEngine.Backends;

namespace CamEngine.Methods;

/// <summary>A mask row (H*W) on the host.</summary>
internal delegate ReadOnlySpan<float> HostMaskRow(int row);

/// <summary>Writes the perturbed inputs of <paramref name="rows"/> into the device batch <paramref name="x"/>.</summary>
internal delegate void BuildBatch<TRow>(ReadOnlySpan<TRow> rows, Tensor x);

/// <summary>
/// The batched re-runs of the masking methods with their batches built on the device: the masks (and noise) live on
/// the device, and each batch of masked inputs <c>scale * x * (mask + noise)</c> is written there by
/// <see cref="Backend.MaskedInputs"/> from the input and those masks, so no masked input crosses the bus; per batch
/// a table of 16 bytes a row goes up and the scores come down. The same items as <see cref="Perturbation.Scores"/>
/// with the same numbers: an all-zero masked input (decided on the host from the host copies of the input and the
/// masks, computed as the device computes it) is not run, its score is the model's on the zero image.
/// </summary>
internal static class DeviceMasked
{
    /// <summary>
    /// Scores of <paramref name="count"/> masked inputs: item u is row <paramref name="rowOf"/>(u) of a masked batch (a
    /// negative mask index: the all-zero input of that image), of the device masks <paramref name="masks"/> (R, H, W)
    /// whose host rows <paramref name="hostMask"/> gives, and the optional noise rows (<paramref name="noise"/> on the
    /// device, <paramref name="hostNoise"/> its rows on the host). <paramref name="hostInputs"/> is the batch's input (N, C, H, W)
    /// on the host, for the zero test.
    /// </summary>
    public static float[] Scores(ExplainContext context, Tensor masks, HostMaskRow hostMask, float[] hostInputs, int count,
        Func<int, MaskedRow> rowOf, Tensor? noise = null, HostMaskRow? hostNoise = null)
    {
        var shape = context.Model.Graph.InputShape;
        int big = shape[1] * shape[2], size = shape[0] * big;
        return Scores(context, count, rowOf, row => row.Image,
            row => row.Mask < 0 || IsZero(hostInputs.AsSpan(row.Image * size, size), hostMask(row.Mask),
                row.Noise >= 0 ? hostNoise!(row.Noise) : default, row.Scale),
            (rows, x) => context.Model.Backend.MaskedInputs(context.Forward.Input, masks, noise, rows, x));
    }

    /// <summary>
    /// The loop behind every device-built perturbation: item u is row <paramref name="rowOf"/>(u) of image
    /// <paramref name="imageOf"/>(row); rows that <paramref name="isZero"/> are scored as the zero image, the others are
    /// written <see cref="MemoryPlan.Rows"/>(<see cref="Reruns.Forward"/>) at a time into a device batch by <paramref name="build"/>
    /// and scored by one forward pass each.
    /// </summary>
    public static float[] Scores<TRow>(ExplainContext context, int count, Func<int, TRow> rowOf, Func<TRow, int> imageOf,
        Func<TRow, bool> isZero, BuildBatch<TRow> build)
    {
        var model = context.Model;
        var backend = model.Backend;
        var shape = model.Graph.InputShape;
        var plan = context.Plan;
        int batch = plan.Rows(Reruns.Forward);
        var rows = new List<TRow>(batch);
        var pending = new List<int>(batch);
        var scores = new float[count];
        float[]? zeroRow = null;

        void Flush()
        {
            if (pending.Count == 0)
                return;
            // A short tail runs in power-of-two pieces, as every planned re-run does (few buffer shapes in the pools).
            var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(rows);
            foreach (var (offset, m) in MemoryPlan.Pieces(pending.Count, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                using var x = backend.Allocate([m, .. shape]);
                build(all.Slice(offset, m), x);
                using var pass = model.ForwardOutput(x);
                var y = backend.Download(pass.Output);
                plan.Record(Reruns.Forward, m, t0);
                int k = y.Length / m;
                for (int r = 0; r < m; r++)
                    scores[pending[offset + r]] = context.Score(imageOf(rows[offset + r]), y.AsSpan(r * k, k));
            }
            pending.Clear();
            rows.Clear();
        }

        for (int item = 0; item < count; item++)
        {
            var row = rowOf(item);
            if (isZero(row))
            {
                zeroRow ??= plan.ZeroOutput(() => ZeroOutput(context));
                scores[item] = context.Score(imageOf(row), zeroRow);
                continue;
            }
            rows.Add(row);
            pending.Add(item);
            if (pending.Count == batch)
                Flush();
        }
        Flush();
        return scores;
    }

    /// <summary>True when every value of the masked input <c>scale * x * (mask + noise)</c> is 0, computed as
    /// <see cref="Backend.MaskedInputs"/> computes it.</summary>
    private static bool IsZero(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, ReadOnlySpan<float> noise, float scale)
    {
        int big = mask.Length;
        for (int j = 0; j < big; j++)
        {
            float m = noise.IsEmpty ? mask[j] : mask[j] + noise[j];
            for (int ch = 0; ch * big < x.Length; ch++)
            {
                float v = x[ch * big + j] * m;
                if ((scale == 1f ? v : scale * v) != 0f)
                    return false;
            }
        }
        return true;
    }

    private static float[] ZeroOutput(ExplainContext context)
    {
        var model = context.Model;
        using var x = model.Backend.Allocate([1, .. model.Graph.InputShape]);
        using var pass = model.ForwardOutput(x);
        return model.Backend.Download(pass.Output);
    }
}
