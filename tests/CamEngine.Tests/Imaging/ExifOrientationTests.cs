using CamEngine.Imaging;
using NUnit.Framework;
using StbImageWriteSharp;

namespace CamEngine.Tests.Imaging;

/// <summary>
/// EXIF orientation: a 24x16 JPEG of six 8x8 blocks in six colours (stored layout A B C / D E F) gets an APP1 Exif
/// segment with each orientation, in both TIFF byte orders, and the decoder must return the upright picture: the
/// size and the colour at the centre of every block. The six colours differ, so each of the 8 transforms gives its
/// own layout.
/// </summary>
public class ExifOrientationTests
{
    // Stored layout: row 0 = A B C, row 1 = D E F.
    private static readonly (byte R, byte G, byte B)[] Colors =
        [(230, 30, 30), (30, 200, 30), (30, 30, 230), (240, 240, 40), (40, 230, 230), (230, 40, 230)];

    internal static byte[] BaseJpeg()
    {
        var rgb = new byte[24 * 16 * 3];
        for (int y = 0; y < 16; y++)
        {
            for (int x = 0; x < 24; x++)
            {
                var c = Colors[y / 8 * 3 + x / 8];
                int o = (y * 24 + x) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = (c.R, c.G, c.B);
            }
        }
        using var ms = new MemoryStream();
        new ImageWriter().WriteJpg(rgb, 24, 16, ColorComponents.RedGreenBlue, ms, 100);
        return ms.ToArray();
    }

