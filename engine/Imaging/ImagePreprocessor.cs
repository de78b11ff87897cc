using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>
/// Turns a decoded image into a model input following <see cref="Preprocessing"/>, as torchvision's
/// <c>Resize(s)</c> + <c>CenterCrop((H, W))</c> + <c>ToTensor()</c> + <c>Normalize(mean, std)</c> do on a PIL
/// image: the shorter side becomes <see cref="Preprocessing.ResizeShorter"/> and the longer
/// <c>floor(ResizeShorter * long / short)</c> (PIL bilinear, see <see cref="Resize.ImageBilinear"/>); the crop
/// starts at left = (w - W) / 2, top = (h - H) / 2 (integer division); values are byte / 255 then
/// (x - mean) / std, in float32, laid out (1, 3, H, W). Models that state another pixel scale, the BGR channel
/// order or a per-pixel mean image (<see cref="Preprocessing.Scale"/>, <see cref="Preprocessing.ChannelOrder"/>,
/// <see cref="Preprocessing.MeanImage"/>) get those through <see cref="Normalize(RgbImage, Preprocessing)"/>.
/// </summary>
internal static class ImagePreprocessor
{
    /// <summary>The model input for <paramref name="image"/>, shape (1, 3, p.Height, p.Width).</summary>
    public static HostTensor ToInput(RgbImage image, Preprocessing p) => Prepare(image, p).Input;

    /// <summary>The model input and the resized, cropped RGB image it was made from (for overlays).</summary>
    public static PreparedImage Prepare(RgbImage image, Preprocessing p)
    {
        var cropped = ResizeAndCrop(image, p);
        return new PreparedImage(Normalize(cropped, p), cropped);
    }

    /// <summary>Resizes the shorter side of <paramref name="image"/> to p.ResizeShorter and centre-crops
    /// p.Height x p.Width.</summary>
    public static RgbImage ResizeAndCrop(RgbImage image, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(p);
        if (p.ResizeShorter <= 0 || p.Height <= 0 || p.Width <= 0)
            throw new CamEngineException(
                $"invalid preprocessing: resize {p.ResizeShorter}, crop {p.Height}x{p.Width}");
        int w = image.Width, h = image.Height;
        int newW, newH;
        // torchvision: new_long = int(size * long / short), computed exactly here with integers.
        if (w <= h)
        {
            newW = p.ResizeShorter;
            newH = (int)Math.Max(1, (long)p.ResizeShorter * h / w);
        }
        else
        {
            newH = p.ResizeShorter;
            newW = (int)Math.Max(1, (long)p.ResizeShorter * w / h);
        }
        var resized = Resize.ImageBilinear(image, newW, newH);
        if (newW < p.Width || newH < p.Height)
            throw new InvalidInputException(
                $"image resized to {newW}x{newH} is smaller than the {p.Width}x{p.Height} crop");
        return resized.Crop((newW - p.Width) / 2, (newH - p.Height) / 2, p.Width, p.Height);
    }

    /// <summary>
    /// The model input for an already resized and cropped picture, following every field of <paramref name="p"/>:
    /// <c>x[c, y, x] = (byte[src(c)] / (1 / Scale) - Mean[c] - MeanImage[c, y, x]) / Std[c]</c>, with src(c) = c
    /// for "rgb" and 2 - c for "bgr"; shape (1, C, H, W) where C = p.Mean.Length is 3, or 1 for grey models (then
    /// the byte is PIL's luma, see <see cref="NormalizeGray"/>).
    /// </summary>
    /// <exception cref="CamEngineException">The preprocessing is inconsistent with the picture (channel count, mean
    /// image missing or of another shape).</exception>
    public static HostTensor Normalize(RgbImage image, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(p);
        int channels = p.Mean.Length;
        if ((channels != 3 && channels != 1) || p.Std.Length != channels)
            throw new CamEngineException($"mean and std need 3 (or 1) channels, got {p.Mean.Length} and {p.Std.Length}");
        if (!(p.Scale > 0) || !float.IsFinite(p.Scale))
            throw new CamEngineException($"invalid preprocessing scale {p.Scale}");
        var meanImage = MeanImageOf(p, channels, image.Height, image.Width);
        int hw = image.Width * image.Height;
        var t = new HostTensor(1, channels, image.Height, image.Width);
        var src = image.Data;
        var dst = t.Data;
        float divisor = 1f / p.Scale;  // 255f exactly for the default scale, so the default is byte / 255f
        for (int c = 0; c < channels; c++)
        {
            int from = channels == 3 ? p.SourceChannel(c) : 0;
            float m = p.Mean[c], s = p.Std[c];
            for (int i = 0; i < hw; i++)
            {
                int b = channels == 3 ? src[3 * i + from] : Luma(src, i);
                float v = b / divisor - m;
                if (meanImage != null)
                    v -= meanImage[c * hw + i];
                dst[c * hw + i] = v / s;
            }
        }
        return t;
    }

