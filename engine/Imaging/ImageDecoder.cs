using System.Buffers.Binary;
using CamEngine.IO;
using StbImageSharp;

namespace CamEngine.Imaging;

/// <summary>
/// Decodes PNG, JPEG and BMP files to 8-bit RGB with StbImageSharp, treating every file as hostile:
/// the format is sniffed from the magic bytes (anything else is refused), the decoder reads from a stream that
/// clamps seeks to the data (StbImageSharp otherwise spins forever on some truncated JPEGs), the dimensions are
/// read first and checked against a pixel budget and <see cref="MaxSide"/> before any pixel is decoded (crafted
/// BMP headers declare hundreds of megapixels), and decoder failures become <see cref="InvalidInputException"/>
/// naming the file. Alpha is dropped; 16-bit PNGs are reduced to 8 bits by the decoder.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Default pixel budget: 50 megapixels (150 MB as RGB).</summary>
    public const long DefaultMaxPixels = 50_000_000;

    /// <summary>Longest side accepted, in pixels.</summary>
    public const int MaxSide = 16384;

    /// <summary>Largest encoded file read, in bytes.</summary>
    public const long MaxFileBytes = 512L << 20;

    /// <summary>Reads (at most <see cref="MaxFileBytes"/> bytes, counted as they are read, so devices and pipes are
    /// bounded too) and decodes the image file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, too large or not a valid image.</exception>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = BoundedReader.OpenRead(path, MaxFileBytes);
        return Decode(ReadSniffed(stream, path), path, maxPixels);
    }

    /// <summary>Reads the image file at <paramref name="path"/> asynchronously (at most <see cref="MaxFileBytes"/>
    /// bytes), then decodes it as <see cref="Load(string, long)"/> does.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, too large or not a valid image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<RgbImage> LoadAsync(
        string path, long maxPixels = DefaultMaxPixels, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = BoundedReader.OpenRead(path, MaxFileBytes);
        byte[] bytes;
        await using (stream.ConfigureAwait(false))
        {
            var head = new byte[SniffBytes];
            int n = await stream.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken)
                .ConfigureAwait(false);
            if (Sniff(head.AsSpan(0, n)) == ImageFormat.Unknown)
                throw NotAnImage(path);
            var rest = await BoundedReader.ReadAllBytesAsync(stream, MaxFileBytes - n, path, cancellationToken).ConfigureAwait(false);
            bytes = [.. head.AsSpan(0, n), .. rest];
        }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Reads <paramref name="stream"/> to its end (at most <see cref="MaxFileBytes"/>) and decodes it;
    /// <paramref name="name"/> names the source in error messages.</summary>
    /// <exception cref="InvalidInputException">The stream holds too many bytes or no valid image.</exception>
    public static RgbImage Decode(Stream stream, string name = "stream", long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Decode(ReadSniffed(stream, name), name, maxPixels);
    }

    /// <summary>Bytes read before anything else to tell the format.</summary>
    private const int SniffBytes = 8;

    /// <summary>Reads the first bytes, refuses a source that is not an image at once (<c>/dev/zero</c> or a pipe
    /// of text is refused after 8 bytes, not after <see cref="MaxFileBytes"/>), then reads the rest, bounded.</summary>
    private static byte[] ReadSniffed(Stream stream, string name)
    {
        var head = new byte[SniffBytes];
        int n;
        try
        {
            n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new InvalidInputException($"{name}: cannot read: {e.Message}", e);
        }
        if (Sniff(head.AsSpan(0, n)) == ImageFormat.Unknown)
            throw NotAnImage(name);
        var rest = BoundedReader.ReadAllBytes(stream, MaxFileBytes - n, name);
        return [.. head.AsSpan(0, n), .. rest];
    }

    private static InvalidInputException NotAnImage(string name) => new($"not a PNG, JPEG or BMP image: {name}");

    /// <summary>Decodes an encoded PNG, JPEG or BMP image held in <paramref name="data"/>.</summary>
    public static RgbImage Decode(byte[] data, string name = "image", long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(data);
        var format = Sniff(data);
        if (format == ImageFormat.Unknown)
            throw NotAnImage(name);
        if (format == ImageFormat.Jpeg)
            ImageStructure.CheckJpeg(data, name);

        ImageInfo? info;
        try
        {
            info = ImageInfo.FromStream(new ClampedReadOnlyStream(data));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidInputException($"corrupt image: {name}: {DecoderText(e)}", e);
        }
        if (info is not { } found)
            throw new InvalidInputException($"corrupt or truncated image: {name}");
        int width = found.Width, height = found.Height;
        // A top-down BMP stores a negative height; stb_image's info passes it on as is (its decoder reads such files).
        if (format == ImageFormat.Bmp && height < 0 && height != int.MinValue)
            height = -height;
        if (width <= 0 || height <= 0)
            throw new InvalidInputException($"corrupt or truncated image: {name}: the header gives {width}x{height} pixels");
        if (width > MaxSide || height > MaxSide)
            throw new InvalidInputException(
                $"image too large: {name}: {width}x{height} has a side over {MaxSide} pixels");
        if ((long)width * height > maxPixels)
            throw new InvalidInputException(
                $"image too large: {name}: {width}x{height} exceeds the budget of {maxPixels} pixels");

        if (format == ImageFormat.Bmp)
            CheckBmpLength(data, width, height, name);
        if (format == ImageFormat.Png)
            ImageStructure.CheckPng(data, name);

        ImageResult result;
        try
        {
            result = ImageResult.FromStream(new ClampedReadOnlyStream(data), ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidInputException($"cannot decode image: {name}: {DecoderText(e)}", e);
        }
        if (result.Width != width || result.Height != height || result.Data.Length != width * height * 3)
            throw new InvalidInputException(
                $"cannot decode image: {name}: decoded {result.Width}x{result.Height} differs from the header");
        return ExifOrientation.Upright(data, new RgbImage(result.Width, result.Height, result.Data));
    }

    /// <summary>StbImageSharp's error text, which can hold NUL bytes (a C string copied whole): cut at the first
    /// NUL; the exception's constructor escapes what else is not printable.</summary>
    private static string DecoderText(Exception e)
    {
        string text = e.Message;
        int nul = text.IndexOf('\0', StringComparison.Ordinal);
        text = nul >= 0 ? text[..nul] : text;
        return text.Length > 0 ? text : e.GetType().Name;
    }

    /// <summary>stb_image fills missing BMP pixel data with zeros instead of failing; for uncompressed BMPs the
    /// needed length is known from the header, so a short file is refused here.</summary>
    private static void CheckBmpLength(byte[] data, int width, int height, string name)
    {
        if (data.Length < 34)
            throw new InvalidInputException($"truncated BMP image: {name}");
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(10));
        int dibSize = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(14));
        if (dibSize < 40)
            return; // OS/2 BITMAPCOREHEADER: leave to the decoder
        int bpp = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(28));
        int compression = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(30));
        if (compression != 0 || bpp is not (1 or 4 or 8 or 16 or 24 or 32))
            return; // RLE and bitfield layouts have no fixed size
        long stride = ((long)width * bpp + 31) / 32 * 4;
        long needed = offset + stride * height;
        if (data.Length < needed)
            throw new InvalidInputException(
                $"truncated BMP image: {name}: {width}x{height} at {bpp} bpp needs {needed} bytes, file has {data.Length}");
    }

    /// <summary>The format named by the first bytes: PNG <c>89 50 4E 47 0D 0A 1A 0A</c>, JPEG <c>FF D8 FF</c>,
    /// BMP <c>42 4D</c> ("BM").</summary>
    internal static ImageFormat Sniff(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
            return ImageFormat.Png;
        if (data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return ImageFormat.Jpeg;
        if (data.StartsWith((ReadOnlySpan<byte>)[0x42, 0x4D]))
            return ImageFormat.Bmp;
        return ImageFormat.Unknown;
    }
}
