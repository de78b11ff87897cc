using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// FullGrad (Srinivas and Fleuret, NeurIPS 2019, arXiv:1905.00780), as pytorch-grad-cam computes it: the
/// input-gradient term plus a bias-gradient term for every convolution with a bias (batch norm is folded into
/// the convolutions of a converted model, so its bias is there too):
/// <code>S = sum_rgb N(|x * dy/dx|) + sum_convs sum_k N(|b_k * dy/dZ_k|),   Map = minmax(S)</code>
/// with Z the convolution's output and N = min-max (eps 1e-7) per channel, then bilinear resize (half-pixel
/// centres) to the input size. One reverse pass yields the input gradient and every convolution output's
/// gradient. The layer option is ignored. Raw: S (H, W) before the final min-max.
/// <para>
/// One pipeline under every <see cref="Convention"/>: TorchCAM has no FullGrad, and the paper describes its
/// post-processing psi only as absolute value, bilinear upsampling and rescaling to [0, 1], applied to each
/// channel's map, which is what pytorch-grad-cam implements (and the fixture checks). The authors' reference
/// code (idiap/fullgrad-saliency, <c>saliency/fullgrad.py</c>, as read) differs: it rescales each layer's whole
/// (C, h, w) term at once rather than each channel, resizes with align_corners = True and applies no final
/// rescaling. Without a paper text that settles which of the two is "the paper's", that variant is not offered;
/// the Grad-CAM-style ReLU / normalize / fuse steps of the conventions do not apply to a map that is a sum of
/// normalized non-negative terms.
/// </para>
/// </summary>
public sealed class FullGrad : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "fullgrad";

    /// <inheritdoc/>
    public override string Summary => "FullGrad: input-gradient and every convolution bias-gradient, normalized and summed";

    /// <inheritdoc/>
    public override string Paper => "Srinivas and Fleuret, Full-Gradient Representation, NeurIPS 2019 (arXiv:1905.00780)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var backend = model.Backend;
        var convs = model.Graph.Nodes.Where(n => n.Op == Ops.Conv && n.Param("bias") != null).ToList();
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest
        {
            Layers = convs.Select(n => n.Output).ToList(), Input = true,
        });
        var x = backend.Download(context.Forward.Input);
        var dx = backend.Download(grads.Input!);
        var convGrads = convs.Select(n => backend.Download(grads.Layers[n.Output])).ToList();
        var biases = convs.Select(n => backend.Download(model.Parameter(n.Param("bias")!))).ToList();
        var input = model.Graph.InputShape;
        int height = input[1], width = input[2], big = height * width, size = input[0] * big;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var sum = new float[big];
            var term = new float[big];
            for (int c = 0; c < input[0]; c++)
            {
                for (int j = 0; j < big; j++)
                    term[j] = Math.Abs(dx[i * size + c * big + j] * x[i * size + c * big + j]);
                AddNormalized(term, height, width, height, width, sum);
            }
            for (int l = 0; l < convs.Count; l++)
            {
                var shape = convs[l].Shape;
                int channels = shape[0], plane = shape[1] * shape[2], csize = channels * plane;
                var channel = new float[plane];
                for (int k = 0; k < channels; k++)
                {
                    float b = biases[l][k];
                    for (int j = 0; j < plane; j++)
                        channel[j] = Math.Abs(b * convGrads[l][i * csize + k * plane + j]);
                    AddNormalized(channel, shape[1], shape[2], height, width, sum);
                }
            }
            MapOps.EnsureFinite(sum, $"fullgrad map of image {i}");
            var map = (float[])sum.Clone();
            MapOps.MinMaxNormalize(map);
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = [],
                Raw = new HostTensor([height, width], sum),
                Map = new HostTensor([height, width], map),
            });
        }
        return result;
    }

    // sum += resize(minmax(term)) at (height, width).
    private static void AddNormalized(float[] term, int h, int w, int height, int width, float[] sum)
    {
        var t = new HostTensor([h, w], (float[])term.Clone());
        MapOps.MinMaxNormalize(t.Data);
        var up = h == height && w == width ? t : Resize.Bilinear(t, height, width, alignCorners: false);
        for (int j = 0; j < sum.Length; j++)
            sum[j] += up.Data[j];
    }
}
