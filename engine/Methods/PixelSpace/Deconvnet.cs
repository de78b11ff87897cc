using CamEngine.Kernels;

namespace CamEngine.Methods;

/// <summary>
/// Deconvnet (Zeiler and Fergus, ECCV 2014, arXiv:1311.2901) as a backward rule, as Captum's
/// <c>Deconvolution</c> does it: every ReLU passes the gradient where the gradient is positive, ignoring the
/// forward input (<c>dx = dy * [dy &gt; 0]</c>). Raw: the signed (C, H, W) input attribution.
/// </summary>
public sealed class Deconvnet : InputGradientMethod
{
    /// <inheritdoc/>
    public override string Name => "deconvnet";

    /// <inheritdoc/>
    public override string Summary => "Deconvnet: input gradient through ReLUs that pass only positive gradients";

    /// <inheritdoc/>
    public override string Paper => "Zeiler and Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 (arXiv:1311.2901)";

    /// <inheritdoc/>
    private protected override ReluRule Rule => ReluRule.Deconvnet;
}
