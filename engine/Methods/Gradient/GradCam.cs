namespace CamEngine.Methods;

/// <summary>
/// Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391).
/// <code>w_k = (1 / hw) sum_ij dy/dA_k[i,j];   L = ReLU(sum_k w_k A_k)</code>
/// y is the target class's raw logit. Same weights in pytorch-grad-cam, TorchCAM and the paper.
/// </summary>
public sealed class GradCam : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "gradcam";

    /// <inheritdoc/>
    public override string Summary => "Grad-CAM: activations weighted by the spatial mean of the class-score gradient";

    /// <inheritdoc/>
    public override string Paper => "Selvaraju et al., Grad-CAM, ICCV 2017 (arXiv:1610.02391)";

    /// <inheritdoc/>
    private protected override DeviceMapRule DeviceMap(Convention convention) => new(Kernels.CamWeightRule.GradCam);

    /// <inheritdoc/>
    private protected override float[] ChannelWeights(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane)
    {
        var w = new float[channels];
        for (int k = 0; k < channels; k++)
        {
            double s = 0;
            foreach (float v in g.Slice(k * plane, plane))
                s += v;
            w[k] = (float)(s / plane);
        }
        return w;
    }
}
