using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine;

/// <summary>
/// One method's map for one image and one target class, as <see cref="CamModel"/> returns it: the map as numbers
/// (<see cref="Map"/>, <see cref="ToArray2D"/>) and as pictures (<see cref="ToOverlay(float)"/>, <see cref="SaveOverlayPng(string, float)"/>).
/// <example><code>
/// var result = model.Explain("cat.jpg", "gradcam");
/// float[,] map = result.ToArray2D();            // [y, x] in [0, 1], the model's input size
/// result.SaveOverlayPng("cat.gradcam.png");      // the map in jet colours over the photo
/// </code></example>
/// </summary>
public sealed class CamResult
{
    private readonly Model.Preprocessing _preprocessing;

    internal CamResult(
        Explanation explanation, int imageIndex, string? source, RgbImage? image, string? label, HostTensor input,
        Model.Preprocessing preprocessing)
    {
        _preprocessing = preprocessing;
        Explanation = explanation;
        Input = input;
        ImageIndex = imageIndex;
        Source = source;
        Image = image;
        Label = label;
        var shape = explanation.Map.Shape;
        Height = shape[^2];
        Width = shape[^1];
    }

    /// <summary>Index of the image among the call's images (for a file holding several images, each counts).</summary>
    public int ImageIndex { get; }

    /// <summary>The image file the result explains; null for images passed as pixels or tensors.</summary>
    public string? Source { get; }

    /// <summary>The method's name (see <see cref="CamModel.Methods"/>).</summary>
    public string Method => Explanation.Method;

    /// <summary>The class explained; -1 for targets without a class (embedding similarity).</summary>
    public int ClassIndex => Explanation.TargetClass;

    /// <summary>The label of <see cref="ClassIndex"/> stored in the model; null when the model has no labels.</summary>
    public string? Label { get; }

    /// <summary>The explained score on the unaltered input: the raw logit of <see cref="ClassIndex"/> unless the
    /// target says otherwise (softmax probability, similarity).</summary>
    public float Score => Explanation.Score;

    /// <summary>The layers the map was computed at (tensor names); empty for pixel-space methods.</summary>
    public IReadOnlyList<string> Layers => Explanation.Layers;

    /// <summary>Map width: the model's input width.</summary>
    public int Width { get; }

    /// <summary>Map height: the model's input height.</summary>
    public int Height { get; }

    /// <summary>The map, <see cref="Height"/> x <see cref="Width"/> values in [0, 1], row-major (index y * Width + x).
    /// This is the result's own array: changing it changes the pictures drawn from it.</summary>
    public float[] Map => Explanation.Map.Data;

    /// <summary>The picture the map explains: the part of the photo the model sees (its centre crop) at the photo's
    /// resolution, up to 1024 pixels a side; for a tensor input its
    /// denormalized pixels; null when the input has no RGB or grey form.</summary>
    public RgbImage? Image { get; }

    /// <summary>Everything the method computed: also the map at layer resolution before ReLU and normalization
    /// (<see cref="Explanation.Raw"/>) and the channel weights where the method has them.</summary>
    public Explanation Explanation { get; }

    /// <summary>The preprocessed model input (1, C, H, W) the map was computed on (shared by every result of the same
    /// image); the metrics perturb it.</summary>
    internal HostTensor Input { get; }

    /// <summary>A copy of <see cref="Map"/> as a [y, x] array.</summary>
    public float[,] ToArray2D()
    {
        var map = new float[Height, Width];
        var data = Map;
        for (int y = 0; y < Height; y++)
        {
            for (int x = 0; x < Width; x++)
                map[y, x] = data[y * Width + x];
        }
        return map;
    }

    /// <summary>The whole photo with the model's crop (null for inputs that are not photos).</summary>
    internal PhotoView? Photo { get; init; }

    /// <summary><see cref="ToOverlay(OverlayOptions)"/> with the default options and heatmap weight
    /// <paramref name="alpha"/>: for a photo, the whole photo with the map in jet colours over the model's crop,
    /// <c>(1 - alpha) * image + alpha * jet(map)</c>, and the crop outlined.</summary>
    /// <param name="alpha">Weight of the heatmap, in [0, 1].</param>
    public RgbImage ToOverlay(float alpha = Overlay.DefaultAlpha) => ToOverlay(OverlayOptions.Default with { Alpha = alpha });

    /// <summary>The picture of the result as <paramref name="options"/> say. A CAM map is blended over the picture
    /// in the colormap (jet, viridis, turbo, inferno...) with the heatmap's weight and an optional contour around its
    /// top-k% region. Pixel-space attributions (guided-backprop, saliency, integrated-gradients, deconvnet,
    /// smoothgrad, guided-gradcam) are drawn as Captum draws them: summed over channels, absolute, positive or
    /// signed (<see cref="OverlayOptions.Sign"/>), clipped at the 99% cumulative threshold, in blues, greens or
    /// red-white-green over the photo in grey. The class-model image is the synthesized image deprocessed with the
    /// model's own preprocessing. <see cref="OverlayOptions.View"/> Full (the default) draws the whole photo, scaled
    /// to at most 1600 pixels a side, with the map over the model's crop and the crop outlined; Crop draws over
    /// <see cref="Image"/> only. Without a picture: the colours alone, at map resolution.</summary>
    /// <param name="options">Colormap, alpha, contour, view, sign mode.</param>
    /// <example><code>
    /// var png = result.ToOverlay(new OverlayOptions { Colormap = ColormapKind.Viridis, Alpha = 0.4f, ContourPercent = 20 });
    /// </code></example>
    public RgbImage ToOverlay(OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ExplanationPicture.Draw(Explanation, Image, Photo, _preprocessing, options);
    }

