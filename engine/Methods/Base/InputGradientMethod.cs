using CamEngine.Model;
using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Kernels;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the pixel-space methods: the gradient of the target score with respect to the input image under
/// a ReLU backward rule. Raw output: the signed attribution (C, H, W). Map: <c>max_c |g_c|</c>, min-max
/// normalized (Simonyan's saliency reduction).
/// </summary>
public abstract class InputGradientMethod : CamMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected InputGradientMethod()
    {
    }

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <summary>The ReLU backward rule of the pass.</summary>
    private protected abstract ReluRule Rule { get; }

    /// <summary>ReLU nodes that keep the standard rule in this pass (none unless a method says otherwise).</summary>
    private protected virtual IReadOnlySet<string>? StandardReluNodes(ExplainContext context) => null;

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest
        {
            Input = true, ReluRule = Rule, StandardReluNodes = StandardReluNodes(context),
        });
        var g = model.Backend.Download(grads.Input!);
        int size = g.Length / context.Batch;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
            result.Add(PixelMaps.Make(this, context, i, g.AsSpan(i * size, size).ToArray()));
        return result;
    }
}

/// <summary>
/// Vanilla saliency (Simonyan, Vedaldi, Zisserman, 2014, arXiv:1312.6034): <c>M = max_c |dy/dx_c|</c>.
/// </summary>
public sealed class Saliency : InputGradientMethod
{
    /// <inheritdoc/>
    public override string Name => "saliency";

    /// <inheritdoc/>
    public override string Summary => "Vanilla saliency: max over colour channels of |d score / d pixel|";

    /// <inheritdoc/>
    public override string Paper => "Simonyan et al., Deep Inside Convolutional Networks, ICLR 2014 workshop (arXiv:1312.6034)";

    /// <inheritdoc/>
    private protected override ReluRule Rule => ReluRule.Standard;
}

/// <summary>
/// Guided backpropagation (Springenberg et al., 2015, arXiv:1412.6806): every ReLU passes the gradient only
/// where its input and the incoming gradient are both positive. Raw: the signed (C, H, W) attribution, as
/// pytorch-grad-cam's <c>GuidedBackpropReLUModel</c> returns it.
/// <para>
/// Which nonlinearities are guided. Only <c>relu</c> nodes: clip (ReLU6), leaky ReLU, hard-swish and the other
/// activations keep their plain gradient under both conventions (pgc replaces <c>torch.nn.ReLU</c> modules only,
/// and ReLU6 is not one; the paper defines the rule for the ReLU). Under <c>paper</c> every ReLU is guided, as
/// Springenberg et al. describe. Under <c>pytorch-grad-cam</c> a ReLU that PyTorch ran as a functional call
/// (<c>F.relu</c>, e.g. torchvision DenseNet's last ReLU) keeps its plain gradient, since pgc's module swap never
/// reaches it. ONNX records no module types; a functional call is recognized from PyTorch's scoped node names
/// (torch.onnx 1.13 and later: <c>/features/relu0/Relu</c> for a module, whose scope holds only the ReLU, versus
/// <c>/Relu</c> sharing its scope with the caller's other nodes), see <see cref="FunctionalRelus"/>. Graphs
/// without scoped names (other exporters, older PyTorch) guide every ReLU under both conventions.
/// </para>
/// </summary>
public sealed class GuidedBackprop : InputGradientMethod
{
    /// <inheritdoc/>
    public override string Name => "guided-backprop";

    /// <inheritdoc/>
    public override string Summary => "Guided backpropagation: input gradient through ReLUs that pass only positive signals";

    /// <inheritdoc/>
    public override string Paper => "Springenberg et al., Striving for Simplicity, ICLR 2015 workshop (arXiv:1412.6806)";

    /// <inheritdoc/>
    private protected override ReluRule Rule => ReluRule.Guided;

    private protected override IReadOnlySet<string>? StandardReluNodes(ExplainContext context) =>
        context.Convention == Convention.PytorchGradCam ? FunctionalRelus(context.Model.Graph.Nodes) : null;

    /// <summary>
    /// The relu nodes that PyTorch's scoped ONNX names show to be functional calls: the name is
    /// <c>SCOPE/Relu</c> or <c>SCOPE/Relu_K</c> (SCOPE possibly empty, starting with '/' otherwise) and another
    /// node of the graph is named <c>SCOPE/...</c> directly in that scope. A module call's scope
    /// (<c>.../relu</c>, <c>.../relu_1</c> for its second call) holds only its ReLU.
    /// </summary>
    internal static IReadOnlySet<string> FunctionalRelus(IReadOnlyList<GraphNode> nodes)
    {
        static string? Scope(string name)
        {
            int slash = name.LastIndexOf('/');
            return slash < 0 || (slash > 0 && name[0] != '/') ? null : name[..slash];
        }
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (Scope(n.Name) is { } s)
                counts[s] = counts.GetValueOrDefault(s) + 1;
        }
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (n.Op != Ops.Relu || Scope(n.Name) is not { } s)
                continue;
            string last = n.Name[(s.Length + 1)..];
            bool scoped = last == "Relu" || (last.StartsWith("Relu_", StringComparison.Ordinal) && last[5..].All(char.IsAsciiDigit) && last.Length > 5);
            if (scoped && counts[s] > 1)
                result.Add(n.Name);
        }
        return result;
    }
}
