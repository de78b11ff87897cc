namespace CamEngine.Tensors;

/// <summary>Shape helpers with checked arithmetic: a hostile file must not overflow a length.</summary>
internal static class TensorShape
{
    /// <summary>Largest element count a single tensor may have (int-indexed device buffers).</summary>
    public const long MaxElements = int.MaxValue;

    /// <summary>Highest rank of a computed tensor, batch axis included: ShuffleNet's channel shuffle is rank 5,
    /// Swin's window partition rank 6.</summary>
    public const int MaxRank = 6;

    /// <summary>Product of the dimensions; throws <see cref="ArgumentException"/> on a negative dimension
    /// or when the product exceeds <see cref="MaxElements"/>.</summary>
    public static long CheckedLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0)
                throw new ArgumentException($"negative dimension in {Format(shape)}");
            n *= d;
            if (n > MaxElements)
                throw new ArgumentException($"shape {Format(shape)} has more than {MaxElements} elements");
        }
        return n;
    }

    /// <summary>Formats a shape as <c>[a,b,c]</c>.</summary>
    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(",", shape.ToArray()) + "]";

    /// <summary>True when both shapes have the same dimensions.</summary>
    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);
}
