using CamEngine.Backends;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Score-CAM (Wang et al., CVPR-W 2020, arXiv:1910.01279): each channel's upsampled, normalized activation
/// masks the input and the model's response to the masked input weights the channel.
/// <code>M_k = norm(U(A_k));   s_k = y(x * M_k);   L = ReLU(sum_k w_k A_k)</code>
/// Conventions (<see cref="ExplainOptions.Convention"/>):
/// <list type="bullet">
/// <item>pytorch-grad-cam (default): masks upsampled with align_corners=True then min-max normalized (eps 1e-8);
/// <c>w = softmax_k(s)</c> on the raw target score.</item>
/// <item>TorchCAM: masks min-max normalized at layer resolution then upsampled with align_corners=False;
/// <c>w = softmax_k(s_k - y(x))</c> (the baseline cancels in the softmax).</item>
/// <item>Paper (the authors' code, haofanwang/Score-CAM): TorchCAM's masks, and the weight of channel k is the
/// class probability <c>softmax(f(x * M_k))[c]</c>, no softmax over channels; constant channels get weight 0.
/// The final map of the authors' code accumulates at input resolution, which equals upsampling
/// <c>sum_k w_k A_k</c> since bilinear upsampling is linear.</item>
/// </list>
/// </summary>
public sealed class ScoreCam : ScoreCamBase
{
    /// <inheritdoc/>
    public override string Name => "scorecam";

    /// <inheritdoc/>
    public override string Summary => "Score-CAM: channels weighted by the score of the input masked with each upsampled channel";

    /// <inheritdoc/>
    public override string Paper => "Wang et al., Score-CAM, CVPR Workshops 2020 (arXiv:1910.01279)";

    internal override Convention MaskConventionFor(Convention requested) => requested;

    private protected override float[][] ChannelWeights(ExplainContext context, MaskSet masks, int channels)
    {
        int big = masks.Big;
        int n = context.Batch;
        if (context.Convention == Convention.Paper)
            return PaperWeights(context, masks, channels, big);
        // item = image * C + channel is mask row item of the device masks.
        var scores = DistinctScores(context, masks, channels, big, item => new MaskedRow(item / channels, item, -1, 1f));
        var baseline = context.Convention == Convention.TorchCam ? BaselineScores(context) : new float[n];
        var weights = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var s = new double[channels];
            for (int k = 0; k < channels; k++)
                s[k] = scores[i * channels + k] - baseline[i];
            weights[i] = Softmax(s);
        }
        return weights;
    }

    private static float[][] PaperWeights(ExplainContext context, MaskSet set, int channels, int big)
    {
        int n = context.Batch;
        // The class probability of each masked input: scored through a softmax objective over the outputs.
        var probability = context.WithObjective(new ClassProbability(context.Classes));
        var constant = new bool[n * channels];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < channels; k++)
                constant[i * channels + k] = !set.Row(i * channels + k).ContainsAnyExcept(0f);
        }
        var scores = DistinctScores(probability, set, channels, big,
            item => new MaskedRow(item / channels, constant[item] ? -1 : item, -1, 1f));
        var weights = new float[n][];
        for (int i = 0; i < n; i++)
        {
            weights[i] = new float[channels];
            for (int k = 0; k < channels; k++)
                weights[i][k] = constant[i * channels + k] ? 0f : scores[i * channels + k];
        }
        return weights;
    }

    /// <summary>
    /// The scores of the masked inputs (item = image * channels + channel), each distinct mask of an image run
    /// once: channels whose masks are equal bit for bit (common deep in a network, where a channel that
    /// fires at one position normalizes to the same mask as every other channel firing only there) mask the
    /// same input, and a row's output does not depend on the rest of its batch, so their scores are equal.
    /// </summary>
    private static float[] DistinctScores(ExplainContext context, MaskSet set, int channels, int big, Func<int, MaskedRow> rowOf)
    {
        int n = context.Batch;
        var first = new int[n * channels];
        var distinct = new List<int>(n * channels);
        for (int i = 0; i < n; i++)
        {
            var seen = new Dictionary<int, List<int>>();
            for (int k = 0; k < channels; k++)
            {
                var mask = set.Row(i * channels + k);
                int hash = MaskHash(mask), item = i * channels + k;
                first[item] = item;
                if (seen.TryGetValue(hash, out var same))
                {
                    foreach (int other in same)
                    {
                        if (System.Runtime.InteropServices.MemoryMarshal.AsBytes(mask).SequenceEqual(
                                System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Row(i * channels + other))))
                        {
                            first[item] = i * channels + other;
                            break;
                        }
                    }
                }
                else
                {
                    seen[hash] = same = [];
                }
                if (first[item] == item)
                {
                    same.Add(k);
                    distinct.Add(item);
                }
            }
        }
        var unique = MaskedScores(context, set, distinct.Count, u => rowOf(distinct[u]));
        var byItem = new float[n * channels];
        for (int u = 0; u < distinct.Count; u++)
            byItem[distinct[u]] = unique[u];
        var scores = new float[n * channels];
        for (int item = 0; item < scores.Length; item++)
            scores[item] = byItem[first[item]];
        return scores;
    }

    /// <summary>A hash of a sample of the mask (equal masks hash equal; candidates are then compared in full).</summary>
    private static int MaskHash(ReadOnlySpan<float> mask)
    {
        var h = new HashCode();
        for (int j = 0; j < mask.Length; j += 61)
            h.Add(BitConverter.SingleToInt32Bits(mask[j]));
        return h.ToHashCode();
    }

    /// <summary><c>softmax(y)[c]</c> per image.</summary>
    private sealed class ClassProbability(int[] classes) : ScoreObjective
    {
        public override float Score(int image, ReadOnlySpan<float> outputRow)
        {
            return (float)Math.Exp(outputRow[classes[image]] - StableSoftmax.LogSumExp(outputRow));
        }

        public override void Gradient(int image, ReadOnlySpan<float> outputRow, Span<float> gradient)
        {
            // d p_c / d y_m = p_c (delta_cm - p_m)
            var p = StableSoftmax.Probabilities(outputRow);
            int c = classes[image];
            for (int m = 0; m < outputRow.Length; m++)
                gradient[m] = (float)(p[c] * ((m == c ? 1 : 0) - p[m]));
        }
    }
}