    /// <summary>
    /// The inverse of <see cref="Normalize(RgbImage, Preprocessing)"/> for showing an already-preprocessed input
    /// (a .npy file): <c>round((x * Std[c] + Mean[c] + MeanImage[c, y, x]) * (1 / Scale))</c> clamped to [0, 255],
    /// put back in RGB order; a one-channel input becomes grey. Accepts (C, H, W) or (1, C, H, W).
    /// </summary>
    public static RgbImage ToDisplay(HostTensor chw, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(chw);
        ArgumentNullException.ThrowIfNull(p);
        int channels = p.Mean.Length;
        if ((channels != 3 && channels != 1) || p.Std.Length != channels)
            throw new CamEngineException($"mean and std need 3 (or 1) channels, got {p.Mean.Length} and {p.Std.Length}");
        var shape = chw.Shape;
        bool ok = (shape.Length == 3 && shape[0] == channels) || (shape.Length == 4 && shape[0] == 1 && shape[1] == channels);
        if (!ok || shape[^1] <= 0 || shape[^2] <= 0)
            throw new InvalidInputException($"expected a ({channels}, H, W) or (1, {channels}, H, W) image tensor, got {chw.ShapeText}");
        int h = shape[^2], w = shape[^1], hw = h * w;
        var meanImage = MeanImageOf(p, channels, h, w);
        float factor = 1f / p.Scale;
        var dst = new byte[hw * 3];
        for (int c = 0; c < channels; c++)
        {
            int to = channels == 3 ? p.SourceChannel(c) : 0;
            for (int i = 0; i < hw; i++)
            {
                float v = chw.Data[c * hw + i] * p.Std[c] + p.Mean[c];
                if (meanImage != null)
                    v += meanImage[c * hw + i];
                v *= factor;
                byte b = float.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(MathF.Round(v, MidpointRounding.AwayFromZero), 0f, 255f);
                if (channels == 3)
                    dst[3 * i + to] = b;
                else
                    dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = b;
            }
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>The mean image values of <paramref name="p"/> for a (channels, h, w) input, or null when it has none.</summary>
    private static float[]? MeanImageOf(Preprocessing p, int channels, int h, int w)
    {
        if (p.MeanImage == null)
            return null;
        var m = p.MeanImageTensor ?? throw new CamEngineException(
            $"the preprocessing subtracts mean image '{p.MeanImage}', but its values are not attached (load the model with ModelFile)");
        if (!TensorShape.Equal(m.Shape, [channels, h, w]))
            throw new CamEngineException($"mean image '{p.MeanImage}' has shape {m.ShapeText}, the input is ({channels}, {h}, {w})");
        return m.Data;
    }

    /// <summary>PIL's ITU-R 601 luma of pixel <paramref name="i"/> in 16-bit fixed point.</summary>
    private static int Luma(byte[] rgb, int i) =>
        (19595 * rgb[3 * i] + 38470 * rgb[3 * i + 1] + 7471 * rgb[3 * i + 2] + 0x8000) >> 16;

    /// <summary>(byte / 255 - mean[c]) / std[c] per channel, float32, shape (1, 3, H, W).</summary>
    public static HostTensor Normalize(RgbImage image, float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckChannels(mean, std);
        int hw = image.Width * image.Height;
        var t = new HostTensor(1, 3, image.Height, image.Width);
        var src = image.Data;
        var dst = t.Data;
        for (int c = 0; c < 3; c++)
        {
            float m = mean[c], s = std[c];
            for (int i = 0; i < hw; i++)
                dst[c * hw + i] = (src[3 * i + c] / 255f - m) / s;
        }
        return t;
    }

    /// <summary>The inverse of <see cref="Normalize(RgbImage, float[], float[])"/> for showing an already-preprocessed input (a .npy file):
    /// <c>round(255 * (x * std + mean))</c> clamped to [0, 255]. Accepts (3, H, W) or (1, 3, H, W).</summary>
    public static RgbImage FromNormalizedTensor(HostTensor chw, float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(chw);
        CheckChannels(mean, std);
        var shape = chw.Shape;
        bool ok = (shape.Length == 3 && shape[0] == 3) || (shape.Length == 4 && shape[0] == 1 && shape[1] == 3);
        if (!ok || shape[^1] <= 0 || shape[^2] <= 0)
            throw new InvalidInputException($"expected a (3, H, W) or (1, 3, H, W) image tensor, got {chw.ShapeText}");
        int h = shape[^2], w = shape[^1], hw = h * w;
        var dst = new byte[hw * 3];
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < hw; i++)
            {
                float v = (chw.Data[c * hw + i] * std[c] + mean[c]) * 255f;
                dst[3 * i + c] = float.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(MathF.Round(v, MidpointRounding.AwayFromZero), 0f, 255f);
            }
        }
        return new RgbImage(w, h, dst);
    }