    /// <summary>The map in jet colours alone, <see cref="Width"/> x <see cref="Height"/>.</summary>
    public RgbImage ToHeatmap() => Overlay.Heatmap(Explanation.Map);

    /// <summary>Writes <see cref="ToOverlay(float)"/> as a PNG file, atomically (a temporary file in the same folder
    /// replaces <paramref name="path"/>, which is overwritten if it exists).</summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="alpha">Weight of the heatmap, in [0, 1].</param>
    public void SaveOverlayPng(string path, float alpha = Overlay.DefaultAlpha) =>
        Overlay.WritePng(ToOverlay(alpha), path);

    /// <summary>Writes <see cref="ToOverlay(OverlayOptions)"/> as a PNG file, atomically.</summary>
    /// <param name="path">The PNG file to write (overwritten if it exists).</param>
    /// <param name="options">Colormap, alpha, contour.</param>
    public void SaveOverlayPng(string path, OverlayOptions options) => Overlay.WritePng(ToOverlay(options), path);

    /// <summary>The overlay encoded as PNG bytes (for a response body or a database instead of a file).</summary>
    /// <param name="alpha">Weight of the heatmap, in [0, 1].</param>
    public byte[] EncodeOverlayPng(float alpha = Overlay.DefaultAlpha) => Overlay.EncodePng(ToOverlay(alpha));

    /// <summary><see cref="ToOverlay(OverlayOptions)"/> encoded as PNG bytes.</summary>
    /// <param name="options">Colormap, alpha, contour.</param>
    public byte[] EncodeOverlayPng(OverlayOptions options) => Overlay.EncodePng(ToOverlay(options));

    /// <summary>The final map as a .npy file's bytes: float32 (H, W) in [0, 1] at input resolution.</summary>
    public byte[] EncodeMapNpy() => EncodeNpy(Explanation.Map);

    /// <summary>The raw map as a .npy file's bytes: at layer resolution before ReLU and normalization (for
    /// pixel-space methods the signed (C, H, W) attribution; for class-model the synthesized input).</summary>
    public byte[] EncodeRawNpy() => EncodeNpy(Explanation.Raw);

    /// <summary>
    /// One picture of several results of the same image: a labelled tile per result (the method's name, and the
    /// class when results of several classes are shown), each the <see cref="ToOverlay(OverlayOptions)"/> picture
    /// scaled to the first overlay's size, as PNG bytes.
    /// </summary>
    /// <param name="results">The results, in tile order.</param>
    /// <param name="options">Colormap, alpha, contour of every tile.</param>
    public static byte[] EncodeGridPng(IReadOnlyList<CamResult> results, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(options);
        if (results.Count == 0)
            throw new ArgumentException("no results to draw", nameof(results));
        var size = ExplanationPicture.TileSize(results[0].Image, results[0].Photo, options);
        var titles = Titles(results);
        var tiles = results.Select((r, i) =>
        {
            var picture = r.ToOverlay(options);
            // Tiles share one size (at most 512 px a side): the class-model image (input resolution) is scaled too.
            if (size is { } s && (picture.Width, picture.Height) != s)
                picture = Resize.ImageBilinear(picture, s.Width, s.Height);
            return (titles[i], picture);
        }).ToList();
        return Overlay.EncodePng(MapCoincidence.Grid(tiles, results.Select(r => r.Explanation).ToList(), out _));
    }

    /// <summary>The tiles of <see cref="EncodeGridPng"/> whose maps coincide, with the reason
    /// (<see cref="MapCoincidence.Find"/>), labelled as the grid labels them.</summary>
    /// <param name="results">The results, in tile order.</param>
    public static IReadOnlyList<MapCoincidence.Group> Coincidences(IReadOnlyList<CamResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var titles = Titles(results);
        return MapCoincidence.Find(results.Select((r, i) => (titles[i], r.Explanation)).ToList());
    }

    private static string[] Titles(IReadOnlyList<CamResult> results)
    {
        bool classes = results.Select(r => r.ClassIndex).Distinct().Count() > 1;
        return results.Select(r => classes
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{r.Method} {r.ClassIndex}")
            : r.Method).ToArray();
    }

    /// <summary>Any picture (an overlay, a chart) encoded as PNG bytes.</summary>
    /// <param name="image">The picture.</param>
    public static byte[] EncodePng(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return Overlay.EncodePng(image);
    }

    private static byte[] EncodeNpy(HostTensor tensor)
    {
        using var stream = new MemoryStream();
        IO.Npy.Write(stream, tensor);
        return stream.ToArray();
    }
}
