using CamEngine.Tensors;

namespace CamEngine.Metrics;

/// <summary>
/// Where the object is in one image, at the map's resolution (H, W): a pixel mask, built from boxes or given
/// directly.
/// </summary>
public sealed class GroundTruth
{
    private GroundTruth(int height, int width, bool[] mask)
    {
        Height = height;
        Width = width;
        Mask = mask;
        if (!mask.Contains(true))
            throw new CamEngineException($"the ground truth covers no pixel of the {width}x{height} map");
    }

    /// <summary>Rows of the map.</summary>
    public int Height { get; }

    /// <summary>Columns of the map.</summary>
    public int Width { get; }

    /// <summary>H*W flags, row-major: true on the object.</summary>
    public IReadOnlyList<bool> Mask { get; }

    /// <summary>The union of <paramref name="boxes"/> on an H x W map; box parts outside the map are cut off, and a
    /// box entirely outside it is an error.</summary>
    public static GroundTruth FromBoxes(int height, int width, IEnumerable<PixelBox> boxes)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), "the map must have at least one pixel");
        var mask = new bool[height * width];
        foreach (var b in boxes)
        {
            if (!(b.X0 <= b.X1 && b.Y0 <= b.Y1) || !double.IsFinite(b.X0 + b.X1 + b.Y0 + b.Y1))
                throw new CamEngineException($"box {b} is empty or not finite: it needs x0 <= x1 and y0 <= y1");
            int x0 = (int)Math.Max(0, Math.Ceiling(b.X0)), x1 = (int)Math.Min(width - 1, Math.Floor(b.X1));
            int y0 = (int)Math.Max(0, Math.Ceiling(b.Y0)), y1 = (int)Math.Min(height - 1, Math.Floor(b.Y1));
            if (x0 > x1 || y0 > y1)
                throw new CamEngineException($"box {b} covers no pixel of the {width}x{height} map");
            for (int y = y0; y <= y1; y++)
            {
                for (int x = x0; x <= x1; x++)
                    mask[y * width + x] = true;
            }
        }
        return new GroundTruth(height, width, mask);
    }

    /// <summary>A mask (H, W): nonzero values mark the object.</summary>
    public static GroundTruth FromMask(HostTensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.Shape.Length != 2)
            throw new CamEngineException($"a ground-truth mask must be (H, W), got {mask.ShapeText}");
        return new GroundTruth(mask.Shape[0], mask.Shape[1], mask.Data.Select(v => v != 0).ToArray());
    }
}
