using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Reductions over one run of adjacent axes, seen as (Outer, Len, Inner) (<see cref="AxisShape"/>): ReduceSum,
/// ReduceMean (a sum scaled by 1/Len), ReduceMax, LayerNorm's statistics; and their backward.
/// <code>x, dx: (Outer, Len, Inner)   y, dy, argmax: (Outer, Inner)</code>
/// </summary>
internal static class AxisReduce
{
    /// <summary><c>y[o, j] = scale * sum_l x[o, l, j]</c>. Index: one per element of y.</summary>
    public static void Sum(Index1D i, ArrayView<float> x, ArrayView<float> y, AxisShape s, float scale)
    {
        int j = i % s.Inner;
        int o = i / s.Inner;
        int b = o * s.Len * s.Inner + j;
        float acc = 0f;
        for (int l = 0; l < s.Len; l++)
            acc += x[b + l * s.Inner];
        y[i] = scale * acc;
    }

    /// <summary>Backward of <see cref="Sum"/>: <c>dx[o, l, j] = scale * dy[o, j]</c>. Index: one per element of dx.</summary>
    public static void Broadcast(Index1D i, ArrayView<float> dy, ArrayView<float> dx, AxisShape s, float scale)
    {
        int j = i % s.Inner;
        int o = i / (s.Len * s.Inner);
        dx[i] = scale * dy[o * s.Inner + j];
    }

    /// <summary><c>y[o, j] = max_l x[o, l, j]</c>, recording the flat index of x of the first maximum in scan
    /// order (PyTorch's tie rule). Index: one per element of y.</summary>
    public static void Max(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax, AxisShape s)
    {
        int j = i % s.Inner;
        int o = i / s.Inner;
        int b = o * s.Len * s.Inner + j;
        int best = b;
        float m = x[b];
        for (int l = 1; l < s.Len; l++)
        {
            float v = x[b + l * s.Inner];
            if (v > m)
            {
                m = v;
                best = b + l * s.Inner;
            }
        }
        y[i] = m;
        argmax[i] = best;
    }

    /// <summary>Backward of <see cref="Max"/> into a zeroed dx: <c>dx[argmax[i]] = dy[i]</c> (each input element is
    /// the maximum of at most one output, so the writes never collide). Also routes a jet coefficient
    /// (<c>y[i] = x[argmax[i]]</c> is <see cref="Route"/>). Index: one per element of dy.</summary>
    public static void MaxBackward(Index1D i, ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx)
    {
        dx[argmax[i]] = dy[i];
    }

    /// <summary><c>y[i] = x[argmax[i]]</c>: a higher-order coefficient through the order-0 maximum. Index: one per
    /// element of y.</summary>
    public static void Route(Index1D i, ArrayView<float> x, ArrayView<int> argmax, ArrayView<float> y)
    {
        y[i] = x[argmax[i]];
    }
}
