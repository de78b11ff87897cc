using CamEngine.Graph;
using CamEngine.Kernels;

namespace CamEngine.Methods;

/// <summary>Writes the input (C, H, W) of perturbed item <c>item</c>.</summary>
internal delegate void FillInput(int item, Span<float> input);

/// <summary>Receives d score / d input (C, H, W) of perturbed item <c>item</c>.</summary>
internal delegate void GradientSink(int item, ReadOnlySpan<float> gradient);

/// <summary>
/// The batched re-runs of the perturbation methods: items (masked, noisy or interpolated inputs) are built on
/// the host, stacked as many at a time as the call's <see cref="MemoryPlan"/> gives their kind, and run as one forward (and
/// reverse) pass per stack, never one image at a time. Scores go through <see cref="ExplainContext.Score"/>,
/// so the target (or a method's objective) applies to every re-run.
/// </summary>
internal static class Perturbation
{
    /// <summary>
    /// Scores of <paramref name="count"/> perturbed inputs; item i belongs to image <paramref name="imageOf"/>(i).
    /// An all-zero input is not run: its output is the model's output on the zero image, computed once per call
    /// (<see cref="MemoryPlan.ZeroOutput"/>). Items go <see cref="MemoryPlan.Rows"/>(<see cref="Reruns.Forward"/>) to
    /// a pass through the plan's shared scratch buffer; the last, partial batch in power-of-two pieces
    /// (<see cref="MemoryPlan.Pieces"/>). A row's output does not depend on the rest of its batch, so the batching
    /// changes no score.
    /// </summary>
    public static float[] Scores(ExplainContext context, int count, Func<int, int> imageOf, FillInput fill)
    {
        var model = context.Model;
        var plan = context.Plan;
        var shape = model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2];
        int batch = plan.Rows(Reruns.Forward);
        var buffer = plan.Scratch(Math.Min(batch, Math.Max(count, 1)) * size);
        var pending = new List<int>(batch);
        var scores = new float[count];
        float[]? zeroRow = null;

        void Flush()
        {
            foreach (var (offset, m) in MemoryPlan.Pieces(pending.Count, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                using var x = model.Backend.Upload(buffer.AsSpan(offset * size, m * size), [m, .. shape]);
                using var pass = model.ForwardOutput(x);
                var y = model.Backend.Download(pass.Output);
                plan.Record(Reruns.Forward, m, t0);
                int k = y.Length / m;
                for (int r = 0; r < m; r++)
                    scores[pending[offset + r]] = context.Score(imageOf(pending[offset + r]), y.AsSpan(r * k, k));
            }
            pending.Clear();
        }

        for (int item = 0; item < count; item++)
        {
            var slot = buffer.AsSpan(pending.Count * size, size);
            slot.Clear();
            fill(item, slot);
            if (IsZero(slot))
            {
                zeroRow ??= plan.ZeroOutput(() => ZeroOutput(context));
                scores[item] = context.Score(imageOf(item), zeroRow);
                continue;
            }
            pending.Add(item);
            if (pending.Count == batch)
                Flush();
        }
        Flush();
        return scores;
    }

