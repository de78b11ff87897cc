using CamEngine.Model;

namespace CamEngine.Imaging;

/// <summary>
/// A whole photo for <see cref="OverlayView.Full"/> pictures: the upright photo scaled to at most
/// <see cref="OverlayOptions.MaxFullViewSide"/> pixels on its longer side, and the region the model saw (its centre
/// crop) in that picture's pixel coordinates, edges included (<see cref="Left"/> to <see cref="Right"/>, a
/// continuous box: pixel x covers [x, x + 1)).
/// <para>The box inverts <see cref="ImagePreprocessor.ResizeAndCrop"/>: the photo W x H is resized to w x h
/// (shorter side ResizeShorter, longer side floor(ResizeShorter * long / short), so the two axes' scales may differ
/// slightly), the crop keeps [left, left + Width) x [top, top + Height) of it with left = (w - Width) / 2 and
/// top = (h - Height) / 2 in integers; a resized pixel edge e lies at e * W / w in the photo, because the bilinear
/// resize maps pixel centres as (e + 0.5) * W / w - 0.5. The box is then scaled with the photo.</para>
/// </summary>
internal sealed class PhotoView
{
    /// <summary>Width of the crop outline in pixels.</summary>
    public const int OutlineWidth = 2;

    /// <summary>Colour of the crop outline (white; a 1-pixel black line runs along its inside for contrast on pale
    /// photos).</summary>
    public static readonly (byte R, byte G, byte B) OutlineColor = (255, 255, 255);

    private PhotoView(RgbImage photo, double left, double top, double right, double bottom)
    {
        Photo = photo;
        Left = left;
        Top = top;
        Right = right;
        Bottom = bottom;
    }

    /// <summary>The photo, upright, scaled to at most <see cref="OverlayOptions.MaxFullViewSide"/> pixels a side.</summary>
    public RgbImage Photo { get; }

    /// <summary>Left edge of the model's crop in <see cref="Photo"/>'s pixels.</summary>
    public double Left { get; }

    /// <summary>Top edge of the model's crop.</summary>
    public double Top { get; }

    /// <summary>Right edge of the model's crop (exclusive).</summary>
    public double Right { get; }

    /// <summary>Bottom edge of the model's crop (exclusive).</summary>
    public double Bottom { get; }

    /// <summary>The crop box in whole pixels of <see cref="Photo"/>: the edges rounded to the nearest pixel edge,
    /// at least one pixel wide and high, inside the photo.</summary>
    public (int X, int Y, int Width, int Height) PixelBox
    {
        get
        {
            int x0 = Math.Clamp((int)Math.Round(Left), 0, Photo.Width - 1);
            int y0 = Math.Clamp((int)Math.Round(Top), 0, Photo.Height - 1);
            int x1 = Math.Clamp((int)Math.Round(Right), x0 + 1, Photo.Width);
            int y1 = Math.Clamp((int)Math.Round(Bottom), y0 + 1, Photo.Height);
            return (x0, y0, x1 - x0, y1 - y0);
        }
    }

