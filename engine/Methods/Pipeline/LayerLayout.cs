using System.Globalization;

namespace CamEngine.Methods;

/// <summary>
/// How a layer's tensor becomes the (C, h, w) grid the layer methods work on (<c>--layout</c>), as
/// pytorch-grad-cam's <c>reshape_transform</c> does for transformers:
/// <list type="bullet">
/// <item><c>nchw</c>: (C, h, w) as is;</item>
/// <item><c>nhwc</c>: (h, w, C) read channels last (Swin's <c>norm</c>, a ConvNeXt block's LayerNorm or Linear);</item>
/// <item><c>tokens[:K]</c>: (T, C), the first K tokens dropped (default 1, ViT's class token) and the other
/// T - K = h*h read as an (h, h, C) grid, token <c>K + y*h + x</c> at (y, x); T - K must be a square;</item>
/// <item><c>auto</c> (the default): decided per layer from the graph (<see cref="LayerLayouts"/>).</item>
/// </list>
/// Methods that replace a layer's activations and run the rest of the network (Ablation-CAM, Recipro-CAM, DFF's
/// concept scores) write through the inverse mapping; the dropped tokens keep their own values.
/// </summary>
public readonly record struct LayerLayout
{
    private LayerLayout(LayerLayoutKind kind, int leadingTokens)
    {
        Kind = kind;
        LeadingTokens = leadingTokens;
    }

    /// <summary>The layout kind.</summary>
    public LayerLayoutKind Kind { get; }

    /// <summary>For <see cref="LayerLayoutKind.Tokens"/>: how many leading tokens are not on the grid.</summary>
    public int LeadingTokens { get; }

    /// <summary>Decide from the graph.</summary>
    public static LayerLayout Auto => new(LayerLayoutKind.Auto, 0);

    /// <summary>(C, h, w) as is.</summary>
    public static LayerLayout Nchw => new(LayerLayoutKind.Nchw, 0);

    /// <summary>(h, w, C), channels last.</summary>
    public static LayerLayout Nhwc => new(LayerLayoutKind.Nhwc, 0);

    /// <summary>(T, C) tokens, the first <paramref name="leading"/> dropped (1: ViT's class token).</summary>
    public static LayerLayout Tokens(int leading = 1) => leading >= 0
        ? new(LayerLayoutKind.Tokens, leading)
        : throw new CamEngineException($"the number of leading tokens to drop must be 0 or more, got {leading}");

    /// <summary>Parses <c>auto</c>, <c>nchw</c>, <c>nhwc</c>, <c>tokens</c> or <c>tokens:K</c>.</summary>
    /// <exception cref="CamEngineException">Any other text; the message lists the valid ones.</exception>
    public static LayerLayout Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        switch (t)
        {
            case "auto":
                return Auto;
            case "nchw":
                return Nchw;
            case "nhwc":
                return Nhwc;
            case "tokens":
                return Tokens();
        }
        if (t.StartsWith("tokens:", StringComparison.Ordinal))
        {
            string k = t["tokens:".Length..];
            if (int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out int leading) && leading < 1 << 20)
                return Tokens(leading);
            throw new CamEngineException($"layout '{text}': K in tokens:K must be a whole number of leading tokens (0, 1, 2...)");
        }
        throw new CamEngineException($"unknown layout '{text}'; valid: auto, nchw, nhwc, tokens, tokens:K");
    }

    /// <summary><c>auto</c>, <c>nchw</c>, <c>nhwc</c> or <c>tokens:K</c>.</summary>
    public override string ToString() => Kind switch
    {
        LayerLayoutKind.Nchw => "nchw",
        LayerLayoutKind.Nhwc => "nhwc",
        LayerLayoutKind.Tokens => "tokens:" + LeadingTokens.ToString(CultureInfo.InvariantCulture),
        _ => "auto",
    };
}
