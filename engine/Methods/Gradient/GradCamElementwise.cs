namespace CamEngine.Methods;

/// <summary>
/// Grad-CAM element-wise (pytorch-grad-cam's <c>GradCAMElementWise</c>, after HiResCAM): the positive part of
/// each element-wise product is kept before the channel sum.
/// <code>L = ReLU(sum_k ReLU(G_k (.) A_k))</code>
/// Defined by pytorch-grad-cam only; every convention uses this formula (the post-processing follows the convention).
/// </summary>
public sealed class GradCamElementwise : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "gradcam-elementwise";

    /// <inheritdoc/>
    public override string Summary => "Grad-CAM element-wise: sum over channels of ReLU(gradient * activation)";

    /// <inheritdoc/>
    public override string Paper => "pytorch-grad-cam GradCAMElementWise (Gildenblat et al.), after Draelos and Carin 2020 (arXiv:2011.08891)";

    /// <inheritdoc/>
    private protected override float[] WeightedActivations(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        var r = new float[channels * plane];
        for (int j = 0; j < r.Length; j++)
            r[j] = Math.Max(g[j] * a[j], 0f);
        return r;
    }
}
