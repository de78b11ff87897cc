using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.Metrics;

/// <summary>
/// Faithfulness metrics of explanations: each call takes the input batch (N, C, H, W) the explanations were
/// computed on and the explanations of one method (each names its <see cref="Explanation.Image"/> and
/// <see cref="Explanation.TargetClass"/>), perturbs the preprocessed input guided by the final map
/// (<see cref="Explanation.Map"/>, (H, W) in [0, 1]) and scores the perturbed copies with the model, all of them
/// batched (<see cref="MetricOptions.BatchSize"/> per forward pass, never one image at a time).
/// <list type="bullet">
/// <item><see cref="ConfidenceChange"/>: average drop / increase in confidence (Grad-CAM++ paper) and
/// pytorch-grad-cam's undivided drop.</item>
/// <item><see cref="Deletion"/> and <see cref="Insertion"/>: the RISE curves and their areas.</item>
/// <item><see cref="Road"/>: remove and debias (MoRF, LeRF, combined), with noisy linear imputation.</item>
/// <item><see cref="SanityCheck"/>: cascading model-parameter randomization (Adebayo et al.).</item>
/// <item>The pointing game needs no model: <see cref="PointingGame"/>.</item>
/// </list>
/// Perturbations act on the preprocessed (normalized) input tensor, as in pytorch-grad-cam and TorchCAM: a
/// zero is the dataset mean colour.
/// <example><code>
/// var explainer = new Explainer(model);
/// var maps = explainer.Explain(input, new GradCam());
/// var metrics = new MetricEvaluator(explainer);
/// double drop = metrics.ConfidenceChange(input, maps).AverageDrop;
/// double deletionAuc = metrics.Deletion(input, maps).MeanAuc;
/// </code></example>
/// </summary>
internal sealed partial class MetricEvaluator(Explainer explainer)
{
    /// <summary>The explainer whose model scores the perturbed inputs (and, for the sanity check, recomputes maps).</summary>
    public Explainer Explainer { get; } = explainer ?? throw new ArgumentNullException(nameof(explainer));

    /// <summary>
    /// Scores <paramref name="count"/> model inputs, <paramref name="batch"/> per forward pass: <paramref name="fill"/>
    /// writes input i (C*H*W values, preprocessed) into the span it gets; the score of input i reads class
    /// <paramref name="classOf"/>(i). With <paramref name="parallelFill"/> the inputs of a chunk are filled in
    /// parallel (fill must then be thread-safe).
    /// </summary>
    internal double[] ScoreInputs(
        int count, Action<int, Span<float>> fill, Func<int, int> classOf, MetricScore score, int batch,
        bool parallelFill, string stage, IProgress<MetricProgress>? progress, CancellationToken cancellation)
    {
        var model = Explainer.Model;
        var backend = model.Backend;
        int[] inputShape = model.Graph.InputShape;
        int size = inputShape[0] * inputShape[1] * inputShape[2];
        var scores = new double[count];
        if (count == 0)
            return scores;
        int chunk = Math.Min(batch, count);
        var buffer = new float[chunk * size];
        for (int start = 0; start < count; start += chunk)
        {
            cancellation.ThrowIfCancellationRequested();
            int m = Math.Min(chunk, count - start);
            if (parallelFill && m > 1)
            {
                var options = new ParallelOptions { CancellationToken = cancellation };
                Parallel.For(0, m, options, j => fill(start + j, buffer.AsSpan(j * size, size)));
            }
            else
            {
                for (int j = 0; j < m; j++)
                    fill(start + j, buffer.AsSpan(j * size, size));
            }
            float[] outputs;
            using (backend.SyncRoot.EnterScope())
            {
                using var x = backend.Upload(buffer.AsSpan(0, m * size), [m, .. inputShape]);
                using var forward = model.Forward(x);
                outputs = backend.Download(forward.Output);
            }
            int k = outputs.Length / m;
            for (int j = 0; j < m; j++)
                scores[start + j] = Score(outputs.AsSpan(j * k, k), classOf(start + j), score);
            progress?.Report(new MetricProgress(stage, start + m, count));
        }
        return scores;
    }

    /// <summary>The score of class <paramref name="c"/> in one image's output row.</summary>
    internal static double Score(ReadOnlySpan<float> output, int c, MetricScore score)
    {
        if ((uint)c >= (uint)output.Length)
            throw new CamEngineException($"target class {c} is out of range: the model has {output.Length} outputs");
        double v = output[c];
        if (!double.IsFinite(v))
            throw new CamEngineException($"the model produced a non-finite score ({v}) for class {c} on a perturbed input");
        if (score == MetricScore.Logit)
            return v;
        return Math.Exp(v - StableSoftmax.LogSumExp(output));
    }

    /// <summary>Checks the input against the model and every explanation against the input; returns (C, H, W).</summary>
    internal (int C, int H, int W) Check(HostTensor input, IReadOnlyList<Explanation> explanations)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(explanations);
        int[] want = Explainer.Model.Graph.InputShape;
        if (input.Shape.Length != 4 || !input.Shape.AsSpan(1).SequenceEqual(want))
            throw new CamEngineException(
                $"input has shape {input.ShapeText}; the model takes (N,{string.Join(",", want)})");
        int n = input.Shape[0];
        for (int i = 0; i < explanations.Count; i++)
        {
            var e = explanations[i] ?? throw new ArgumentException($"explanation {i} is null", nameof(explanations));
            if ((uint)e.Image >= (uint)n)
                throw new CamEngineException($"explanation {i} refers to image {e.Image}; the input holds {n}");
            if (e.TargetClass < 0)
                throw new CamEngineException(
                    $"explanation {i} ({e.Method}) has no class (a similarity target); the metrics score a class");
            if (e.Map.Shape.Length != 2 || e.Map.Shape[0] != want[1] || e.Map.Shape[1] != want[2])
                throw new CamEngineException(
                    $"explanation {i} ({e.Method}) has a map of shape {e.Map.ShapeText}; the input is {want[1]}x{want[2]}");
            Imaging.MapOps.EnsureFinite(e.Map.Data, e.Method);
        }
        return (want[0], want[1], want[2]);
    }

    /// <summary>The unperturbed scores of the explanations' classes, batched.</summary>
    internal double[] OriginalScores(
        HostTensor input, IReadOnlyList<Explanation> explanations, MetricScore score, int batch,
        CancellationToken cancellation)
    {
        int size = input.Length / input.Shape[0];
        return ScoreInputs(explanations.Count,
            (i, dst) => input.Data.AsSpan(explanations[i].Image * size, size).CopyTo(dst),
            i => explanations[i].TargetClass, score, batch, false, "original", null, cancellation);
    }

    /// <summary>A deterministic 64-bit mix (splitmix64) of a seed and stream indices: one independent
    /// <see cref="Random"/> per (seed, stream), so results do not depend on the order work runs in.</summary>
    internal static Random Stream(int seed, params int[] parts)
    {
        ulong z = (ulong)(uint)seed;
        foreach (int p in parts)
        {
            z += 0x9E3779B97F4A7C15UL + (ulong)(uint)p;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
        }
        return new Random((int)(z & 0x7FFFFFFF));
    }
}
