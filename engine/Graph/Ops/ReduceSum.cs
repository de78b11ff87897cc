namespace CamEngine.Graph.Ops;

/// <summary>
/// Sum over axes (op <c>reducesum</c>; the form of <see cref="ReduceRule"/>).
/// <code>y = sum over the axes   dx = dy broadcast back</code>
/// Linear: the jets sum every order.
/// </summary>
internal sealed class ReduceSum : LinearReduceRule
{
    /// <inheritdoc/>
    public override string Name => Model.Ops.ReduceSum;

    /// <inheritdoc/>
    protected override bool Mean => false;
}
