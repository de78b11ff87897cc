using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>Post-processing of saliency maps: ReLU, min-max normalisation, finiteness checks.</summary>
internal static class MapOps
{
    /// <summary>pytorch-grad-cam's epsilon in <c>scale_cam_image</c>.</summary>
    public const double MinMaxEpsilon = 1e-7;

    /// <summary>Min-max normalisation as pytorch-grad-cam does it: c = c - min(c); c = c / (1e-7 + max(c)).
    /// The divisor is formed in double and rounded to float32 as NumPy does for a float32 array; the division is
    /// float32. A constant map becomes all zeros (0 / 1e-7), never NaN. Works in place over the whole span.</summary>
    public static void MinMaxNormalize(Span<float> map) => MinMaxNormalize(map, MinMaxEpsilon);

    /// <summary>Min-max normalisation in place: <c>c -= min(c); c /= epsilon + max(c)</c>, the divisor rounded to
    /// float32 (pytorch-grad-cam uses epsilon 1e-7, TorchCAM 1e-8).</summary>
    public static void MinMaxNormalize(Span<float> map, double epsilon)
    {
        if (map.IsEmpty)
            return;
        float min = float.PositiveInfinity;
        foreach (float v in map)
            min = Math.Min(min, v);
        float max = float.NegativeInfinity;
        for (int i = 0; i < map.Length; i++)
        {
            map[i] -= min;
            max = Math.Max(max, map[i]);
        }
        float denom = (float)(epsilon + max);
        for (int i = 0; i < map.Length; i++)
            map[i] /= denom;
    }

    /// <summary>A min-max normalised copy of <paramref name="map"/> (over all its elements).</summary>
    public static HostTensor MinMaxNormalize(HostTensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var copy = (float[])map.Data.Clone();
        MinMaxNormalize(copy);
        return new HostTensor(map.Shape, copy);
    }

    /// <summary>max(x, 0) in place; NaN stays NaN (checked separately by <see cref="EnsureFinite"/>).</summary>
    public static void Relu(Span<float> map)
    {
        for (int i = 0; i < map.Length; i++)
        {
            if (map[i] < 0)
                map[i] = 0;
        }
    }

    /// <summary>A copy of <paramref name="map"/> with negative values set to 0.</summary>
    public static HostTensor Relu(HostTensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var copy = (float[])map.Data.Clone();
        Relu(copy);
        return new HostTensor(map.Shape, copy);
    }

    /// <summary>Throws <see cref="CamEngineException"/> naming <paramref name="name"/> and the first bad index
    /// when <paramref name="map"/> holds NaN or an infinity.</summary>
    public static void EnsureFinite(ReadOnlySpan<float> map, string name)
    {
        for (int i = 0; i < map.Length; i++)
        {
            if (!float.IsFinite(map[i]))
                throw new CamEngineException($"map '{name}' has a non-finite value ({map[i]}) at index {i}");
        }
    }
}
