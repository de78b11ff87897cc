namespace CamEngine.Methods;

/// <summary>
/// How the maps of several layers become one. The default follows the <see cref="Convention"/>:
/// pytorch-grad-cam averages, TorchCAM and the paper convention take the maximum (LayerCAM, Jiang et al. 2021,
/// the one paper here that fuses layers, combines them by element-wise max).
/// </summary>
public enum LayerFusion
{
    /// <summary>Mean of the per-layer normalized maps (pytorch-grad-cam <c>aggregate_multi_layers</c>).</summary>
    Mean,

    /// <summary>Element-wise maximum (TorchCAM <c>fuse_cams</c>; LayerCAM paper).</summary>
    Max,

    /// <summary>Element-wise product (RefineCAM), then normalized.</summary>
    Product,
}
