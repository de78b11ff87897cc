using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>
/// Operations on tensors of any rank up to <see cref="TransposeShape.MaxRank"/>: axis permutation, reductions over
/// a run of adjacent axes and their broadcast back, slices and concatenation along any axis, layer normalization.
/// Each public method checks shapes, then calls its backend's core.
/// </summary>
internal abstract partial class Backend
{
    /// <summary>y = x with its axes permuted: <c>y.Shape[k] = x.Shape[perm[k]]</c>.</summary>
    public void Transpose(Tensor x, Tensor y, int[] perm)
    {
        Check(x, ElementType.Float32, nameof(x));
        var s = TransposeShape.Create(x.Shape, perm);
        CheckShape(y, TransposeShape.Permute(x.Shape, perm), nameof(y));
        TransposeCore(x, y, s);
    }

    /// <summary><c>y[o, j] = sum_l x[o, l, j]</c> for x seen as (Outer, Len, Inner), divided by Len when
    /// <paramref name="mean"/>.</summary>
    public void ReduceSum(Tensor x, Tensor y, AxisShape s, bool mean)
    {
        CheckLength(x, (long)s.Outer * s.Len * s.Inner, nameof(x));
        CheckLength(y, (long)s.Outer * s.Inner, nameof(y));
        ReduceSumCore(x, y, s, mean);
    }

    /// <summary>The adjoint of <see cref="ReduceSum"/>: <c>dx[o, l, j] = dy[o, j]</c> (divided by Len when
    /// <paramref name="mean"/>).</summary>
    public void BroadcastAxis(Tensor dy, Tensor dx, AxisShape s, bool mean)
    {
        CheckLength(dy, (long)s.Outer * s.Inner, nameof(dy));
        CheckLength(dx, (long)s.Outer * s.Len * s.Inner, nameof(dx));
        BroadcastAxisCore(dy, dx, s, mean);
    }

    /// <summary><c>y[o, j] = max_l x[o, l, j]</c>; argmax (int32, y's length) gets the flat index into x of the
    /// first maximum in scan order.</summary>
    public void ReduceMax(Tensor x, Tensor y, Tensor argmax, AxisShape s)
    {
        CheckLength(x, (long)s.Outer * s.Len * s.Inner, nameof(x));
        CheckLength(y, (long)s.Outer * s.Inner, nameof(y));
        Check(argmax, ElementType.Int32, nameof(argmax));
        if (argmax.Length != y.Length)
            throw new ArgumentException($"argmax has {argmax.Length} elements, y {y.Length}");
        ReduceMaxCore(x, y, argmax, s);
    }

    /// <summary>Backward of <see cref="ReduceMax"/> into a zero-filled dx: <c>dx[argmax[i]] = dy[i]</c>.</summary>
    public void ReduceMaxBackward(Tensor dy, Tensor argmax, Tensor dx)
    {
        Check(dy, ElementType.Float32, nameof(dy));
        Check(argmax, ElementType.Int32, nameof(argmax));
        Check(dx, ElementType.Float32, nameof(dx));
        if (argmax.Length != dy.Length)
            throw new ArgumentException($"argmax has {argmax.Length} elements, dy {dy.Length}");
        ReduceMaxBackwardCore(dy, argmax, dx);
    }

    /// <summary><c>y[i] = x[argmax[i]]</c>: a jet coefficient routed through the order-0 maxima.</summary>
    public void ReduceMaxRoute(Tensor x, Tensor argmax, Tensor y)
    {
        Check(x, ElementType.Float32, nameof(x));
        Check(argmax, ElementType.Int32, nameof(argmax));
        Check(y, ElementType.Float32, nameof(y));
        if (argmax.Length != y.Length)
            throw new ArgumentException($"argmax has {argmax.Length} elements, y {y.Length}");
        ReduceMaxRouteCore(x, argmax, y);
    }

    /// <summary>Copies elements [offset, offset + count) along the middle axis of x (Outer, Len, Inner) into
    /// y (Outer, count, Inner): Slice, Split.</summary>
    public void SliceAxis(Tensor x, Tensor y, AxisShape s, int offset, int count)
    {
        var cs = AxisSlice(x, y, s, offset, count);
        ConcatCopyOutCore(x, y, cs);
    }

