using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>
/// Resizing of float maps (CAMs, activations) and of 8-bit RGB images.
/// <para><b>Maps</b>, <see cref="Bilinear(HostTensor, int, int, bool)"/>: plain bilinear interpolation (no
/// antialiasing when shrinking), in one of two conventions. Half-pixel centres (the default,
/// <c>alignCorners: false</c>): <c>src = (dst + 0.5) * in / out - 0.5</c>, clamped to [0, in - 1]; this is
/// PyTorch <c>F.interpolate(mode="bilinear", align_corners=False)</c> and OpenCV <c>INTER_LINEAR</c>, used by
/// pytorch-grad-cam for its final maps and by TorchCAM. Corner-aligned (<c>alignCorners: true</c>):
/// <c>src = dst * (in - 1) / (out - 1)</c>; this is <c>UpsamplingBilinear2d</c>, used by pytorch-grad-cam's
/// Score-CAM masks.</para>
/// <para><b>Images</b>, <see cref="ImageBilinear"/>: PIL's <c>Image.resize(size, BILINEAR)</c> algorithm: a
/// separable triangle filter whose support grows with the shrink factor (so shrinking is antialiased),
/// weights normalised per output pixel and rounded to 22-bit fixed point, a horizontal pass then a vertical
/// pass, with rounding to uint8 in between.</para>
/// </summary>
internal static class Resize
{
    /// <summary>Bilinear resize of the last two dimensions of <paramref name="map"/> ((H, W), (C, H, W), or
    /// any leading dimensions) to <paramref name="outHeight"/> x <paramref name="outWidth"/>.</summary>
    public static HostTensor Bilinear(HostTensor map, int outHeight, int outWidth, bool alignCorners = false)
    {
        ArgumentNullException.ThrowIfNull(map);
        int rank = map.Shape.Length;
        if (rank < 2)
            throw new CamEngineException($"cannot resize a map of shape {map.ShapeText}: need (..., H, W)");
        int inH = map.Shape[rank - 2], inW = map.Shape[rank - 1];
        var outShape = (int[])map.Shape.Clone();
        outShape[rank - 2] = outHeight;
        outShape[rank - 1] = outWidth;
        var result = new HostTensor(outShape);
        int planes = inH * inW == 0 ? 0 : map.Length / (inH * inW);
        for (int p = 0; p < planes; p++)
        {
            Bilinear(map.Data.AsSpan(p * inH * inW, inH * inW), inH, inW,
                result.Data.AsSpan(p * outHeight * outWidth, outHeight * outWidth), outHeight, outWidth,
                alignCorners);
        }
        return result;
    }

    /// <summary>Bilinear resize of one row-major (H, W) plane <paramref name="src"/> into <paramref name="dst"/>
    /// (outHeight, outWidth).</summary>
    public static void Bilinear(
        ReadOnlySpan<float> src, int inHeight, int inWidth,
        Span<float> dst, int outHeight, int outWidth, bool alignCorners = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        if (src.Length != inHeight * inWidth || dst.Length != outHeight * outWidth)
            throw new ArgumentException("plane lengths do not match the sizes");
        var (y0, y1, wy) = Taps(inHeight, outHeight, alignCorners);
        var (x0, x1, wx) = Taps(inWidth, outWidth, alignCorners);
        for (int oy = 0; oy < outHeight; oy++)
        {
            var rowA = src.Slice(y0[oy] * inWidth, inWidth);
            var rowB = src.Slice(y1[oy] * inWidth, inWidth);
            float ly = wy[oy];
            for (int ox = 0; ox < outWidth; ox++)
            {
                float lx = wx[ox];
                float top = (1 - lx) * rowA[x0[ox]] + lx * rowA[x1[ox]];
                float bottom = (1 - lx) * rowB[x0[ox]] + lx * rowB[x1[ox]];
                dst[oy * outWidth + ox] = (1 - ly) * top + ly * bottom;
            }
        }
    }

    /// <summary>For each output index: the two source indices and the weight of the second.</summary>
    private static (int[] I0, int[] I1, float[] W) Taps(int inSize, int outSize, bool alignCorners)
    {
        var i0 = new int[outSize];
        var i1 = new int[outSize];
        var w = new float[outSize];
        double scale = alignCorners
            ? (outSize > 1 ? (inSize - 1) / (double)(outSize - 1) : 0)
            : inSize / (double)outSize;
        for (int o = 0; o < outSize; o++)
        {
            double s = alignCorners ? o * scale : Math.Max((o + 0.5) * scale - 0.5, 0);
            int a = Math.Min((int)s, inSize - 1);
            i0[o] = a;
            i1[o] = Math.Min(a + 1, inSize - 1);
            w[o] = (float)(s - a);
            if (i1[o] == a)
                w[o] = 0;
        }
        return (i0, i1, w);
    }