    /// <summary>The whole-photo view of <paramref name="photo"/> (decoded, upright) for a model preprocessed by
    /// <paramref name="p"/>.</summary>
    public static PhotoView Of(RgbImage photo, Preprocessing p, int maxSide = OverlayOptions.MaxFullViewSide)
    {
        ArgumentNullException.ThrowIfNull(photo);
        ArgumentNullException.ThrowIfNull(p);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSide);
        var (left, top, right, bottom) = CropBox(photo.Width, photo.Height, p.ResizeShorter, p.Width, p.Height);
        int w = photo.Width, h = photo.Height, longest = Math.Max(w, h);
        if (longest <= maxSide)
            return new PhotoView(photo, left, top, right, bottom);
        double shrink = (double)maxSide / longest;
        int sw = Math.Max(1, (int)Math.Round(w * shrink)), sh = Math.Max(1, (int)Math.Round(h * shrink));
        double fx = (double)sw / w, fy = (double)sh / h;
        return new PhotoView(Resize.ImageBilinear(photo, sw, sh), left * fx, top * fy, right * fx, bottom * fy);
    }

    /// <summary>The model's crop in the pixel coordinates of a <paramref name="width"/> x <paramref name="height"/>
    /// photo (continuous edges), for a resize of the shorter side to <paramref name="resizeShorter"/> and a centre
    /// crop of <paramref name="cropWidth"/> x <paramref name="cropHeight"/>, as <see cref="ImagePreprocessor.ResizeAndCrop"/>
    /// does them.</summary>
    public static (double Left, double Top, double Right, double Bottom) CropBox(
        int width, int height, int resizeShorter, int cropWidth, int cropHeight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(resizeShorter);
        int rw, rh;
        if (width <= height)
        {
            rw = resizeShorter;
            rh = (int)Math.Max(1, (long)resizeShorter * height / width);
        }
        else
        {
            rh = resizeShorter;
            rw = (int)Math.Max(1, (long)resizeShorter * width / height);
        }
        if (rw < cropWidth || rh < cropHeight)
            throw new InvalidInputException($"image resized to {rw}x{rh} is smaller than the {cropWidth}x{cropHeight} crop");
        int left = (rw - cropWidth) / 2, top = (rh - cropHeight) / 2;
        double sx = (double)width / rw, sy = (double)height / rh;
        return (left * sx, top * sy, (left + cropWidth) * sx, (top + cropHeight) * sy);
    }

    /// <summary>
    /// The whole photo with <paramref name="paint"/> applied to the crop region: <paramref name="paint"/> gets the
    /// photo's pixels inside <see cref="PixelBox"/> and returns the picture of the same size to put there (a map
    /// blended over them); the box is then outlined: <see cref="OutlineWidth"/> pixels of <see cref="OutlineColor"/>
    /// just outside it where the photo has room (inside it at a photo edge), with a 1-pixel black line along the
    /// box's own border pixels.
    /// </summary>
    public RgbImage Render(Func<RgbImage, RgbImage> paint)
    {
        ArgumentNullException.ThrowIfNull(paint);
        var (x0, y0, bw, bh) = PixelBox;
        var region = Photo.Crop(x0, y0, bw, bh);
        var painted = paint(region);
        if (painted.Width != bw || painted.Height != bh)
            throw new CamEngineException($"the painted crop is {painted.Width}x{painted.Height}, the box {bw}x{bh}");
        var result = new RgbImage(Photo.Width, Photo.Height, (byte[])Photo.Data.Clone());
        for (int y = 0; y < bh; y++)
            painted.Data.AsSpan(y * bw * 3, bw * 3).CopyTo(result.Data.AsSpan(((y0 + y) * Photo.Width + x0) * 3));
        DrawOutline(result, x0, y0, bw, bh);
        return result;
    }

    private static void DrawOutline(RgbImage image, int x0, int y0, int bw, int bh)
    {
        // The box's own border pixels: black.
        Ring(image, x0, y0, x0 + bw - 1, y0 + bh - 1, (0, 0, 0));
        // OutlineWidth rings outside it (clipped by the photo's edge; where clipped, the ring moves inside).
        for (int k = 1; k <= OutlineWidth; k++)
        {
            int left = x0 - k >= 0 ? x0 - k : x0 + k, top = y0 - k >= 0 ? y0 - k : y0 + k;
            int right = x0 + bw - 1 + k < image.Width ? x0 + bw - 1 + k : x0 + bw - 1 - k;
            int bottom = y0 + bh - 1 + k < image.Height ? y0 + bh - 1 + k : y0 + bh - 1 - k;
            Ring(image, left, top, right, bottom, OutlineColor);
        }
    }

    private static void Ring(RgbImage image, int left, int top, int right, int bottom, (byte R, byte G, byte B) c)
    {
        if (left > right || top > bottom)
            return;
        for (int x = left; x <= right; x++)
        {
            Put(image, x, top, c);
            Put(image, x, bottom, c);
        }
        for (int y = top; y <= bottom; y++)
        {
            Put(image, left, y, c);
            Put(image, right, y, c);
        }
    }

    private static void Put(RgbImage image, int x, int y, (byte R, byte G, byte B) c)
    {
        if ((uint)x >= (uint)image.Width || (uint)y >= (uint)image.Height)
            return;
        int o = image.Offset(x, y);
        image.Data[o] = c.R;
        image.Data[o + 1] = c.G;
        image.Data[o + 2] = c.B;
    }
}
