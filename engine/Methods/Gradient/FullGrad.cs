using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// FullGrad (Srinivas and Fleuret, NeurIPS 2019, arXiv:1905.00780), as pytorch-grad-cam computes it: the
/// input-gradient term plus a bias-gradient term for every layer pytorch-grad-cam uses, each Conv2d with a bias
/// and each BatchNorm2d (its effective bias <c>beta - mean * gamma / sqrt(var + eps)</c>):
/// <code>S = sum_rgb N(|x * dy/dx|) + sum_layers sum_k N(|b_k * dy/dZ_k|),   Map = minmax(S)</code>
/// with Z the layer's output and N = min-max (eps 1e-7) per channel, then bilinear resize (half-pixel
/// centres) to the input size. One reverse pass yields the input gradient and every convolution output's
/// gradient. The layer option is ignored. In a converted model a BN that followed a conv is folded into it: a
/// conv without a bias then carries exactly the BN's effective bias; a conv with its own bias carries the two
/// terms pgc counts separately as <see cref="FoldedBiasTerms"/> (recorded by the converter; a model file written
/// before they were recorded counts the folded bias once). A BN kept as an op (DenseNet's pre-activation BN
/// after Concat) is a term of its own. Not distinguishable in ONNX: a BatchNorm2d(affine = False), which pgc
/// skips (its bias is None), exports with gamma = 1, beta = 0 and is counted here; and an ONNX file whose
/// exporter already fused Conv + BN carries the mixed bias as one term. Raw: S (H, W) before the final min-max.
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
    public override string Summary => "FullGrad: input-gradient and every conv / batch-norm bias-gradient, normalized and summed";

    /// <inheritdoc/>
    public override string Paper => "Srinivas and Fleuret, Full-Gradient Representation, NeurIPS 2019 (arXiv:1905.00780)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var backend = model.Backend;
        // pytorch-grad-cam's layers: every Conv2d with a bias and every BatchNorm2d, each with its bias. After the
        // converter's folding: a conv with a bias (the BN's effective bias when a BN without a conv bias was
        // folded in, or the conv's own), split into its two recorded terms when a BN was folded into a conv that
        // had one, and every BN kept as an op on a (C, H, W) activation (its shift is the effective bias).
        var terms = new List<(GraphNode Node, float[] Bias)>();
        foreach (var n in model.Graph.Nodes)
        {
            if (n.Op == Ops.Conv && n.Attrs.TryGetValue(FoldedBiasTerms.ConvBias, out var convBias)
                && n.Attrs.TryGetValue(FoldedBiasTerms.BatchNormBias, out var bnBias))
            {
                terms.Add((n, convBias.Select(v => (float)v).ToArray()));
                terms.Add((n, bnBias.Select(v => (float)v).ToArray()));
            }
            else if (n.Op == Ops.Conv && n.Param("bias") != null)
                terms.Add((n, backend.Download(model.Parameter(n.Param("bias")!))));
            else if (n.Op == Ops.BatchNorm && n.Shape.Length == 3)
                terms.Add((n, backend.Download(model.Parameter(n.Param("shift")!))));
        }
        var layers = terms.Select(t => t.Node.Output).Distinct().ToList();
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = layers, Input = true });
        var x = backend.Download(context.Forward.Input);
        var dx = backend.Download(grads.Input!);
        var layerGrads = layers.ToDictionary(l => l, l => backend.Download(grads.Layers[l]));
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
                MapOps.MinMaxNormalize(term);
                for (int j = 0; j < big; j++)
                    sum[j] += term[j];
            }
            // Bilinear resizing is linear: the normalized channel maps of every term at one resolution are summed
            // there and resized once, not resized one by one (thousands of full-size resizes on a ResNet).
            var atSize = new Dictionary<(int H, int W), float[]>();
            foreach (var (node, bias) in terms)
            {
                var shape = node.Shape;
                var g = layerGrads[node.Output];
                int channels = shape[0], plane = shape[1] * shape[2], csize = channels * plane;
                if (!atSize.TryGetValue((shape[1], shape[2]), out var acc))
                    atSize[(shape[1], shape[2])] = acc = new float[plane];
                var channel = new float[plane];
                for (int k = 0; k < channels; k++)
                {
                    float b = bias[k];
                    for (int j = 0; j < plane; j++)
                        channel[j] = Math.Abs(b * g[i * csize + k * plane + j]);
                    MapOps.MinMaxNormalize(channel);
                    for (int j = 0; j < plane; j++)
                        acc[j] += channel[j];
                }
            }
            foreach (var ((h, w), acc) in atSize)
            {
                var up = h == height && w == width ? acc : Resize.Bilinear(new HostTensor([h, w], acc), height, width, alignCorners: false).Data;
                for (int j = 0; j < big; j++)
                    sum[j] += up[j];
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
}