    /// <summary>An APP1 "Exif" segment whose IFD0 holds <paramref name="extraEntries"/> unrelated entries, then the
    /// orientation as one SHORT (tag 0x0112, type 3, count 1).</summary>
    internal static byte[] ExifSegment(int orientation, bool littleEndian, int extraEntries = 1)
    {
        var tiff = new List<byte>();
        void U16(int v) => tiff.AddRange(littleEndian ? [(byte)v, (byte)(v >> 8)] : [(byte)(v >> 8), (byte)v]);
        void U32(int v) => tiff.AddRange(littleEndian
            ? [(byte)v, (byte)(v >> 8), (byte)(v >> 16), (byte)(v >> 24)]
            : [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
        tiff.AddRange(littleEndian ? "II"u8.ToArray() : "MM"u8.ToArray());
        U16(42);
        U32(8);
        U16(extraEntries + 1);
        for (int k = 0; k < extraEntries; k++)
        {
            U16(0x011A); // XResolution-like unrelated tag
            U16(4);
            U32(1);
            U32(72);
        }
        U16(0x0112);
        U16(3);
        U32(1);
        U16(orientation);
        U16(0);
        U32(0); // no next IFD
        byte[] payload = [.. "Exif\0\0"u8.ToArray(), .. tiff];
        int length = payload.Length + 2;
        return [0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. payload];
    }

    internal static byte[] WithSegment(byte[] jpeg, byte[] segment) => [jpeg[0], jpeg[1], .. segment, .. jpeg[2..]];

    /// <summary>The stored block (row, column) that the upright picture shows at block (row, column) for each
    /// orientation, from the EXIF definitions (which stored edge is the picture's top and left).</summary>
    private static int StoredBlock(int orientation, int row, int col, int rows, int cols) => orientation switch
    {
        1 => row * 3 + col,
        2 => row * 3 + (2 - col),
        3 => (1 - row) * 3 + (2 - col),
        4 => (1 - row) * 3 + col,
        5 => col * 3 + row,
        6 => (1 - col) * 3 + row,
        7 => (1 - col) * 3 + (2 - row),
        8 => col * 3 + (2 - row),
        _ => throw new ArgumentOutOfRangeException(nameof(orientation)),
    };

    [Test]
    public void Each_orientation_decodes_upright([Range(1, 8)] int orientation, [Values] bool littleEndian)
    {
        var jpeg = WithSegment(BaseJpeg(), ExifSegment(orientation, littleEndian));
        Assert.That(ExifOrientation.Read(jpeg), Is.EqualTo(orientation));
        var image = ImageDecoder.Decode(jpeg, "oriented.jpg");
        bool swap = orientation >= 5;
        Assert.That((image.Width, image.Height), Is.EqualTo(swap ? (16, 24) : (24, 16)));
        int rows = image.Height / 8, cols = image.Width / 8;
        for (int row = 0; row < rows; row++)
        {
            for (int col = 0; col < cols; col++)
            {
                var want = Colors[StoredBlock(orientation, row, col, rows, cols)];
                var (r, g, b) = image[col * 8 + 4, row * 8 + 4];
                Assert.That(new[] { r, g, b }, Is.EqualTo(new[] { want.R, want.G, want.B }).Within(12),
                    $"orientation {orientation}, block ({row}, {col})");
            }
        }
    }

    [Test]
    public void Apply_maps_each_stored_pixel_exactly()
    {
        // 3x2 image, pixel value = 10 * (stored index + 1); upright pixel (x, y) per the documented formulas.
        var data = new byte[3 * 2 * 3];
        for (int i = 0; i < 6; i++)
            data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = (byte)(10 * (i + 1));
        var stored = new RgbImage(3, 2, data);
        // Row-major red bytes of the upright picture (10 = stored (0,0), 20 = (1,0), 30 = (2,0), 40 = (0,1) ...).
        var expected = new Dictionary<int, byte[]>
        {
            [1] = [10, 20, 30, 40, 50, 60],
            [2] = [30, 20, 10, 60, 50, 40],
            [3] = [60, 50, 40, 30, 20, 10],
            [4] = [40, 50, 60, 10, 20, 30],
            [5] = [10, 40, 20, 50, 30, 60],
            [6] = [40, 10, 50, 20, 60, 30],
            [7] = [60, 30, 50, 20, 40, 10],
            [8] = [30, 60, 20, 50, 10, 40],
        };
        foreach (var (orientation, reds) in expected)
        {
            var up = ExifOrientation.Apply(stored, orientation);
            Assert.That((up.Width, up.Height), Is.EqualTo(orientation >= 5 ? (2, 3) : (3, 2)), $"orientation {orientation}");
            Assert.That(Enumerable.Range(0, 6).Select(i => up.Data[3 * i]), Is.EqualTo(reds), $"orientation {orientation}");
        }
    }

    [Test]
    public void Missing_or_lying_exif_means_orientation_1()
    {
        var jpeg = BaseJpeg();
        Assert.That(ExifOrientation.Read(jpeg), Is.EqualTo(1), "no Exif segment");
        Assert.That(ExifOrientation.Read(WithSegment(jpeg, ExifSegment(9, true))), Is.EqualTo(1), "value outside 1..8");
        Assert.That(ExifOrientation.Read(WithSegment(jpeg, ExifSegment(0, false))), Is.EqualTo(1), "value 0");
        var bad = ExifSegment(6, true);
        bad[10] = (byte)'X'; // byte order "XI"
        Assert.That(ExifOrientation.Read(WithSegment(jpeg, bad)), Is.EqualTo(1), "bad TIFF byte order");
        var many = ExifSegment(6, true);
        many[18] = 0xFF; // IFD0 claims 255 entries: the walk stops at the segment's end
        Assert.That(ExifOrientation.Read(WithSegment(jpeg, many)), Is.EqualTo(6), "the orientation entry comes before the end");
        var far = ExifSegment(6, true, extraEntries: 3);
        far[4 + 6 + 4] = 0xF0; // IFD0 offset past the segment
        Assert.That(ExifOrientation.Read(WithSegment(jpeg, far)), Is.EqualTo(1), "IFD0 offset outside the segment");
        var truncated = WithSegment(jpeg, ExifSegment(6, true))[..20];
        Assert.That(ExifOrientation.Read(truncated), Is.EqualTo(1), "segment longer than the data");
        Assert.That(ExifOrientation.Read("\x89PNG"u8), Is.EqualTo(1), "not a JPEG");
        // Orientation 1 returns the decoded image itself.
        var stored = new RgbImage(2, 1, [1, 2, 3, 4, 5, 6]);
        Assert.That(ExifOrientation.Apply(stored, 1), Is.SameAs(stored));
    }
}
