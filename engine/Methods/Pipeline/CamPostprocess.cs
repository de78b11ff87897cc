using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Turning layer-resolution maps (h, w) into the final map (H, W) in [0, 1], in each <see cref="Convention"/>:
/// <list type="bullet">
/// <item><b>pytorch-grad-cam</b> (as the fixtures record): per layer <c>relu</c>, min-max
/// (<c>(c - min) / (1e-7 + max(c - min))</c>), bilinear resize with half-pixel centres; then fusion (mean by
/// default), <c>relu</c> and min-max again. One layer: relu, normalize, resize, relu, normalize.</item>
/// <item><b>TorchCAM</b>: per layer <c>relu</c> and TorchCAM's <c>_normalize</c> (<c>(c - min) / (max(c - min) + 1e-8)</c>)
/// at layer resolution; with several layers an optional per-layer scale (LayerCAM's <c>tanh(2 c)</c>), bilinear
/// (align_corners=False) upsampling to the largest layer's size and fusion (max by default). TorchCAM stops
/// there; to give a map at input resolution we then resize bilinearly (half-pixel) and normalize again.</item>
/// <item><b>paper</b>: per layer <c>relu</c>, bilinear resize (half-pixel) to the input, then min-max; with several
/// layers the optional per-layer scale (LayerCAM's Eq. 9, <c>tanh(2 c)</c>); fusion (max by default), min-max.</item>
/// </list>
/// </summary>
internal static class CamPostprocess
{
    /// <summary>TorchCAM's epsilon in <c>_CAM._normalize</c>.</summary>
    public const float TorchCamEpsilon = 1e-8f;

    /// <summary>Fuses one or more (h, w) maps into an (H, W) map in [0, 1] the pytorch-grad-cam way (mean fusion).</summary>
    public static HostTensor FuseLayers(IReadOnlyList<HostTensor> raws, int height, int width, string what) =>
        Finish(raws, height, width, Convention.PytorchGradCam, null, what);

    /// <summary>The fusion a convention uses when none is given: mean for pytorch-grad-cam, max otherwise.</summary>
    public static LayerFusion DefaultFusion(Convention convention) =>
        convention == Convention.PytorchGradCam ? LayerFusion.Mean : LayerFusion.Max;

    /// <summary>
    /// Post-processes one or more raw (h, w) maps of one image into an (H, W) map in [0, 1] under
    /// <paramref name="convention"/> with <paramref name="fusion"/> (null: the convention's default).
    /// <paramref name="layerScale"/> is applied to each normalized layer map before a multi-layer fusion under the
    /// TorchCAM and paper conventions (LayerCAM's <c>tanh(2 c)</c>); pytorch-grad-cam does not scale.
    /// </summary>
    public static HostTensor Finish(
        IReadOnlyList<HostTensor> raws, int height, int width, Convention convention, LayerFusion? fusion, string what,
        Func<float, float>? layerScale = null)
    {
        ArgumentNullException.ThrowIfNull(raws);
        if (raws.Count == 0)
            throw new ArgumentException("no layer maps to fuse", nameof(raws));
        var how = fusion ?? DefaultFusion(convention);
        foreach (var raw in raws)
            MapOps.EnsureFinite(raw.Data, what);
        switch (convention)
        {
            case Convention.TorchCam:
            {
                var layers = raws.Select(r =>
                {
                    var m = MapOps.Relu(r);
                    TorchCamNormalize(m.Data);
                    return m;
                }).ToList();
                HostTensor fused;
                if (layers.Count == 1)
                {
                    fused = layers[0];
                }
                else
                {
                    int h = layers.Max(l => l.Shape[0]), w = layers.Max(l => l.Shape[1]);
                    var scaled = layers.Select(l =>
                    {
                        if (layerScale != null)
                        {
                            for (int j = 0; j < l.Data.Length; j++)
                                l.Data[j] = layerScale(l.Data[j]);
                        }
                        return Resize.Bilinear(l, h, w, alignCorners: false).Data;
                    }).ToList();
                    fused = new HostTensor([h, w], Fuse(scaled, how));
                }
                var up = Resize.Bilinear(fused, height, width, alignCorners: false);
                MapOps.Relu(up.Data);
                TorchCamNormalize(up.Data);
                return up;
            }
            case Convention.Paper:
            {
                var layers = raws.Select(r =>
                {
                    var up = Resize.Bilinear(MapOps.Relu(r), height, width, alignCorners: false);
                    MapOps.MinMaxNormalize(up.Data);
                    if (layerScale != null && raws.Count > 1)
                    {
                        for (int j = 0; j < up.Data.Length; j++)
                            up.Data[j] = layerScale(up.Data[j]);
                    }
                    return up.Data;
                }).ToList();
                var fused = Fuse(layers, how);
                MapOps.MinMaxNormalize(fused);
                return new HostTensor([height, width], fused);
            }
            default:
            {
                var layers = raws.Select(r =>
                {
                    var m = MapOps.Relu(r);
                    MapOps.MinMaxNormalize(m.Data);
                    return Resize.Bilinear(m, height, width, alignCorners: false).Data;
                }).ToList();
                var fused = Fuse(layers, how);
                MapOps.Relu(fused);
                MapOps.MinMaxNormalize(fused);
                return new HostTensor([height, width], fused);
            }
        }
    }

    /// <summary>Element-wise mean, max or product of equally long maps (a new array).</summary>
    public static float[] Fuse(IReadOnlyList<float[]> maps, LayerFusion fusion)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.Count == 0)
            throw new ArgumentException("no maps to fuse", nameof(maps));
        int n = maps[0].Length;
        if (maps.Any(m => m.Length != n))
            throw new ArgumentException("maps to fuse differ in size", nameof(maps));
        var r = (float[])maps[0].Clone();
        for (int l = 1; l < maps.Count; l++)
        {
            var m = maps[l];
            for (int j = 0; j < n; j++)
            {
                r[j] = fusion switch
                {
                    LayerFusion.Max => Math.Max(r[j], m[j]),
                    LayerFusion.Product => r[j] * m[j],
                    _ => r[j] + m[j],
                };
            }
        }
        if (fusion == LayerFusion.Mean)
        {
            for (int j = 0; j < n; j++)
                r[j] /= maps.Count;
        }
        return r;
    }

    /// <summary>TorchCAM's <c>_normalize</c> in place: <c>c -= min(c); c /= max(c) + 1e-8</c>.</summary>
    public static void TorchCamNormalize(Span<float> map) => MapOps.MinMaxNormalize(map, TorchCamEpsilon);
}