    /// <summary>
    /// d score / d input of <paramref name="count"/> perturbed inputs under <paramref name="rule"/>, batched
    /// (<see cref="MemoryPlan.Rows"/>(<see cref="Reruns.Gradient"/>) rows, the tail in power-of-two pieces);
    /// returns each item's score as well.
    /// </summary>
    public static float[] InputGradients(
        ExplainContext context, int count, Func<int, int> imageOf, FillInput fill, GradientSink sink,
        ReluRule rule = ReluRule.Standard)
    {
        var model = context.Model;
        var plan = context.Plan;
        var shape = model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2];
        int batch = plan.Rows(Reruns.Gradient);
        var buffer = plan.Scratch(Math.Min(batch, Math.Max(count, 1)) * size);
        var scores = new float[count];
        for (int start = 0; start < count; start += batch)
        {
            int filled = Math.Min(batch, count - start);
            for (int r = 0; r < filled; r++)
            {
                var slot = buffer.AsSpan(r * size, size);
                slot.Clear();
                fill(start + r, slot);
            }
            foreach (var (offset, m) in MemoryPlan.Pieces(filled, batch))
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                using var x = model.Backend.Upload(buffer.AsSpan(offset * size, m * size), [m, .. shape]);
                using var pass = model.Forward(x);
                var y = model.Backend.Download(pass.Output);
                int k = y.Length / m;
                var seed = new float[y.Length];
                for (int r = 0; r < m; r++)
                {
                    int image = imageOf(start + offset + r);
                    scores[start + offset + r] = context.Score(image, y.AsSpan(r * k, k));
                    context.ScoreGradient(image, y.AsSpan(r * k, k), seed.AsSpan(r * k, k));
                }
                using var seedTensor = model.Backend.Upload(seed, pass.Output.Shape);
                using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true, ReluRule = rule });
                var g = model.Backend.Download(grads.Input!);
                plan.Record(Reruns.Gradient, m, t0);
                for (int r = 0; r < m; r++)
                    sink(start + offset + r, g.AsSpan(r * size, size));
            }
        }
        return scores;
    }

    /// <summary>A standard normal draw (Box-Muller on <paramref name="rng"/>).</summary>
    public static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return BoxMuller(u1, u2);
    }

    /// <summary>The Box-Muller transform of two uniforms (u1 in (0, 1]): one standard normal.</summary>
    private static double BoxMuller(double u1, double u2) => Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);

    /// <summary>
    /// Fills <paramref name="into"/> with <c>(float)(std * Gaussian(rng))</c>, the values of calling
    /// <see cref="Gaussian"/> once per element in order: a chunk at a time, the uniforms are drawn in that order, and
    /// the Box-Muller transform, which is most of the cost, runs on every core (same operations, so the same bits).
    /// </summary>
    public static void Gaussians(Random rng, double std, Memory<float> into)
    {
        const int Chunk = 1 << 20, Block = 4096;
        var uniforms = new double[2 * Math.Min(into.Length, Chunk)];
        for (int start = 0; start < into.Length; start += Chunk)
        {
            int length = Math.Min(Chunk, into.Length - start);
            for (int j = 0; j < 2 * length; j += 2)
            {
                uniforms[j] = 1.0 - rng.NextDouble();
                uniforms[j + 1] = rng.NextDouble();
            }
            var part = into.Slice(start, length);
            Parallel.For(0, (length + Block - 1) / Block, b =>
            {
                var span = part.Span;
                int end = Math.Min(length, (b + 1) * Block);
                for (int j = b * Block; j < end; j++)
                    span[j] = (float)(std * BoxMuller(uniforms[2 * j], uniforms[2 * j + 1]));
            });
        }
    }

    /// <summary>The batch's inputs (N, C, H, W) on the host.</summary>
    public static float[] Inputs(ExplainContext context) => context.Model.Backend.Download(context.Forward.Input);

    /// <summary>The model output row of image <paramref name="image"/> of the context's forward pass.</summary>
    public static float[] OutputRow(ExplainContext context, float[] outputs, int image)
    {
        int k = outputs.Length / context.Batch;
        return outputs.AsSpan(image * k, k).ToArray();
    }

    private static bool IsZero(ReadOnlySpan<float> v)
    {
        foreach (float f in v)
        {
            if (f != 0f)
                return false;
        }
        return true;
    }

    private static float[] ZeroOutput(ExplainContext context)
    {
        var model = context.Model;
        var shape = model.Graph.InputShape;
        using var x = model.Backend.Allocate([1, .. shape]);
        using var pass = model.ForwardOutput(x);
        return model.Backend.Download(pass.Output);
    }
}
