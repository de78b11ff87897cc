namespace CamEngine.Methods;

/// <summary>
/// ViT Recipro-CAM (Byun and Lee, 2022; OpenVINO XAI's <c>ViTReciproCAM</c>): the tokens X entering block L-k+1
/// (k = <see cref="Block"/>, counted from the head) and the normalized tokens its attention reads, ln_1(X), are both
/// replaced by h*w mosaic copies; copy (i, j) keeps the prefix (class) tokens and weights the patch tokens by a
/// 3x3 Gaussian centred on patch (i, j) (or keeps patch (i, j) alone, <c>gaussian=false</c>):
/// <code>G = [[1/16, 1/8, 1/16], [1/8, 1/4, 1/8], [1/16, 1/8, 1/16]]
/// X_ij[patch (a, b)] = G[a - i + 1, b - j + 1] X[patch (a, b)]   (0 outside the 3x3 window)
/// L[i, j] = f(rest of the model on (X_ij, ln_1(X)_ij))</code>
/// with f the target's raw score, as OpenVINO XAI scores a ViT (its logits), or the class probability
/// (<c>score=probability</c>). The copies run in batches through the layers after the block's input only.
/// <c>cls=false</c> zeroes the prefix tokens in the copies, as OpenVINO XAI's <c>cls_token=False</c> does.
/// </summary>
public sealed class VitReciproCam : TransformerMethod
{
    private static readonly float[] s_gauss = [1 / 16f, 1 / 8f, 1 / 16f, 1 / 8f, 1 / 4f, 1 / 8f, 1 / 16f, 1 / 8f, 1 / 16f];

    /// <inheritdoc/>
    public override string Name => "vit-reciprocam";

    /// <inheritdoc/>
    public override string Summary => "ViT Recipro-CAM: score of a block's tokens kept around one patch at a time (gradient-free, ViT)";

    /// <inheritdoc/>
    public override string Paper => "Byun and Lee, ViT-ReciproCAM: Gradient and Attention-Free Visual Explanations for Vision Transformer, 2023 (arXiv:2310.02588)";

    /// <summary>The block whose input is masked, counted from the head: 1 is the last block (OpenVINO XAI's k).</summary>
    public int Block { get; init; } = 1;

    /// <summary>Spread each kept patch with the 3x3 Gaussian (true, the default) or keep the patch alone.</summary>
    public bool Gaussian { get; init; } = true;

    /// <summary>Keep the prefix (class) tokens in every copy (true) or zero them.</summary>
    public bool KeepClassToken { get; init; } = true;

    /// <summary>What a masked copy is scored by.</summary>
    public MaskedScore Score { get; init; } = MaskedScore.Target;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("block", "1", "the block whose input tokens are masked, counted from the head (1: the last block)"),
        new("gaussian", "true", "spread each kept patch over its 3x3 neighbours with a Gaussian (true) or keep it alone (false)"),
        new("cls", "true", "keep the class (prefix) tokens in the masked copies (true) or zero them (false)"),
        new("score", "target", "what a masked copy is scored by: target (its raw score, OpenVINO XAI's for ViT) or probability"),
        PrefixParameter,
    ];

    private protected override string? TargetRefusal(Target target) =>
        ClassProbabilityObjective.Refusal(Score, target, Name);

    private protected override CamMethod Configure(ParameterValues values) => new VitReciproCam
    {
        Block = values.Int("block", Block, 1), Gaussian = Flag(values, "gaussian", Gaussian), KeepClassToken = Flag(values, "cls", KeepClassToken),
        Score = values.Enum("score", Score), Prefix = values.Int("prefix", Prefix, 0),
    };

    private bool Flag(ParameterValues values, string key, bool current) => values.Raw(key)?.Trim().ToLowerInvariant() switch
    {
        null => current,
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        var v => throw new CamEngineException($"{Name}: {key} must be true or false, not '{v}'"),
    };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var vit = VitStructure.Of(context.Model.Graph, Name);
        int side = vit.GridSide(Prefix, Name);
        if (Block > vit.Blocks.Count)
            throw new CamEngineException($"{Name}: block={Block}, but the model has {vit.Blocks.Count} blocks");
        var block = vit.Blocks[^Block];
        var model = context.Model;
        var b = context.Backend;
        var scoring = Score == MaskedScore.Probability ? context.WithObjective(ClassProbabilityObjective.For(context, Name)) : context;
        int t = vit.Tokens, c = vit.Channels, n = context.Batch, plane = side * side, size = t * c, count = n * plane;
        bool both = block.AttentionInput != block.Input;
        var x = b.Download(context.Forward[block.Input]);
        var y = both ? b.Download(context.Forward[block.AttentionInput]) : null;
        int batch = Math.Max(1, context.PerturbationBatch);
        var bx = new float[Math.Min(batch, count) * size];
        var by = both ? new float[bx.Length] : null;
        var weights = new float[t];
        var raw = new float[n][];
        for (int i = 0; i < n; i++)
            raw[i] = new float[plane];
        for (int start = 0; start < count; start += batch)
        {
            int m = Math.Min(batch, count - start);
            var rows = new int[m];
            for (int r = 0; r < m; r++)
            {
                int item = start + r, i = item / plane, p = item % plane;
                rows[r] = i;
                Weights(p, side, weights);
                Mosaic(x, i, weights, bx.AsSpan(r * size, size), c);
                if (by != null)
                    Mosaic(y!, i, weights, by.AsSpan(r * size, size), c);
            }
            int[] shape = [m, t, c];
            using var ux = b.Upload(bx.AsSpan(0, m * size), shape);
            using var uy = by != null ? b.Upload(by.AsSpan(0, m * size), shape) : null;
            using var pass = uy != null
                ? model.ForwardFrom(context.Forward, [(block.Input, ux), (block.AttentionInput, uy)], rows)
                : model.ForwardFrom(context.Forward, block.Input, ux, rows);
            var output = b.Download(pass.Output);
            int k = output.Length / m;
            for (int r = 0; r < m; r++)
            {
                int item = start + r;
                raw[item / plane][item % plane] = scoring.Score(item / plane, output.AsSpan(r * k, k));
            }
        }
        var names = both ? new[] { block.Input, block.AttentionInput } : new[] { block.Input };
        return Enumerable.Range(0, n).Select(i => GridExplanation(context, i, raw[i], side, names)).ToList();
    }

    // Token weights of the copy that keeps patch p: prefix tokens 1 (or 0), patches by the Gaussian or one-hot.
    private void Weights(int p, int side, float[] w)
    {
        int pi = p / side, pj = p % side;
        for (int k = 0; k < Prefix; k++)
            w[k] = KeepClassToken ? 1 : 0;
        for (int a = 0; a < side; a++)
        {
            for (int bb = 0; bb < side; bb++)
            {
                int da = a - pi + 1, db = bb - pj + 1;
                w[Prefix + a * side + bb] = Gaussian
                    ? (da is >= 0 and < 3 && db is >= 0 and < 3 ? s_gauss[da * 3 + db] : 0)
                    : (da == 1 && db == 1 ? 1 : 0);
            }
        }
    }

    private static void Mosaic(float[] tokens, int image, float[] w, Span<float> into, int c)
    {
        int t = w.Length;
        var src = tokens.AsSpan(image * t * c, t * c);
        for (int k = 0; k < t; k++)
        {
            for (int j = 0; j < c; j++)
                into[k * c + j] = w[k] * src[k * c + j];
        }
    }
}
