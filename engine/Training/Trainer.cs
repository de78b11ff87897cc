using System.Diagnostics;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Training;

/// <summary>Settings of a training run.</summary>
public sealed class TrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 8;

    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Peak learning rate; it follows a cosine decay to zero over the run.</summary>
    public float LearningRate { get; init; } = 2e-3f;

    /// <summary>AdamW decoupled weight decay (conv and linear weights only).</summary>
    public float WeightDecay { get; init; } = 1e-4f;

    /// <summary>Seed of the shuffling (the initial weights have their own seed).</summary>
    public int Seed { get; init; }

    /// <summary>Use only the first this-many training images (0: all).</summary>
    public int TrainLimit { get; init; }
}

/// <summary>Progress of a run, reported every few steps and at the end of each epoch.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Epochs">Epochs of the run.</param>
/// <param name="Step">The step within the epoch (1-based).</param>
/// <param name="StepsPerEpoch">Steps per epoch.</param>
/// <param name="Loss">Mean cross-entropy of the recent steps.</param>
/// <param name="Accuracy">Training accuracy of the recent steps.</param>
/// <param name="ImagesPerSecond">Training speed so far.</param>
/// <param name="Remaining">Estimated time to the end.</param>
/// <param name="TestAccuracy">Test accuracy, at the end of an epoch; null otherwise.</param>
public sealed record TrainingProgress(
    int Epoch, int Epochs, int Step, int StepsPerEpoch, double Loss, double Accuracy, double ImagesPerSecond,
    TimeSpan Remaining, double? TestAccuracy);

/// <summary>What a run produced.</summary>
internal sealed record TrainingResult(ModelFile Model, double TestAccuracy, double Seconds, double ImagesPerSecond);

/// <summary>
/// Mini-batch training of a classifier with the engine's own reverse pass: forward, softmax cross-entropy on the
/// host, one reverse pass for every weight and bias gradient, AdamW on host copies of the weights, which are
/// then written back to the device. Deterministic for a given seed, device and batch size.
/// </summary>
internal static class Trainer
{
    /// <summary>Trains <paramref name="initial"/> on <paramref name="train"/> and evaluates on <paramref name="test"/>.</summary>
    public static TrainingResult Train(
        ModelFile initial, FashionMnist train, FashionMnist test, Backend backend, TrainingOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(initial);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Epochs < 1 || options.BatchSize < 1 || !(options.LearningRate > 0))
            throw new ArgumentException("epochs, batch size and learning rate must be positive");
        var host = initial.Weights.ToDictionary(p => p.Key, p => (float[])p.Value.Data.Clone(), StringComparer.Ordinal);
        using var model = DeviceModel.Load(initial, backend);
        var optimizer = new AdamW(options.LearningRate, options.WeightDecay);
        int count = options.TrainLimit > 0 ? Math.Min(options.TrainLimit, train.Count) : train.Count;
        int batch = options.BatchSize;
        int stepsPerEpoch = count / batch; // the last partial batch is dropped, as a fixed batch shape is cheaper
        if (stepsPerEpoch == 0)
            throw new ArgumentException($"batch size {batch} is larger than the {count} training images");
        int totalSteps = stepsPerEpoch * options.Epochs;
        var order = Enumerable.Range(0, count).ToArray();
        var rng = new Random(options.Seed);
        const int plane = FashionMnist.Side * FashionMnist.Side;
        var x = new float[batch * plane];
        var labels = new int[batch];
        var clock = Stopwatch.StartNew();
        int done = 0;
        double testAccuracy = 0;
        for (int epoch = 1; epoch <= options.Epochs; epoch++)
        {
            rng.Shuffle(order);
            double lossSum = 0;
            int correct = 0, seen = 0;
            for (int step = 0; step < stepsPerEpoch; step++)
            {
                cancel.ThrowIfCancellationRequested();
                train.Fill(order.AsSpan(step * batch, batch), x, labels);
                optimizer.LearningRate = (float)(options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * done / totalSteps)));
                var (loss, ok) = Step(model, host, optimizer, x, labels);
                lossSum += loss * batch;
                correct += ok;
                seen += batch;
                done++;
                if (progress != null && (step % 50 == 49 || step == stepsPerEpoch - 1))
                {
                    double rate = done * batch / clock.Elapsed.TotalSeconds;
                    var remaining = TimeSpan.FromSeconds((totalSteps - done) * batch / rate);
                    double? testAcc = null;
                    if (step == stepsPerEpoch - 1)
                        testAcc = testAccuracy = Evaluate(model, test, 256);
                    progress.Report(new TrainingProgress(epoch, options.Epochs, step + 1, stepsPerEpoch,
                        lossSum / seen, (double)correct / seen, rate, remaining, testAcc));
                }
            }
        }
        if (progress == null)
            testAccuracy = Evaluate(model, test, 256);
        double seconds = clock.Elapsed.TotalSeconds;
        var weights = host.ToDictionary(p => p.Key, p => new HostTensor(initial.Weights[p.Key].Shape, p.Value), StringComparer.Ordinal);
        return new TrainingResult(new ModelFile(initial.Graph, weights), testAccuracy, seconds, (double)totalSteps * batch / seconds);
    }

    private static (double Loss, int Correct) Step(
        DeviceModel model, Dictionary<string, float[]> host, AdamW optimizer, float[] x, int[] labels)
    {
        var b = model.Backend;
        int n = labels.Length;
        using var input = b.Upload(x, [n, .. model.Graph.InputShape]);
        using var pass = model.Forward(input);
        var logits = b.Download(pass.Output);
        var grad = new float[logits.Length];
        var (loss, correct) = SoftmaxCrossEntropy.Compute(logits, labels, grad);
        using var seed = b.Upload(grad, pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Parameters = true });
        optimizer.BeginStep();
        foreach (var (name, g) in grads.Parameters)
        {
            var p = host[name];
            optimizer.Update(name, p, b.Download(g), decay: model.Parameter(name).Shape.Length > 1);
            model.SetParameter(name, p);
        }
        return (loss, correct);
    }

    /// <summary>Top-1 accuracy of <paramref name="model"/> on <paramref name="data"/> (the first <paramref name="limit"/>
    /// images when positive).</summary>
    public static double Evaluate(DeviceModel model, FashionMnist data, int batch, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        int count = limit > 0 ? Math.Min(limit, data.Count) : data.Count;
        const int plane = FashionMnist.Side * FashionMnist.Side;
        int correct = 0;
        var b = model.Backend;
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            var idx = Enumerable.Range(start, n).ToArray();
            var x = new float[n * plane];
            var labels = new int[n];
            data.Fill(idx, x, labels);
            using var input = b.Upload(x, [n, .. model.Graph.InputShape]);
            using var pass = model.Forward(input);
            var logits = b.Download(pass.Output);
            int k = logits.Length / n;
            for (int i = 0; i < n; i++)
            {
                var row = logits.AsSpan(i * k, k);
                int best = 0;
                for (int j = 1; j < k; j++)
                {
                    if (row[j] > row[best])
                        best = j;
                }
                if (best == labels[i])
                    correct++;
            }
        }
        return (double)correct / count;
    }
}
