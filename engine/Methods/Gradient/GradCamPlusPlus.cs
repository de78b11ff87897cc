namespace CamEngine.Methods;

/// <summary>
/// Grad-CAM++ (Chattopadhay et al., WACV 2018, arXiv:1710.11063): channel weights that sum the positive
/// gradients with per-position coefficients alpha, so several instances of a class all count.
/// <code>w_k = sum_ij alpha_k[i,j] ReLU(G_k[i,j]);   L = ReLU(sum_k w_k A_k)</code>
/// alpha depends on the convention:
/// <list type="bullet">
/// <item><b>paper</b>: the paper's Eq. 19, the closed form it derives for Y = exp(S) when the layers after A are
/// piecewise linear (then dY/dA = exp(S) G, d2Y/dA2 = exp(S) G^2, d3Y/dA3 = exp(S) G^3):
/// <c>alpha = G^2 / (2 G^2 + sum_ab(A_k[a,b]) G^3)</c>, 0 where G = 0. The common factor exp(S) of the weights
/// is left out: it only scales the map and cancels under normalization. The tests check this closed form against
/// the paper's general definition evaluated with exact second and third derivatives of exp(S)
/// (forward-mode Taylor jets).</item>
/// <item><b>pytorch-grad-cam</b>: the same with 1e-6 added to the denominator (<c>grad_cam_plusplus.py</c>).</item>
/// <item><b>TorchCAM</b> 0.5: its <c>GradCAMpp._get_weights</c> means to divide by
/// <c>2 G^2 + sum_ab(G^3 A) + 1e-8</c>, but it divides a boolean-indexed copy in place
/// (<c>alpha[idx][mask].div_(...)</c>), which leaves alpha = G^2; the weights it returns are therefore
/// <c>w_k = sum_ij G^2 ReLU(G)</c>, and that is what we compute to reproduce it.</item>
/// </list>
/// </summary>
public sealed class GradCamPlusPlus : GradientCamMethod
{
    /// <summary>pytorch-grad-cam's epsilon in the alpha denominator.</summary>
    public const double PytorchGradCamEpsilon = 1e-6;

    /// <inheritdoc/>
    public override string Name => "gradcampp";

    /// <inheritdoc/>
    public override string Summary => "Grad-CAM++: positive gradients weighted by higher-order alpha coefficients";

    /// <inheritdoc/>
    public override string Paper => "Chattopadhay et al., Grad-CAM++, WACV 2018 (arXiv:1710.11063)";

    /// <inheritdoc/>
    private protected override DeviceMapRule DeviceMap(Convention convention) => convention == Convention.TorchCam
        ? new(Kernels.CamWeightRule.GradCamPlusPlusSquared)
        : new(Kernels.CamWeightRule.GradCamPlusPlus, convention == Convention.PytorchGradCam ? PytorchGradCamEpsilon : 0);

    /// <inheritdoc/>
    private protected override float[] ChannelWeights(
        ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int plane, Convention convention)
    {
        var w = new float[channels];
        for (int k = 0; k < channels; k++)
        {
            var ak = a.Slice(k * plane, plane);
            var gk = g.Slice(k * plane, plane);
            double sumA = 0;
            foreach (float v in ak)
                sumA += v;
            double s = 0;
            for (int j = 0; j < plane; j++)
            {
                double gj = gk[j], g2 = gj * gj;
                double alpha = convention == Convention.TorchCam
                    ? g2
                    : Alpha(g2, g2 * gj, sumA, convention == Convention.PytorchGradCam ? PytorchGradCamEpsilon : 0);
                s += alpha * Math.Max(gj, 0);
            }
            w[k] = (float)s;
        }
        return w;
    }

    /// <summary>Eq. 19: <c>g2 / (2 g2 + sumA g3 + eps)</c>, 0 where g2 = 0 or the denominator vanishes.</summary>
    internal static double Alpha(double g2, double g3, double sumA, double eps)
    {
        if (g2 == 0)
            return 0;
        double denom = 2 * g2 + sumA * g3 + eps;
        return denom == 0 ? 0 : g2 / denom;
    }
}
