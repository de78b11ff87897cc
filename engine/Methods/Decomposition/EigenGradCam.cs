namespace CamEngine.Methods;

/// <summary>
/// EigenGrad-CAM (pytorch-grad-cam): Eigen-CAM applied to the element-wise product of gradient and activation,
/// <c>L = (G*A)_c v_1</c> with (G*A) reshaped to (h*w, C) and centred; class-discriminative through G. Same
/// sign rule as <see cref="EigenCam"/>.
/// </summary>
public sealed class EigenGradCam : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "eigengradcam";

    /// <inheritdoc/>
    public override string Summary => "EigenGrad-CAM: first principal component of gradient times activation";

    /// <inheritdoc/>
    public override string Paper => "pytorch-grad-cam's variant of Eigen-CAM (Muhammad and Yeasin, IJCNN 2020)";

    private protected override bool NeedsGradients => true;

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var maps = new float[context.Batch][];
        var product = new float[size];
        for (int i = 0; i < context.Batch; i++)
        {
            for (int j = 0; j < size; j++)
                product[j] = gradients![i * size + j] * activations[i * size + j];
            maps[i] = EigenCam.Projection(product, c, plane);
        }
        return new LayerMaps(maps);
    }
}
