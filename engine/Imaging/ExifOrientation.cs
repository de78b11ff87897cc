using System.Buffers.Binary;

namespace CamEngine.Imaging;

/// <summary>
/// The EXIF orientation of a JPEG (TIFF tag 0x0112 in IFD0 of the APP1 "Exif" segment) and the transform that turns
/// the stored pixels into the picture the camera meant, as PIL's <c>ImageOps.exif_transpose</c> does:
/// <code>
/// 1 as stored              5 transpose (swap x and y)
/// 2 mirror left-right      6 rotate 90 degrees clockwise
/// 3 rotate 180 degrees     7 transverse (mirror about the anti-diagonal)
/// 4 mirror top-bottom      8 rotate 90 degrees counter-clockwise
/// </code>
/// The reader treats the bytes as hostile: every offset is checked against the segment, and anything it cannot read
/// (no Exif segment, a bad TIFF header, a value outside 1..8) means orientation 1, as viewers do.
/// </summary>
public static class ExifOrientation
{
    private const ushort OrientationTag = 0x0112;
    private const ushort TypeShort = 3;

    /// <summary>The orientation (1 to 8) stated by the JPEG in <paramref name="data"/>; 1 when the data is not a JPEG,
    /// has no Exif segment before the image data, or states no valid orientation.</summary>
    public static int Read(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8)
            return 1;
        int pos = 2;
        // Markers before the first scan: FF xx, then a big-endian length that counts itself.
        while (pos + 4 <= data.Length)
        {
            if (data[pos] != 0xFF)
                return 1;
            byte marker = data[pos + 1];
            if (marker == 0xFF)
            {
                pos++; // fill byte
                continue;
            }
            if (marker is 0xDA or 0xD9)
                return 1; // start of scan or end of image: no Exif before the pixels
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7))
            {
                pos += 2; // markers without a length
                continue;
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            if (length < 2 || pos + 2 + length > data.Length)
                return 1;
            var payload = data.Slice(pos + 4, length - 2);
            if (marker == 0xE1 && payload.StartsWith("Exif\0\0"u8))
                return FromTiff(payload[6..]);
            pos += 2 + length;
        }
        return 1;
    }

    /// <summary>The orientation in a TIFF block (the Exif payload after "Exif\0\0"): byte order "II" or "MM", 42,
    /// the offset of IFD0, then its entries of 12 bytes (tag, type, count, value).</summary>
    private static int FromTiff(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8)
            return 1;
        bool little;
        if (tiff[0] == 'I' && tiff[1] == 'I')
            little = true;
        else if (tiff[0] == 'M' && tiff[1] == 'M')
            little = false;
        else
            return 1;
        if (U16(tiff[2..], little) != 42)
            return 1;
        long ifd = U32(tiff[4..], little);
        if (ifd < 8 || ifd + 2 > tiff.Length)
            return 1;
        int count = U16(tiff[(int)ifd..], little);
        for (int k = 0; k < count; k++)
        {
            long entry = ifd + 2 + 12L * k;
            if (entry + 12 > tiff.Length)
                return 1;
            var e = tiff.Slice((int)entry, 12);
            if (U16(e, little) != OrientationTag)
                continue;
            if (U16(e[2..], little) != TypeShort || U32(e[4..], little) != 1)
                return 1;
            int value = U16(e[8..], little); // a single SHORT sits in the first two bytes of the value field
            return value is >= 1 and <= 8 ? value : 1;
        }
        return 1;
    }

    /// <summary>
    /// The picture <paramref name="image"/> shows once <paramref name="orientation"/> is applied; orientations 5 to 8
    /// swap width and height. Orientation 1 (or any value outside 2..8) returns <paramref name="image"/> itself.
    /// Output pixel (x, y) of an image stored W x H reads stored pixel:
    /// 2: (W-1-x, y); 3: (W-1-x, H-1-y); 4: (x, H-1-y); 5: (y, x); 6: (y, H-1-x); 7: (W-1-y, H-1-x); 8: (W-1-y, x).
    /// </summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (orientation is < 2 or > 8)
            return image;
        int w = image.Width, h = image.Height;
        bool swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = image.Data;
        var dst = new byte[src.Length];
        for (int y = 0; y < oh; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                int s = (sy * w + sx) * 3, d = (y * ow + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(ow, oh, dst);
    }

    /// <summary><paramref name="decoded"/> turned upright by the orientation its encoded file <paramref name="data"/>
    /// states (<see cref="Read"/>, then <see cref="Apply"/>); PNG and BMP data state none and pass through.</summary>
    public static RgbImage Upright(ReadOnlySpan<byte> data, RgbImage decoded) => Apply(decoded, Read(data));

    private static int U16(ReadOnlySpan<byte> b, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(b) : BinaryPrimitives.ReadUInt16BigEndian(b);

    private static long U32(ReadOnlySpan<byte> b, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
}
