using CamEngine.Graph;

namespace CamEngine.Methods;

/// <summary>
/// LeGrad (Bousselham et al., 2024), as TorchCAM's <c>torchcam.methods.LeGrad</c> computes it for a torchvision
/// ViT: each block l gets its own class scores by running the model's head on the mean of its output tokens,
/// <code>s_l = head(final_norm(mean_t X_l))</code>
/// and its map is the positive part of the gradient of the target score with respect to that block's post-softmax
/// attention, averaged over heads and query tokens, over the patch keys; the blocks' maps are averaged:
/// <code>map = mean_l mean_{h,q} ReLU(d s_l[c] / d A_l[h, q, prefix:])</code>
/// The attention values are not multiplied in. The head is the model's own: the mean token is put in place of
/// every token of the last block's output and the rest of the graph (final norm, token pick, classifier) runs
/// on it, so any head that reads tokens one at a time works. Per block: one forward of the head, its reverse
/// pass to the replaced tokens, and a reverse pass from the block's output to its attention.
/// </summary>
public sealed class LeGrad : TransformerMethod
{
    /// <inheritdoc/>
    public override string Name => "legrad";

    /// <inheritdoc/>
    public override string Summary => "LeGrad: positive gradients of each block's own class score on its attention, averaged (ViT)";

    /// <inheritdoc/>
    public override string Paper => "Bousselham et al., LeGrad: An Explainability Method for Vision Transformers via Feature Formation Sensitivity, 2024 (arXiv:2404.03214)";

    /// <summary>How many blocks, counted from the last, the map averages; 0 means every block (the paper's).</summary>
    public int Blocks { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("blocks", "0", "how many blocks, counted from the last, are averaged; 0: all of them"),
        PrefixParameter,
    ];

    private protected override CamMethod Configure(ParameterValues values) =>
        new LeGrad { Blocks = values.Int("blocks", Blocks, 0), Prefix = values.Int("prefix", Prefix, 0) };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var vit = VitStructure.Of(context.Model.Graph, Name);
        int side = vit.GridSide(Prefix, Name);
        var model = context.Model;
        var b = context.Backend;
        int t = vit.Tokens, c = vit.Channels, heads = vit.Heads, n = context.Batch, plane = side * side;
        if (Blocks > vit.Blocks.Count)
            throw new CamEngineException($"{Name}: blocks={Blocks}, but the model has {vit.Blocks.Count} blocks");
        var chosen = vit.Blocks.Skip(Blocks == 0 ? 0 : vit.Blocks.Count - Blocks).ToList();
        string last = vit.Blocks[^1].Output;
        var sum = new double[n * plane];
        var mean = new float[n * t * c];
        foreach (var block in chosen)
        {
            // The block's tokens, each replaced by their mean, in place of the last block's output.
            var x = b.Download(context.Forward[block.Output]);
            MeanTokens(x, mean, n, t, c);
            Backends.Tensor dx;
            using (var replaced = b.Upload(mean, [n, t, c]))
            using (var head = model.ForwardFrom(context.Forward, last, replaced))
            using (var seed = context.SeedFor(head))
            using (var g = model.Backward(head, seed, new BackwardRequest { Layers = [last] }))
            {
                // d s / d X_t = (1/T) sum_t' d s / d(replaced)_t': the mean's reverse.
                MeanTokens(b.Download(g.Layers[last]), mean, n, t, c);
                dx = b.Upload(mean, context.Forward[block.Output].Shape);
            }
            using (dx)
            using (var g = model.BackwardFrom(context.Forward, block.Output, dx, new BackwardRequest { Layers = [block.Attention] }))
            {
                var da = b.Download(g.Layers[block.Attention]);
                for (int i = 0; i < n; i++)
                {
                    for (int k = 0; k < plane; k++)
                    {
                        double s = 0;
                        for (int h = 0; h < heads; h++)
                        {
                            int row = ((i * heads + h) * t) * t + Prefix + k;
                            for (int q = 0; q < t; q++)
                                s += Math.Max(0f, da[row + q * t]);
                        }
                        sum[i * plane + k] += s / (heads * t);
                    }
                }
            }
        }
        var names = chosen.Select(x => x.Attention).ToList();
        var result = new List<Explanation>(n);
        for (int i = 0; i < n; i++)
        {
            var raw = new float[plane];
            for (int k = 0; k < plane; k++)
                raw[k] = (float)(sum[i * plane + k] / chosen.Count);
            result.Add(GridExplanation(context, i, raw, side, names));
        }
        return result;
    }

    // Every token of each image set to the image's mean token (x: (n, t, c)).
    private static void MeanTokens(float[] x, float[] into, int n, int t, int c)
    {
        var m = new double[c];
        for (int i = 0; i < n; i++)
        {
            Array.Clear(m);
            for (int k = 0; k < t; k++)
            {
                for (int j = 0; j < c; j++)
                    m[j] += x[(i * t + k) * c + j];
            }
            for (int k = 0; k < t; k++)
            {
                for (int j = 0; j < c; j++)
                    into[(i * t + k) * c + j] = (float)(m[j] / t);
            }
        }
    }
}