    // PIL: PRECISION_BITS = 32 - 8 - 2, so that sums of 8-bit values times weights fit an int.
    private const int PrecisionBits = 22;

    /// <summary>Resizes <paramref name="image"/> to <paramref name="width"/> x <paramref name="height"/> like PIL's
    /// <c>Image.resize((width, height), Image.BILINEAR)</c>. A pass whose size is unchanged is skipped, as in PIL.
    /// The arithmetic follows PIL's 8-bit path (double weights, rounded to 22-bit integers, half-up rounding and
    /// clamping to [0, 255] after each pass), so results are expected to equal PIL's bit for bit; the tests check
    /// this on vectors produced by Pillow 9.4.</summary>
    public static RgbImage ImageBilinear(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        var current = image;
        if (width != image.Width)
            current = Pass(current, width, horizontal: true);
        if (height != image.Height)
            current = Pass(current, height, horizontal: false);
        return ReferenceEquals(current, image)
            ? new RgbImage(image.Width, image.Height, (byte[])image.Data.Clone())
            : current;
    }

    private static RgbImage Pass(RgbImage src, int outSize, bool horizontal)
    {
        int inSize = horizontal ? src.Width : src.Height;
        var (start, count, ksize, weights) = TriangleCoefficients(inSize, outSize);
        int outW = horizontal ? outSize : src.Width;
        int outH = horizontal ? src.Height : outSize;
        var dst = new byte[outW * outH * 3];
        var s = src.Data;
        int half = 1 << (PrecisionBits - 1);
        if (horizontal)
        {
            for (int y = 0; y < outH; y++)
            {
                int row = y * src.Width * 3;
                for (int x = 0; x < outW; x++)
                {
                    int r = half, g = half, b = half;
                    int k0 = x * ksize;
                    for (int t = 0; t < count[x]; t++)
                    {
                        int k = weights[k0 + t];
                        int p = row + (start[x] + t) * 3;
                        r += s[p] * k;
                        g += s[p + 1] * k;
                        b += s[p + 2] * k;
                    }
                    int o = (y * outW + x) * 3;
                    dst[o] = Clip8(r);
                    dst[o + 1] = Clip8(g);
                    dst[o + 2] = Clip8(b);
                }
            }
        }
        else
        {
            int stride = src.Width * 3;
            for (int y = 0; y < outH; y++)
            {
                int k0 = y * ksize;
                for (int i = 0; i < stride; i++)
                {
                    int acc = half;
                    for (int t = 0; t < count[y]; t++)
                        acc += s[(start[y] + t) * stride + i] * weights[k0 + t];
                    dst[y * stride + i] = Clip8(acc);
                }
            }
        }
        return new RgbImage(outW, outH, dst);
    }

    // PIL's clip8: the accumulator holds value * 2^22 plus the rounding half.
    private static byte Clip8(int v) => v <= 0 ? (byte)0 : v >= 1 << PrecisionBits << 8 ? (byte)255 : (byte)(v >> PrecisionBits);

    /// <summary>PIL's <c>precompute_coeffs</c> for the bilinear (triangle, support 1) filter, then its 8-bit
    /// fixed-point normalisation. Output pixel o covers source positions centred on (o + 0.5) * in / out.</summary>
    private static (int[] Start, int[] Count, int KSize, int[] Weights) TriangleCoefficients(int inSize, int outSize)
    {
        double scale = inSize / (double)outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 1.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * ksize];
        var w = new double[ksize];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            double inv = 1.0 / filterScale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double sum = 0;
            for (int t = 0; t < xmax; t++)
            {
                double d = Math.Abs((t + xmin - center + 0.5) * inv);
                w[t] = d < 1.0 ? 1.0 - d : 0.0;
                sum += w[t];
            }
            for (int t = 0; t < xmax; t++)
            {
                double v = sum != 0 ? w[t] / sum : w[t];
                weights[o * ksize + t] = v < 0
                    ? (int)(-0.5 + v * (1 << PrecisionBits))
                    : (int)(0.5 + v * (1 << PrecisionBits));
            }
            start[o] = xmin;
            count[o] = Math.Max(xmax, 0);
        }
        return (start, count, ksize, weights);
    }
}
