namespace CamEngine.Methods;

/// <summary>
/// XGrad-CAM (Fu et al., BMVC 2020, arXiv:2008.02312): weights that make the map satisfy the paper's
/// sensitivity and conservation axioms.
/// <code>w_k = sum_ij G_k[i,j] A_k[i,j] / (sum_ij A_k[i,j] + eps);   L = ReLU(sum_k w_k A_k)</code>
/// eps: 1e-7 in pytorch-grad-cam, 1e-8 in TorchCAM; the paper has none (we set w_k = 0 where sum_ij A_k = 0).
/// </summary>
public sealed class XGradCam : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "xgradcam";

    /// <inheritdoc/>
    public override string Summary => "XGrad-CAM: weights = sum(gradient * activation) / sum(activation)";

    /// <inheritdoc/>
    public override string Paper => "Fu et al., Axiom-based Grad-CAM, BMVC 2020 (arXiv:2008.02312)";

    /// <inheritdoc/>
    private protected override DeviceMapRule DeviceMap(Convention convention) => new(Kernels.CamWeightRule.XGradCam, Epsilon(convention));

    /// <inheritdoc/>
    private protected override float[] ChannelWeights(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        double eps = Epsilon(convention);
        var w = new float[channels];
        for (int k = 0; k < channels; k++)
        {
            double ga = 0, sa = 0;
            for (int j = k * plane; j < (k + 1) * plane; j++)
            {
                ga += (double)g[j] * a[j];
                sa += a[j];
            }
            double denom = sa + eps;
            w[k] = denom == 0 ? 0 : (float)(ga / denom);
        }
        return w;
    }

    private static double Epsilon(Convention convention) => convention switch
    {
        Convention.PytorchGradCam => 1e-7,
        Convention.TorchCam => 1e-8,
        _ => 0,
    };
}
