using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the methods that read a vision transformer's own structure (attention rollout, LeGrad, ViT
/// Recipro-CAM) rather than a layer the user picks: they find the encoder blocks with <see cref="VitStructure"/>,
/// refuse any other model before work (<see cref="CamMethod.CheckModel(CamModel, IReadOnlyList{string})"/>), and return a map over the square patch
/// grid left after <see cref="Prefix"/> leading tokens, finished (upsampled and normalized) as every CAM map is.
/// </summary>
public abstract class TransformerMethod : CamMethod
{
    private protected TransformerMethod()
    {
    }

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <summary>Leading tokens that are not patches (the class token; 2 for DeiT's class and distillation tokens).</summary>
    public int Prefix { get; init; } = 1;

    private protected static MethodParameter PrefixParameter =>
        new("prefix", "1", "leading tokens that are not image patches (1: the class token; 2 for DeiT)");

    private protected override string? ModelRefusal(ModelGraph graph, IReadOnlyList<GraphNode> layers) =>
        VitStructure.Find(graph, out string why) == null ? why : null;

    /// <summary>The explanation of row <paramref name="image"/> from its raw (side, side) patch-grid map.</summary>
    private protected Explanation GridExplanation(ExplainContext context, int image, float[] raw, int side, IReadOnlyList<string> tensors)
    {
        var shape = context.Model.Graph.InputShape;
        var grid = new HostTensor([side, side], raw);
        return new Explanation
        {
            Image = image,
            Method = Name,
            TargetClass = context.Classes[image],
            Score = context.Scores[image],
            Layers = tensors,
            Raw = grid,
            Map = CamPostprocess.Finish([grid], shape[1], shape[2], context.Convention, context.Fusion, $"{Name} map of image {image}"),
        };
    }
}
