namespace CamEngine.Methods;

/// <summary>
/// HiResCAM (Draelos and Carin, 2020, arXiv:2011.08891): the gradient multiplies the activations element-wise
/// before the channel sum, so the map is faithful to the model's computation at every position.
/// <code>L = ReLU(sum_k G_k (.) A_k)</code>
/// Same in pytorch-grad-cam (<c>hirescam.py</c>) and the paper; TorchCAM has none. Equals Grad-CAM when G is
/// spatially constant (a global average pool right after the layer).
/// </summary>
public sealed class HiResCam : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "hirescam";

    /// <inheritdoc/>
    public override string Summary => "HiResCAM: element-wise gradient times activation, summed over channels";

    /// <inheritdoc/>
    public override string Paper => "Draelos and Carin, Use HiResCAM instead of Grad-CAM, 2020 (arXiv:2011.08891)";

    /// <inheritdoc/>
    private protected override DeviceMapRule DeviceMap(Convention convention) => new(null);

    /// <inheritdoc/>
    private protected override float[] WeightedActivations(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        var r = new float[channels * plane];
        for (int j = 0; j < r.Length; j++)
            r[j] = g[j] * a[j];
        return r;
    }
}
