namespace CamEngine.Graph.Ops;

/// <summary>
/// Mean over axes (op <c>reducemean</c>; the form of <see cref="ReduceRule"/>): MNASNet's global pooling
/// (axes [2, 3] of (N, C, H, W)), the decomposed LayerNorm's statistics (the last axis).
/// <code>y = sum over the axes / count   dx = dy / count broadcast back</code>
/// Linear: the jets take the mean of every order.
/// </summary>
internal sealed class ReduceMean : LinearReduceRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.ReduceMean;

    /// <inheritdoc/>
    protected override bool Mean => true;
}
