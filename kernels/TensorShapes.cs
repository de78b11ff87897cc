namespace CamEngine.Kernels;

/// <summary>
/// A permutation of the axes of a row-major tensor of rank up to 6, padded with leading 1s to rank 6:
/// <code>x: (X0..X5)   y: (D0..D5) with Dk = X[perm[k]]   y[i0..i5] = x at sum_k ik * Sk</code>
/// Sk is the stride in x of the axis that lands at output axis k. Fields, not arrays, so kernels take it by value.
/// </summary>
internal readonly record struct TransposeShape(
    int D0, int D1, int D2, int D3, int D4, int D5, int S0, int S1, int S2, int S3, int S4, int S5)
{
    /// <summary>Highest rank.</summary>
    public const int MaxRank = 6;

    /// <summary>Output element count.</summary>
    public int Length => D0 * D1 * D2 * D3 * D4 * D5;

    /// <summary>The flat input index that output element <paramref name="i"/> reads.</summary>
    public int Source(int i)
    {
        int i5 = i % D5;
        int t = i / D5;
        int i4 = t % D4;
        t /= D4;
        int i3 = t % D3;
        t /= D3;
        int i2 = t % D2;
        t /= D2;
        int i1 = t % D1;
        int i0 = t / D1;
        return i0 * S0 + i1 * S1 + i2 * S2 + i3 * S3 + i4 * S4 + i5 * S5;
    }

    /// <summary>The shape for input <paramref name="x"/> (rank 1..6) and permutation <paramref name="perm"/> of its
    /// axes; throws <see cref="ArgumentException"/> when perm is not a permutation.</summary>
    public static TransposeShape Create(int[] x, int[] perm)
    {
        if (x.Length is < 1 or > MaxRank)
            throw new ArgumentException($"transpose needs rank 1 to {MaxRank}, got {x.Length}");
        if (perm.Length != x.Length || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= x.Length))
            throw new ArgumentException($"perm [{string.Join(",", perm)}] is not a permutation of {x.Length} axes");
        var stride = new int[x.Length];
        int s = 1;
        for (int k = x.Length - 1; k >= 0; k--)
        {
            stride[k] = s;
            s *= x[k];
        }
        int pad = MaxRank - x.Length;
        var d = new int[MaxRank];
        var st = new int[MaxRank];
        for (int k = 0; k < MaxRank; k++)
        {
            d[k] = k < pad ? 1 : x[perm[k - pad]];
            st[k] = k < pad ? 0 : stride[perm[k - pad]];
        }
        return new TransposeShape(d[0], d[1], d[2], d[3], d[4], d[5], st[0], st[1], st[2], st[3], st[4], st[5]);
    }

    /// <summary>The output shape of transposing <paramref name="x"/> by <paramref name="perm"/>.</summary>
    public static int[] Permute(int[] x, int[] perm) => perm.Select(p => x[p]).ToArray();

    /// <summary>The inverse permutation (the transpose's backward).</summary>
    public static int[] Inverse(int[] perm)
    {
        var inv = new int[perm.Length];
        for (int k = 0; k < perm.Length; k++)
            inv[perm[k]] = k;
        return inv;
    }
}

/// <summary>
/// One axis (or a run of adjacent axes) of a row-major tensor seen as (Outer, Len, Inner): reductions over it,
/// and slices and concatenations along it.
/// <code>x: (Outer, Len, Inner)   reduced y: (Outer, Inner)</code>
/// </summary>
internal readonly record struct AxisShape(int Outer, int Len, int Inner)
{
    /// <summary>The shape for reducing axes [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="x"/>.</summary>
    public static AxisShape Of(int[] x, int from, int to)
    {
        long outer = 1, len = 1, inner = 1;
        for (int k = 0; k < x.Length; k++)
        {
            if (k < from)
                outer *= x[k];
            else if (k < to)
                len *= x[k];
            else
                inner *= x[k];
        }
        return new AxisShape(checked((int)outer), checked((int)len), checked((int)inner));
    }
}
