namespace CamEngine.Model;

/// <summary>
/// How an image file becomes the model's input tensor: resize the shorter side to
/// <see cref="ResizeShorter"/> (bilinear), centre-crop <see cref="Height"/> x <see cref="Width"/>
/// (left = (w - Width) / 2, top = (h - Height) / 2), scale RGB to [0, 1], then (x - mean) / std per channel.
/// This is torchvision's classification preset (resize 256, crop 224) scaled to the model's input size.
/// </summary>
public sealed class Preprocessing
{
    /// <summary>ImageNet channel means (RGB).</summary>
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet channel standard deviations (RGB).</summary>
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>Input height after cropping.</summary>
    public required int Height { get; init; }

    /// <summary>Input width after cropping.</summary>
    public required int Width { get; init; }

    /// <summary>Shorter side after the first resize; equal to min(Height, Width) for no crop margin.</summary>
    public required int ResizeShorter { get; init; }

    /// <summary>Per-channel mean subtracted after scaling to [0, 1].</summary>
    public required float[] Mean { get; init; }

    /// <summary>Per-channel standard deviation divided by.</summary>
    public required float[] Std { get; init; }

    /// <summary>The torchvision ImageNet preset for an input of <paramref name="height"/> x <paramref name="width"/>:
    /// resize the shorter side to floor(size * 256 / 224), centre-crop, ImageNet mean and std.</summary>
    public static Preprocessing ImageNet(int height, int width) => new()
    {
        Height = height,
        Width = width,
        ResizeShorter = Math.Max(1, Math.Min(height, width) * 256 / 224),
        Mean = (float[])ImageNetMean.Clone(),
        Std = (float[])ImageNetStd.Clone(),
    };
}
