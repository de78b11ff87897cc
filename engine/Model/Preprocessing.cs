using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// How an image file becomes the model's input tensor: resize the shorter side to
/// <see cref="ResizeShorter"/> (bilinear), centre-crop <see cref="Height"/> x <see cref="Width"/>
/// (left = (w - Width) / 2, top = (h - Height) / 2), then per input channel c and pixel (y, x):
/// <code>x[c, y, x] = (byte[src(c)] * Scale - Mean[c] - MeanImage[c, y, x]) / Std[c]</code>
/// where src(c) = c for <see cref="ChannelOrder"/> "rgb" and 2 - c for "bgr", and the mean image term is 0
/// when <see cref="MeanImage"/> is null. The defaults (<see cref="Scale"/> 1/255, "rgb", no mean image) are
/// torchvision's classification preset (resize 256, crop 224) scaled to the model's input size; a Caffe/CNTK
/// network such as ML.NET's ResNet-18 featurizer uses scale 1, "bgr" and a per-pixel mean image instead.
/// </summary>
internal sealed class Preprocessing
{
    /// <summary>ImageNet channel means (RGB).</summary>
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet channel standard deviations (RGB).</summary>
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>The default pixel scale: bytes to [0, 1].</summary>
    public const float DefaultScale = 1f / 255f;

    /// <summary>Channel order "rgb": input channel 0 is red (the default).</summary>
    public const string Rgb = "rgb";

    /// <summary>Channel order "bgr": input channel 0 is blue, 2 is red (Caffe, CNTK, OpenCV).</summary>
    public const string Bgr = "bgr";

    /// <summary>Input height after cropping.</summary>
    public required int Height { get; init; }

    /// <summary>Input width after cropping.</summary>
    public required int Width { get; init; }

    /// <summary>Shorter side after the first resize; equal to min(Height, Width) for no crop margin.</summary>
    public required int ResizeShorter { get; init; }

    /// <summary>Per-channel mean subtracted after scaling, in the model's channel order.</summary>
    public required float[] Mean { get; init; }

    /// <summary>Per-channel standard deviation divided by, in the model's channel order.</summary>
    public required float[] Std { get; init; }

    /// <summary>Factor from a pixel byte (0..255) to the value the means apply to: 1/255 (the default) gives
    /// [0, 1], 1 keeps 0..255. Applied as <c>byte / (1 / Scale)</c>, so the default is exactly <c>byte / 255f</c>.</summary>
    public float Scale { get; init; } = DefaultScale;

    /// <summary>Order of the colour channels in the input tensor: <see cref="Rgb"/> (default) or <see cref="Bgr"/>.</summary>
    public string ChannelOrder { get; init; } = Rgb;

    /// <summary>Name of a (C, H, W) tensor in the model file subtracted per pixel after scaling (on top of
    /// <see cref="Mean"/>), or null for none.</summary>
    public string? MeanImage { get; init; }

    /// <summary>The values of <see cref="MeanImage"/>, attached by <see cref="ModelFile"/> from its weights
    /// (not part of the graph JSON); null when there is no mean image or it has not been attached.</summary>
    public HostTensor? MeanImageTensor { get; init; }

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

    /// <summary>The same preprocessing with <paramref name="meanImage"/> as the values of <see cref="MeanImage"/>.</summary>
    public Preprocessing WithMeanImageTensor(HostTensor? meanImage) => new()
    {
        Height = Height,
        Width = Width,
        ResizeShorter = ResizeShorter,
        Mean = Mean,
        Std = Std,
        Scale = Scale,
        ChannelOrder = ChannelOrder,
        MeanImage = MeanImage,
        MeanImageTensor = meanImage,
    };

    /// <summary>The input channel that colour channel <paramref name="c"/> of an RGB picture feeds: c for "rgb",
    /// 2 - c for "bgr" (its own inverse).</summary>
    public int SourceChannel(int c) => ChannelOrder == Bgr ? 2 - c : c;
}
