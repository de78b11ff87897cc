namespace CamEngine.Methods;

/// <summary>How attention rollout fuses a block's heads.</summary>
public enum HeadFusion
{
    /// <summary>The mean over heads (the paper's).</summary>
    Mean,

    /// <summary>The element-wise maximum over heads.</summary>
    Max,

    /// <summary>The element-wise minimum over heads.</summary>
    Min,
}

/// <summary>
/// Attention rollout (Abnar and Zuidema, ACL 2020), with the head fusion and discard of jacobgil/vit-explain
/// (<c>vit_rollout.py</c>), the common implementation: for each block l, in input order,
/// <code>F = fuse_heads(A_l)                 (T, T), A_l the post-softmax attention
/// F[lowest discard_ratio of its T*T entries] = 0, except F[0, 0]
/// R = norm_rows((F + I) / 2) R           R starts as I
/// map = R[0, prefix:]  on the (h, w) patch grid</code>
/// The map is class-agnostic: the target only labels it. Rows are normalized as the paper says; vit-explain
/// divides by <c>a.sum(dim=-1)</c> without keepdim, which broadcasts the row sums over the columns instead (it
/// scales column j by row j's sum); with discard 0 both agree up to that per-column factor. Computed in double on
/// the host from the forward pass's attentions: (T x T) per block and image is small.
/// </summary>
public sealed class AttentionRollout : TransformerMethod
{
    /// <inheritdoc/>
    public override string Name => "attention-rollout";

    /// <inheritdoc/>
    public override string Summary => "Attention rollout: the class token's attention to the patches, multiplied through the blocks (ViT)";

    /// <inheritdoc/>
    public override string Paper => "Abnar and Zuidema, Quantifying Attention Flow in Transformers, ACL 2020";

    /// <summary>How each block's heads are fused.</summary>
    public HeadFusion Fusion { get; init; } = HeadFusion.Mean;

    /// <summary>Fraction of each fused attention's entries set to zero, lowest first (the class token's own entry kept).</summary>
    public double DiscardRatio { get; init; } = 0.9;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("head_fusion", "mean", "how each block's heads are fused: mean, max or min"),
        new("discard_ratio", "0.9", "fraction in [0, 1) of each fused attention's lowest entries set to 0 (vit-explain's default 0.9)"),
        PrefixParameter,
    ];

    private protected override CamMethod Configure(ParameterValues values)
    {
        double ratio = values.Double("discard_ratio", DiscardRatio, 0);
        if (ratio >= 1)
            throw new CamEngineException($"{Name}: discard_ratio must be below 1 (it is {ratio}); 1 would discard every attention");
        return new AttentionRollout
        {
            Fusion = values.Enum("head_fusion", Fusion), DiscardRatio = ratio, Prefix = values.Int("prefix", Prefix, 0),
        };
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var vit = VitStructure.Of(context.Model.Graph, Name);
        int side = vit.GridSide(Prefix, Name);
        int t = vit.Tokens, heads = vit.Heads, n = context.Batch, square = t * t;
        var attention = vit.Blocks.Select(b => context.Backend.Download(context.Forward[b.Attention])).ToList();
        var names = vit.Blocks.Select(b => b.Attention).ToList();
        var result = new List<Explanation>(n);
        var rollout = new double[square];
        var fused = new double[square];
        var next = new double[square];
        var order = new int[square];
        var keys = new double[square];
        int discard = (int)(square * DiscardRatio);
        for (int i = 0; i < n; i++)
        {
            Array.Clear(rollout);
            for (int d = 0; d < t; d++)
                rollout[d * t + d] = 1;
            foreach (var a in attention)
            {
                int at = i * heads * square;
                for (int e = 0; e < square; e++)
                {
                    double v = a[at + e];
                    for (int h = 1; h < heads; h++)
                    {
                        double u = a[at + h * square + e];
                        v = Fusion switch { HeadFusion.Max => Math.Max(v, u), HeadFusion.Min => Math.Min(v, u), _ => v + u };
                    }
                    fused[e] = Fusion == HeadFusion.Mean ? v / heads : v;
                }
                if (discard > 0)
                {
                    for (int e = 0; e < square; e++)
                    {
                        order[e] = e;
                        keys[e] = fused[e];
                    }
                    Array.Sort(keys, order); // lowest first
                    for (int e = 0; e < discard; e++)
                    {
                        if (order[e] != 0)
                            fused[order[e]] = 0;
                    }
                }
                for (int r = 0; r < t; r++)
                {
                    double sum = 0;
                    for (int c = 0; c < t; c++)
                    {
                        fused[r * t + c] = (fused[r * t + c] + (r == c ? 1 : 0)) / 2;
                        sum += fused[r * t + c];
                    }
                    for (int c = 0; c < t; c++)
                        fused[r * t + c] /= sum;
                }
                // next = fused . rollout
                for (int r = 0; r < t; r++)
                {
                    for (int c = 0; c < t; c++)
                    {
                        double s = 0;
                        for (int k = 0; k < t; k++)
                            s += fused[r * t + k] * rollout[k * t + c];
                        next[r * t + c] = s;
                    }
                }
                (rollout, next) = (next, rollout);
            }
            var raw = new float[side * side];
            for (int p = 0; p < raw.Length; p++)
                raw[p] = (float)rollout[Prefix + p];
            result.Add(GridExplanation(context, i, raw, side, names));
        }
        return result;
    }
}
