using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>One model input from a file: its output-file stem, the (1, C, H, W) tensor, and the RGB picture
/// to draw overlays on (null when the input has no displayable RGB form). For a photo the picture is the
/// region the model sees (its centre crop) at the photo's own resolution, up to
/// <see cref="InputLoader.MaxDisplaySide"/> pixels a side; for a .npy input it is the denormalized input.</summary>
internal sealed record InputImage(string Stem, HostTensor Input, RgbImage? Display)
{
    /// <summary>The whole photo with the model's crop box, for <see cref="OverlayView.Full"/> pictures; null for
    /// inputs that are not photos (.npy tensors).</summary>
    public PhotoView? Photo { get; init; }
}

/// <summary>
/// Reads command-line inputs: PNG/JPEG/BMP files are decoded and preprocessed with the model's
/// <see cref="Preprocessing"/> (every field, the mean image included: pass the graph of a loaded
/// <see cref="ModelFile"/>, which carries the mean image's values); <c>.npy</c> files hold float32 tensors (C, H, W) or (N, C, H, W) already
/// preprocessed, used as they are (an N-image file yields stems <c>name_0</c>, <c>name_1</c>, ...).
/// </summary>
internal static class InputLoader
{
    /// <summary>Longest side of an overlay picture; larger crops are scaled down.</summary>
    public const int MaxDisplaySide = 1024;

    /// <summary>Loads every image in <paramref name="path"/> for <paramref name="graph"/>.</summary>
    public static IReadOnlyList<InputImage> Load(string path, ModelGraph graph)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(graph);
        string stem = Path.GetFileNameWithoutExtension(path);
        var p = graph.Preprocessing;
        if (!path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            int channels = graph.InputShape[0];
            if (channels != 3 && channels != 1)
                throw new InvalidInputException($"{path}: the model takes {channels} channels; pass a preprocessed .npy");
            return [FromPhoto(stem, ImageDecoder.Load(path), p)];
        }
        var t = Npy.Read(path);
        var s = t.Shape;
        var want = graph.InputShape;
        bool chw = s.Length == 3 && s.AsSpan().SequenceEqual(want);
        bool nchw = s.Length == 4 && s.AsSpan(1).SequenceEqual(want) && s[0] >= 1;
        if (!chw && !nchw)
            throw new InvalidInputException(
                $"{path}: array shape {t.ShapeText} does not match the model input (C,H,W) = {TensorShape.Format(want)} or (N,C,H,W)");
        int n = chw ? 1 : s[0];
        int size = want[0] * want[1] * want[2];
        var result = new List<InputImage>(n);
        for (int i = 0; i < n; i++)
        {
            var one = new HostTensor([1, .. want], t.Data.AsSpan(i * size, size).ToArray());
            for (int j = 0; j < size; j++)
            {
                if (!float.IsFinite(one.Data[j]))
                    throw new InvalidInputException($"{path}: non-finite value {one.Data[j]} in image {i} at element {j}");
            }
            var display = want[0] is 3 or 1 ? ImagePreprocessor.ToDisplay(one, p) : null;
            result.Add(new InputImage(n == 1 ? stem : $"{stem}_{i}", one, display));
        }
        return result;
    }

    /// <summary>As <see cref="Load"/>, reading a photo asynchronously (a .npy is read synchronously).</summary>
    public static async Task<IReadOnlyList<InputImage>> LoadAsync(
        string path, ModelGraph graph, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(graph);
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) || graph.InputShape[0] is not (3 or 1))
            return Load(path, graph);
        var photo = await ImageDecoder.LoadAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        return [FromPhoto(Path.GetFileNameWithoutExtension(path), photo, graph.Preprocessing)];
    }

    /// <summary>A decoded photo prepared for the model. Normalize follows every preprocessing field: scale, channel
    /// order, mean image, grey for one channel.</summary>
    internal static InputImage FromPhoto(string stem, RgbImage photo, Preprocessing p) =>
        new(stem, ImagePreprocessor.Normalize(ImagePreprocessor.ResizeAndCrop(photo, p), p), DisplayCrop(photo, p))
        {
            Photo = PhotoView.Of(photo, p),
        };

    /// <summary>
    /// The part of <paramref name="photo"/> that the preprocessing's centre crop keeps, at the photo's resolution:
    /// the crop window of the resized image mapped back through the resize scale.
    /// </summary>
    public static RgbImage DisplayCrop(RgbImage photo, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(photo);
        ArgumentNullException.ThrowIfNull(p);
        int w = photo.Width, h = photo.Height;
        double scale = (double)Math.Min(w, h) / p.ResizeShorter;  // photo pixels per resized pixel
        int cw = Math.Clamp((int)Math.Round(p.Width * scale), 1, w);
        int ch = Math.Clamp((int)Math.Round(p.Height * scale), 1, h);
        var crop = photo.Crop((w - cw) / 2, (h - ch) / 2, cw, ch);
        int longest = Math.Max(cw, ch);
        if (longest <= MaxDisplaySide)
            return crop;
        double shrink = (double)MaxDisplaySide / longest;
        return Resize.ImageBilinear(crop, Math.Max(1, (int)(cw * shrink)), Math.Max(1, (int)(ch * shrink)));
    }

    /// <summary>Stacks (1, C, H, W) inputs into one (N, C, H, W) batch.</summary>
    public static HostTensor Stack(IReadOnlyList<InputImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0)
            throw new ArgumentException("no images to stack", nameof(images));
        var one = images[0].Input.Shape;
        int size = images[0].Input.Length;
        var data = new float[checked(size * images.Count)];
        for (int i = 0; i < images.Count; i++)
            images[i].Input.Data.CopyTo(data, i * size);
        return new HostTensor([images.Count, one[1], one[2], one[3]], data);
    }
}
