using CamEngine.Backends;
using CamEngine.Model;

namespace CamEngine.Training;

/// <summary>What <see cref="FashionMnistTraining.Train"/> produced.</summary>
/// <param name="Model">The trained model file's bytes (safetensors with graph, labels and preprocessing).</param>
/// <param name="ParameterCount">Weights and biases.</param>
/// <param name="TrainingImages">Images trained on per epoch.</param>
/// <param name="TestImages">Images of the test set.</param>
/// <param name="TestAccuracy">Accuracy on the test set.</param>
/// <param name="Seconds">Training time.</param>
/// <param name="ImagesPerSecond">Training speed.</param>
/// <param name="Device">The device's short name.</param>
/// <param name="DeviceDescription">The device in words.</param>
public sealed record FashionMnistTrainingResult(
    byte[] Model, long ParameterCount, int TrainingImages, int TestImages, double TestAccuracy, double Seconds,
    double ImagesPerSecond, string Device, string DeviceDescription);

/// <summary>
/// Trains the CAM-ready classifier that <c>cam train</c> writes: 3x3 conv + ReLU blocks with 2x2 max-pooling between
/// them, global average pooling and one linear layer, on Fashion-MNIST, with the engine's own reverse pass and AdamW.
/// </summary>
public static class FashionMnistTraining
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the IDX files.</summary>
    public const string DebianFolder = FashionMnist.DebianFolder;

    /// <summary>Trains a model and returns its file's bytes with the test accuracy.</summary>
    /// <param name="dataFolder">The folder with the four Fashion-MNIST IDX files.</param>
    /// <param name="widths">Channels of the conv blocks.</param>
    /// <param name="options">Epochs, batch, learning rate, weight decay, seed, image limit.</param>
    /// <param name="device">The device (as <see cref="CamModelOptions.Device"/>).</param>
    /// <param name="progress">Told every few steps.</param>
    /// <exception cref="CamEngineException">The data files are missing or invalid, or the device is absent.</exception>
    public static FashionMnistTrainingResult Train(
        string dataFolder, IReadOnlyList<int> widths, TrainingOptions options, string? device,
        IProgress<TrainingProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(dataFolder);
        ArgumentNullException.ThrowIfNull(widths);
        ArgumentNullException.ThrowIfNull(options);
        var train = FashionMnist.Load(dataFolder, train: true);
        var test = FashionMnist.Load(dataFolder, train: false);
        var pre = new Preprocessing
        {
            Height = FashionMnist.Side, Width = FashionMnist.Side, ResizeShorter = FashionMnist.Side,
            Mean = [FashionMnist.Mean], Std = [FashionMnist.Std],
        };
        var initial = GapCnn.Create(1, FashionMnist.Side, widths.ToArray(), FashionMnist.Labels.Length, options.Seed, pre, FashionMnist.Labels);
        using var backend = Devices.Open(device);
        int images = options.TrainLimit > 0 ? Math.Min(options.TrainLimit, train.Count) : train.Count;
        var result = Trainer.Train(initial, train, test, backend, options, progress);
        using var bytes = new MemoryStream();
        result.Model.Save(bytes);
        return new FashionMnistTrainingResult(bytes.ToArray(), initial.ParameterCount, images, test.Count, result.TestAccuracy,
            result.Seconds, result.ImagesPerSecond, backend.Name, backend.DeviceDescription);
    }
}
