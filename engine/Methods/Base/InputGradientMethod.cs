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

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Input = true, ReluRule = Rule });
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
}
