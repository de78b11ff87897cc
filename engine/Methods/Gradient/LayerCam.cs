namespace CamEngine.Methods;

/// <summary>
/// Layer-CAM (Jiang et al., IEEE TIP 2021): each position's activation weighted by its own positive gradient.
/// <code>L = ReLU(sum_k ReLU(G_k) (.) A_k)</code>
/// Same formula in pytorch-grad-cam, TorchCAM and the paper. Several layers: pytorch-grad-cam averages the
/// normalized maps; TorchCAM and the paper (Eq. 9) scale each normalized map by <c>tanh(2 c)</c> before the
/// element-wise max (so do the TorchCAM and paper conventions).
/// </summary>
public sealed class LayerCam : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "layercam";

    /// <inheritdoc/>
    public override string Summary => "Layer-CAM: activations weighted by their own positive gradients";

    /// <inheritdoc/>
    public override string Paper => "Jiang et al., LayerCAM, IEEE TIP 2021 (doi:10.1109/TIP.2021.3089943)";

    /// <inheritdoc/>
    private protected override Func<float, float>? LayerScale => static c => MathF.Tanh(2f * c);

    /// <inheritdoc/>
    private protected override DeviceMapRule DeviceMap(Convention convention) => new(null, ReluGradient: true);

    /// <inheritdoc/>
    private protected override float[] WeightedActivations(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        var r = new float[channels * plane];
        for (int j = 0; j < r.Length; j++)
            r[j] = Math.Max(g[j], 0f) * a[j];
        return r;
    }
}
