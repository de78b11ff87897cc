using CamEngine.Graph;
using CamEngine.Kernels;

namespace CamEngine.Methods;

/// <summary>
/// Guided Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391, section 3.1): guided backpropagation
/// multiplied element-wise by the Grad-CAM map upsampled bilinearly to the input,
/// <code>R_c = GB_c * U(L_Grad-CAM)</code>
/// with L the final Grad-CAM map (ReLU'd, in [0, 1]) at the chosen layers. Raw: the signed (C, H, W) product.
/// </summary>
public sealed class GuidedGradCam : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "guided-gradcam";

    /// <inheritdoc/>
    public override string Summary => "Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map";

    /// <inheritdoc/>
    public override string Paper => "Selvaraju et al., Grad-CAM, ICCV 2017 (arXiv:1610.02391)";

    /// <inheritdoc/>
    public override bool UsesLayers => true;

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var cams = new GradCam().Run(context);
        var model = context.Model;
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Input = true, ReluRule = ReluRule.Guided });
        var g = model.Backend.Download(grads.Input!);
        var shape = model.Graph.InputShape;
        int plane = shape[1] * shape[2], size = shape[0] * plane;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var cam = cams[i].Map.Data;
            var raw = new float[size];
            for (int c = 0; c < shape[0]; c++)
            {
                for (int j = 0; j < plane; j++)
                    raw[c * plane + j] = g[i * size + c * plane + j] * cam[j];
            }
            result.Add(PixelMaps.Make(this, context, i, raw, cams[i].Layers));
        }
        return result;
    }
}
