using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the Score-CAM family: every channel k of the layer becomes a mask M_k (H, W) at input resolution,
/// the model scores the masked inputs <c>x * M_k</c> (batched as the call's <see cref="MemoryPlan"/> sizes
/// forward re-runs), and the channel weights come from those scores; the map is <c>sum_k w_k A_k</c>.
/// Masks follow one of two conventions:
/// <list type="bullet">
/// <item>pytorch-grad-cam: upsample A_k bilinearly with align_corners=True, then
/// <c>(M - min) / (max - min + 1e-8)</c> per channel;</item>
/// <item>TorchCAM: min-max per channel at layer resolution, then bilinear upsampling with
/// align_corners=False. TorchCAM divides by <c>max(A - min)</c> without epsilon, so a constant channel is NaN
/// there; here it is an all-zero mask.</item>
/// <item>Paper (the authors' code): bilinear upsampling with align_corners=False, then min-max without epsilon
/// (constant channels are skipped by the method).</item>
/// </list>
/// All-zero masked inputs are scored once (the zero image), not re-run.
/// </summary>
public abstract class ScoreCamBase : LayerMapMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected ScoreCamBase()
    {
    }

    /// <summary>The channel weights (N, C) from the masks (N, C, H*W) and the batch's inputs.</summary>
    private protected abstract float[][] ChannelWeights(ExplainContext context, float[][] masks, int channels);

    /// <summary>Which mask convention the method uses when <paramref name="requested"/> is the call's convention.</summary>
    internal abstract Convention MaskConventionFor(Convention requested);

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Forward;

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.Layers[layer].Shape;
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        // The masks depend only on the layer's activations and the convention: methods of one call that agree on both
        // (SS-CAM, IS-CAM, and Score-CAM under TorchCAM's convention) share one set through the plan.
        var convention = MaskConventionFor(context.Convention);
        var masks = context.Plan.Masks(layer, convention, () =>
        {
            var built = new float[context.Batch][];
            for (int i = 0; i < context.Batch; i++)
                built[i] = Masks(context, activations.AsSpan(i * size, size), shape, convention);
            return built;
        });
        var weights = ChannelWeights(context, masks, c);
        var maps = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), weights[i], plane);
        return new LayerMaps(maps, weights);
    }

    /// <summary>The masks (C, H*W) at input resolution of one image's activations (C, h, w).</summary>
    internal static float[] Masks(ExplainContext context, ReadOnlySpan<float> a, int[] shape, Convention convention)
    {
        var input = context.Model.Graph.InputShape;
        int c = shape[0], h = shape[1], w = shape[2], plane = h * w, big = input[1] * input[2];
        var masks = new float[c * big];
        for (int k = 0; k < c; k++)
        {
            var channel = new HostTensor([h, w], a.Slice(k * plane, plane).ToArray());
            HostTensor up;
            if (convention == Convention.TorchCam)
            {
                NormalizeChannel(channel.Data, 0);
                up = Resize.Bilinear(channel, input[1], input[2], alignCorners: false);
            }
            else
            {
                up = Resize.Bilinear(channel, input[1], input[2], alignCorners: convention == Convention.PytorchGradCam);
                NormalizeChannel(up.Data, convention == Convention.PytorchGradCam ? 1e-8f : 0f);
            }
            up.Data.CopyTo(masks, k * big);
        }
        return masks;
    }

    // (m - min) / (max - min + eps); a constant channel becomes all zeros.
    private static void NormalizeChannel(Span<float> m, float eps)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in m)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        float range = max - min;
        if (range == 0)
        {
            m.Clear();
            return;
        }
        float denom = range + eps;
        for (int j = 0; j < m.Length; j++)
            m[j] = (m[j] - min) / denom;
    }

    /// <summary>Writes <c>scale * x * (mask + noise)</c> for one item: x (C, H, W), mask and noise (H, W).</summary>
    private protected static void Masked(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, ReadOnlySpan<float> noise, float scale, Span<float> output)
    {
        int big = mask.Length;
        for (int ch = 0; ch * big < x.Length; ch++)
        {
            var xc = x.Slice(ch * big, big);
            var oc = output.Slice(ch * big, big);
            for (int j = 0; j < big; j++)
            {
                float m = noise.IsEmpty ? mask[j] : mask[j] + noise[j];
                oc[j] = scale == 1f ? xc[j] * m : scale * (xc[j] * m);
            }
        }
    }

    /// <summary>Softmax over the channels of one image's scores.</summary>
    private protected static float[] Softmax(ReadOnlySpan<double> s)
    {
        var p = StableSoftmax.Probabilities(s);
        var w = new float[s.Length];
        for (int k = 0; k < s.Length; k++)
            w[k] = (float)p[k];
        return w;
    }

    /// <summary>The target score of each image on the unperturbed input (TorchCAM's baseline <c>y(x)</c>).</summary>
    private protected static float[] BaselineScores(ExplainContext context)
    {
        var y = context.Model.Backend.Download(context.Forward.Output);
        int k = y.Length / context.Batch;
        var s = new float[context.Batch];
        for (int i = 0; i < context.Batch; i++)
            s[i] = context.Score(i, y.AsSpan(i * k, k));
        return s;
    }
}
