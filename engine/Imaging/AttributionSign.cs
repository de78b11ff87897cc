namespace CamEngine.Imaging;

/// <summary>
/// Which values of a pixel-space attribution (guided backprop, saliency, integrated gradients, deconvnet,
/// SmoothGrad, guided Grad-CAM) a picture shows, as Captum's <c>visualize_image_attr</c> sign modes do. The
/// attribution is summed over colour channels first; values are divided by a threshold that leaves out the top
/// <see cref="OverlayOptions.OutlierPercent"/>% of the attribution mass and clipped to [-1, 1].
/// </summary>
public enum AttributionSign
{
    /// <summary>|sum over channels|, in Captum's "Blues" (Captum's <c>absolute_value</c>).</summary>
    Absolute,

    /// <summary>Positive values only (negative ones show as 0), in Captum's "Greens".</summary>
    Positive,

    /// <summary>Signed values on a diverging red-white-green colormap: red against the class, green for it, white
    /// for 0 (Captum's <c>all</c>).</summary>
    All,
}
