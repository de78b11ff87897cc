using System.CommandLine;
using System.Globalization;
using CamEngine.Training;

namespace CamEngine.Cli;

internal static class TrainCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("train",
            "Trains a CAM-ready classifier (3x3 conv + ReLU blocks with 2x2 max-pooling between them, global average pooling, one "
            + "linear layer) on Fashion-MNIST with the engine's own reverse pass and AdamW, then writes it with its labels and prints the test accuracy.");
        var output = CliOptions.Text("--out", "FILE", "output model file (required)", "-o");
        var overwrite = CliOptions.Flag("--overwrite", "replace FILE if it exists");
        var data = CliOptions.Text("--data", "DIR", $"folder with the Fashion-MNIST IDX files (default {FashionMnistTraining.DebianFolder}, from Debian's dataset-fashion-mnist package)");
        var epochs = CliOptions.Text("--epochs", "N", "passes over the training set (default 8)");
        var batch = CliOptions.Text("--batch", "N", "images per step (default 64)");
        var lr = CliOptions.Text("--lr", "X", "peak learning rate, cosine-decayed to 0 (default 0.002)");
        var decay = CliOptions.Text("--weight-decay", "X", "AdamW weight decay on weights (default 0.0001)");
        var widths = CliOptions.Text("--widths", "A,B,C", "channels of the conv blocks (default 32,64,128)");
        var seed = CliOptions.Text("--seed", "N", "seed of the initial weights and the shuffling (default 0)");
        var limit = CliOptions.Text("--limit", "N", "train on the first N images only (default: all 60000)");
        var device = CliOptions.Device();
        foreach (var o in new Option[] { output, overwrite, data, epochs, batch, lr, decay, widths, seed, limit, device })
            command.Options.Add(o);
        command.SetAction(r =>
        {
            string outPath = r.Get(output) ?? throw new UsageException("missing -o MODEL.safetensors");
            var plan = new OutputPlan(Path.GetDirectoryName(Path.GetFullPath(outPath))!, r.GetValue(overwrite), resume: false);
            plan.Prepare();
            plan.CheckFree([Path.GetFileName(outPath)]);
            var channels = CliOptions.List(r.Get(widths, "32,64,128"))
                .Select(w => int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v is > 0 and <= 1024
                    ? v : throw new UsageException($"--widths must be positive integers, got '{PrintableText.Escape(w)}'")).ToArray();
            var options = new TrainingOptions
            {
                Epochs = r.GetInt(epochs, 8, 1, 1000), BatchSize = r.GetInt(batch, 64, 1, 4096),
                LearningRate = (float)r.GetDouble(lr, 2e-3, 1e-12, 1e6), WeightDecay = (float)r.GetDouble(decay, 1e-4, 0, 1e6),
                Seed = r.GetInt(seed, 0, 0, int.MaxValue), TrainLimit = r.GetInt(limit, 0, 0, int.MaxValue),
            };
            var progress = new SyncProgress(p =>
            {
                string test = p.TestAccuracy is { } t ? FormattableString.Invariant($", test accuracy {t:P2}") : "";
                cli.Out.WriteLine(FormattableString.Invariant(
                    $"epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch}: loss {p.Loss:F4}, train accuracy {p.Accuracy:P2}, {p.ImagesPerSecond:F0} images/s, {p.Remaining:hh\\:mm\\:ss} left{test}"));
            });
            cli.Stage = "training";
            var result = FashionMnistTraining.Train(r.Get(data, FashionMnistTraining.DebianFolder), channels, options, r.Get(device), progress);
            cli.Stage = $"writing {PrintableText.Escape(outPath)}";
            plan.Write(Path.GetFileName(outPath), result.Model);
            cli.Out.WriteLine(FormattableString.Invariant(
                $"device: {result.Device} ({result.DeviceDescription}); {result.ParameterCount:N0} parameters; {result.TrainingImages} training images, {options.Epochs} epochs, batch {options.BatchSize}"));
            cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {PrintableText.Escape(outPath)}: test accuracy {result.TestAccuracy:P2} on {result.TestImages} images, {result.Seconds:F0} s, {result.ImagesPerSecond:F0} images/s"));
            return 0;
        });
        return command;
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
