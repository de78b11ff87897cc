namespace CamEngine.Methods;

/// <summary>What an occluded or reference region of the input is replaced with (in the model's input space).</summary>
public enum InputBaselineKind
{
    /// <summary>Zeros in the normalized input space (the dataset mean colour under mean/std normalization).</summary>
    Zero,

    /// <summary>Each channel's mean over the image.</summary>
    Mean,

    /// <summary>The image blurred with a Gaussian (separable, radius ceil(3 sigma), edges clamped).</summary>
    Blur,
}

/// <summary>Builds the baseline images of <see cref="InputBaselineKind"/> for one (C, H, W) input.</summary>
internal static class InputBaselines
{
    /// <summary>The baseline (C, H, W) of <paramref name="x"/>.</summary>
    public static float[] Make(InputBaselineKind kind, ReadOnlySpan<float> x, int channels, int height, int width, double sigma)
    {
        int plane = height * width;
        var b = new float[channels * plane];
        switch (kind)
        {
            case InputBaselineKind.Zero:
                break;
            case InputBaselineKind.Mean:
                for (int c = 0; c < channels; c++)
                {
                    double s = 0;
                    foreach (float v in x.Slice(c * plane, plane))
                        s += v;
                    b.AsSpan(c * plane, plane).Fill((float)(s / plane));
                }
                break;
            case InputBaselineKind.Blur:
                for (int c = 0; c < channels; c++)
                    Blur(x.Slice(c * plane, plane), b.AsSpan(c * plane, plane), height, width, sigma);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
        return b;
    }

    /// <summary>Gaussian blur of one (H, W) plane: rows then columns, weights exp(-d^2 / 2 sigma^2) normalized over
    /// |d| &lt;= ceil(3 sigma), positions outside clamped to the edge.</summary>
    public static void Blur(ReadOnlySpan<float> x, Span<float> y, int height, int width, double sigma)
    {
        if (!(sigma > 0))
            throw new CamEngineException($"the blur baseline needs sigma > 0, got {sigma}");
        int r = (int)Math.Ceiling(3 * sigma);
        var k = new double[2 * r + 1];
        double sum = 0;
        for (int d = -r; d <= r; d++)
            sum += k[d + r] = Math.Exp(-(double)d * d / (2 * sigma * sigma));
        for (int d = 0; d < k.Length; d++)
            k[d] /= sum;
        var tmp = new double[height * width];
        for (int i = 0; i < height; i++)
        {
            for (int j = 0; j < width; j++)
            {
                double s = 0;
                for (int d = -r; d <= r; d++)
                    s += k[d + r] * x[i * width + Math.Clamp(j + d, 0, width - 1)];
                tmp[i * width + j] = s;
            }
        }
        for (int i = 0; i < height; i++)
        {
            for (int j = 0; j < width; j++)
            {
                double s = 0;
                for (int d = -r; d <= r; d++)
                    s += k[d + r] * tmp[Math.Clamp(i + d, 0, height - 1) * width + j];
                y[i * width + j] = (float)s;
            }
        }
    }
}