    private static void CheckChannels(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Length != 3 || std.Length != 3)
            throw new CamEngineException($"mean and std need 3 channels, got {mean.Length} and {std.Length}");
    }

    /// <summary>Grey input for one-channel models: ITU-R 601 luma <c>L = 0.299 R + 0.587 G + 0.114 B</c> in PIL's
    /// 16-bit fixed point (weights 19595, 38470, 7471 over 65536, rounded), then (L / 255 - mean) / std,
    /// shape (1, 1, H, W).</summary>
    public static HostTensor NormalizeGray(RgbImage image, float mean, float std)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!(std > 0) || !float.IsFinite(mean))
            throw new CamEngineException("grey normalization needs a finite mean and a positive std");
        int hw = image.Width * image.Height;
        var t = new HostTensor(1, 1, image.Height, image.Width);
        var src = image.Data;
        for (int i = 0; i < hw; i++)
        {
            int luma = (19595 * src[3 * i] + 38470 * src[3 * i + 1] + 7471 * src[3 * i + 2] + 0x8000) >> 16;
            t.Data[i] = (luma / 255f - mean) / std;
        }
        return t;
    }

    /// <summary>The inverse of <see cref="NormalizeGray"/> as an RGB picture (grey), for overlays of .npy inputs.
    /// Accepts (1, H, W) or (1, 1, H, W).</summary>
    public static RgbImage FromNormalizedGray(HostTensor chw, float mean, float std)
    {
        ArgumentNullException.ThrowIfNull(chw);
        var shape = chw.Shape;
        int h = shape[^2], w = shape[^1];
        if (chw.Length != h * w)
            throw new CamEngineException($"expected a one-channel image, got {chw.ShapeText}");
        var rgb = new RgbImage(w, h);
        for (int i = 0; i < h * w; i++)
        {
            float v = MathF.Round(255f * (chw.Data[i] * std + mean));
            byte b = (byte)Math.Clamp(v, 0f, 255f);
            rgb.Data[3 * i] = rgb.Data[3 * i + 1] = rgb.Data[3 * i + 2] = b;
        }
        return rgb;
    }
}
