using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>Explanations of the pixel-space methods: raw (C, H, W) attribution, map max_c |raw| min-maxed.</summary>
internal static class PixelMaps
{
    public static Explanation Make(CamMethod method, ExplainContext context, int image, float[] raw, IReadOnlyList<string>? layers = null)
    {
        var shape = context.Model.Graph.InputShape;
        int c = shape[0], h = shape[1], w = shape[2], plane = h * w;
        MapOps.EnsureFinite(raw, $"{method.Name} attribution of image {image}");
        var map = new float[plane];
        for (int j = 0; j < plane; j++)
        {
            float m = 0;
            for (int k = 0; k < c; k++)
                m = Math.Max(m, Math.Abs(raw[k * plane + j]));
            map[j] = m;
        }
        MapOps.MinMaxNormalize(map);
        return new Explanation
        {
            Image = image,
            Method = method.Name,
            TargetClass = context.Classes[image],
            Score = context.Scores[image],
            Layers = layers ?? [],
            Raw = new HostTensor([c, h, w], raw),
            Map = new HostTensor([h, w], map),
        };
    }
}