    /// <summary>Writes part (Outer, count, Inner) at [offset, offset + count) of the middle axis of whole
    /// (Outer, Len, Inner), leaving the rest: Concat on any axis, and the backward of <see cref="SliceAxis"/> into a
    /// zero-filled tensor.</summary>
    public void PlaceAxis(Tensor part, Tensor whole, AxisShape s, int offset, int count)
    {
        var cs = AxisSlice(whole, part, s, offset, count);
        ConcatCopyInCore(part, whole, cs);
    }

    private ChannelSlice AxisSlice(Tensor whole, Tensor part, AxisShape s, int offset, int count)
    {
        CheckLength(whole, (long)s.Outer * s.Len * s.Inner, nameof(whole));
        CheckLength(part, (long)s.Outer * count * s.Inner, nameof(part));
        if (offset < 0 || count < 0 || (long)offset + count > s.Len)
            throw new ArgumentException($"slice [{offset}, {offset + count}) is outside an axis of {s.Len}");
        return new ChannelSlice(s.Outer, count, s.Inner, s.Len, offset);
    }

    /// <summary>
    /// Layer normalization of each row of x (rows, cols): <c>y = gamma (x - mean) / sqrt(var + eps) + beta</c>,
    /// biased variance. stats (rows, 2) receives (mean, rstd) for the backward.
    /// </summary>
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor stats, int cols, float eps)
    {
        int rows = CheckLayerNorm(x, gamma, stats, cols);
        CheckLength(beta, cols, nameof(beta));
        CheckShape(y, x.Shape, nameof(y));
        LayerNormCore(x, gamma, beta, y, stats, rows, cols, eps);
    }

    /// <summary>Backward of <see cref="LayerNorm"/> from its stats: dx, and when given dgamma, dbeta (cols).</summary>
    public void LayerNormBackward(Tensor x, Tensor gamma, Tensor stats, Tensor dy, Tensor dx, Tensor? dgamma, Tensor? dbeta, int cols)
    {
        int rows = CheckLayerNorm(x, gamma, stats, cols);
        CheckLength(dy, x.Length, nameof(dy));
        CheckShape(dx, x.Shape, nameof(dx));
        if (dgamma != null)
            CheckLength(dgamma, cols, nameof(dgamma));
        if (dbeta != null)
            CheckLength(dbeta, cols, nameof(dbeta));
        LayerNormBackwardCore(x, gamma, stats, dy, dx, dgamma, dbeta, rows, cols);
    }

    private int CheckLayerNorm(Tensor x, Tensor gamma, Tensor stats, int cols)
    {
        Check(x, ElementType.Float32, nameof(x));
        if (cols < 1 || x.Length % cols != 0)
            throw new ArgumentException($"layer norm over {cols} columns of {x.ShapeText}");
        int rows = x.Length / cols;
        CheckLength(gamma, cols, nameof(gamma));
        CheckLength(stats, 2L * rows, nameof(stats));
        return rows;
    }

    /// <summary>Permutes axes.</summary>
    protected abstract void TransposeCore(Tensor x, Tensor y, TransposeShape s);

    /// <summary>Sum (or mean) over the middle axis.</summary>
    protected abstract void ReduceSumCore(Tensor x, Tensor y, AxisShape s, bool mean);

    /// <summary>Broadcast (divided by Len for a mean) along the middle axis.</summary>
    protected abstract void BroadcastAxisCore(Tensor dy, Tensor dx, AxisShape s, bool mean);

    /// <summary>Maximum over the middle axis with first-argmax.</summary>
    protected abstract void ReduceMaxCore(Tensor x, Tensor y, Tensor argmax, AxisShape s);

    /// <summary>Scatter of dy to the argmax positions of a zeroed dx.</summary>
    protected abstract void ReduceMaxBackwardCore(Tensor dy, Tensor argmax, Tensor dx);

    /// <summary>Gather at the argmax positions.</summary>
    protected abstract void ReduceMaxRouteCore(Tensor x, Tensor argmax, Tensor y);

    /// <summary>Layer normalization forward, writing the row statistics.</summary>
    protected abstract void LayerNormCore(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor stats, int rows, int cols, float eps);

    /// <summary>Layer normalization backward from the row statistics.</summary>
    protected abstract void LayerNormBackwardCore(Tensor x, Tensor gamma, Tensor stats, Tensor dy, Tensor dx, Tensor? dgamma, Tensor? dbeta, int rows, int cols);
}
