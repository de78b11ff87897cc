using System.Globalization;
using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Training;

namespace CamEngine.Cli;

internal static class TrainCommand
{
    private const string Help = """
        usage: cam train -o MODEL.safetensors [options]

        Trains a CAM-ready classifier (3x3 conv + ReLU blocks with 2x2 max-pooling between them, global average
        pooling, one linear layer) on Fashion-MNIST with the engine's own reverse pass and AdamW, then writes it
        (atomically) with its labels and the test accuracy printed.

        options:
          -o, --out FILE        output model file (required)
          --overwrite           replace FILE if it exists
          --data DIR            folder with the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist,
                                from Debian's dataset-fashion-mnist package)
          --epochs N            passes over the training set (default 8)
          --batch N             images per step (default 64)
          --lr X                peak learning rate, cosine-decayed to 0 (default 0.002)
          --weight-decay X      AdamW weight decay on weights (default 0.0001)
          --widths A,B,C        channels of the conv blocks (default 32,64,128)
          --seed N              seed of the initial weights and the shuffling (default 0)
          --limit N             train on the first N images only (default: all 60000)
          --device D            auto|cpu|ilgpu-cpu|cuda|opencl|reference (default auto)
        """;

    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv,
            ["--out", "--data", "--epochs", "--batch", "--lr", "--weight-decay", "--widths", "--seed", "--limit", "--device"], [Outputs.Flag],
            new Dictionary<string, string> { ["-o"] = "--out" });
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count != 0)
            throw new UsageException($"unexpected argument '{a.Positionals[0]}'");
        string output = a.Get("--out") ?? throw new UsageException("missing -o MODEL.safetensors");
        Outputs.CheckWritable(output, a.Has(Outputs.Flag));
        string data = a.Get("--data", FashionMnist.DebianFolder);
        int seed = a.GetInt("--seed", 0, 0, int.MaxValue);
        var widths = Args.List(a.Get("--widths", "32,64,128"))
            .Select(w => int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v is > 0 and <= 1024
                ? v : throw new UsageException($"--widths must be positive integers, got '{w}'")).ToArray();
        var options = new TrainingOptions
        {
            Epochs = a.GetInt("--epochs", 8, 1, 1000),
            BatchSize = a.GetInt("--batch", 64, 1, 4096),
            LearningRate = Positive(a, "--lr", 2e-3f),
            WeightDecay = Positive(a, "--weight-decay", 1e-4f, allowZero: true),
            Seed = seed,
            TrainLimit = a.GetInt("--limit", 0, 0, int.MaxValue),
        };
        var train = FashionMnist.Load(data, train: true);
        var test = FashionMnist.Load(data, train: false);
        var pre = new Preprocessing
        {
            Height = FashionMnist.Side, Width = FashionMnist.Side, ResizeShorter = FashionMnist.Side,
            Mean = [FashionMnist.Mean], Std = [FashionMnist.Std],
        };
        var initial = GapCnn.Create(1, FashionMnist.Side, widths, FashionMnist.Labels.Length, seed, pre, FashionMnist.Labels);
        using var backend = Devices.Open(a.Get("--device"));
        int images = options.TrainLimit > 0 ? Math.Min(options.TrainLimit, train.Count) : train.Count;
        stdout.WriteLine(FormattableString.Invariant(
            $"device: {backend.Name} ({backend.DeviceDescription}); {initial.ParameterCount:N0} parameters; {images} training images, {options.Epochs} epochs, batch {options.BatchSize}"));
        var progress = new SyncProgress(p =>
        {
            string test = p.TestAccuracy is { } t ? FormattableString.Invariant($", test accuracy {t:P2}") : "";
            stdout.WriteLine(FormattableString.Invariant(
                $"epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch}: loss {p.Loss:F4}, train accuracy {p.Accuracy:P2}, {p.ImagesPerSecond:F0} images/s, {p.Remaining:hh\\:mm\\:ss} left{test}"));
        });
        var result = Trainer.Train(initial, train, test, backend, options, progress);
        result.Model.Save(output);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {output}: test accuracy {result.TestAccuracy:P2} on {test.Count} images, {result.Seconds:F0} s, {result.ImagesPerSecond:F0} images/s"));
        return 0;
    }

    private static float Positive(Args a, string name, float fallback, bool allowZero = false)
    {
        string? v = a.Get(name);
        if (v == null)
            return fallback;
        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float r) || !float.IsFinite(r)
            || r < 0 || (r == 0 && !allowZero))
            throw new UsageException($"{name} must be a {(allowZero ? "non-negative" : "positive")} number, got '{v}'");
        return r;
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
