namespace CamEngine.Imaging;

/// <summary>An 8-bit RGB image: <see cref="Data"/> holds Height rows of Width pixels, each R, G, B.</summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="data"/> (not copied), which must hold width * height * 3 bytes.</summary>
    public RgbImage(int width, int height, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if ((long)width * height * 3 != data.Length)
            throw new ArgumentException($"{width}x{height} RGB needs {(long)width * height * 3} bytes, got {data.Length}");
        Width = width;
        Height = height;
        Data = data;
    }

    /// <summary>Creates a black image.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[checked(width * height * 3)]) { }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Interleaved RGB bytes, row-major, no row padding.</summary>
    public byte[] Data { get; }

    /// <summary>The (r, g, b) of the pixel in column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = Offset(x, y);
            return (Data[i], Data[i + 1], Data[i + 2]);
        }
    }

    /// <summary>Index of the red byte of pixel (x, y) in <see cref="Data"/>.</summary>
    public int Offset(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"pixel ({x},{y}) outside {Width}x{Height}");
        return (y * Width + x) * 3;
    }

    /// <summary>A copy of the <paramref name="width"/> x <paramref name="height"/> region whose top-left pixel is
    /// (<paramref name="left"/>, <paramref name="top"/>).</summary>
    public RgbImage Crop(int left, int top, int width, int height)
    {
        if (left < 0 || top < 0 || width <= 0 || height <= 0 || left + width > Width || top + height > Height)
            throw new ArgumentOutOfRangeException(nameof(left),
                $"crop {width}x{height} at ({left},{top}) does not fit in {Width}x{Height}");
        var dst = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            Data.AsSpan(((top + y) * Width + left) * 3, width * 3).CopyTo(dst.AsSpan(y * width * 3));
        return new RgbImage(width, height, dst);
    }
}
