using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Concatenation along the channel axis, one input at a time: each input is copied into its channel slice of
/// the output, and the backward copies the slice back out (concat is linear; its adjoint is the split).
/// <code>part: (N, Cp, inner)   whole: (N, Ctotal, inner)   whole[n, offset + c, j] = part[n, c, j]</code>
/// </summary>
internal static class Concat
{
    /// <summary>Forward: writes <paramref name="part"/> into its slice of <paramref name="whole"/>. Index: one per element of part.</summary>
    public static void CopyIn(Index1D i, ArrayView<float> part, ArrayView<float> whole, ChannelSlice s)
    {
        whole[s.WholeIndex(i)] = part[i];
    }

    /// <summary>Backward: <c>dpart[n,c,j] = dwhole[n, offset + c, j]</c>. Index: one per element of dpart.</summary>
    public static void CopyOut(Index1D i, ArrayView<float> whole, ArrayView<float> part, ChannelSlice s)
    {
        part[i] = whole[s.WholeIndex(i)];
    }
}
