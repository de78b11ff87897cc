using CamEngine.Autodiff;
using CamEngine.Graph;

namespace CamEngine.Methods;

/// <summary>
/// Shapley-CAM (Cai et al., "CAMs as Shapley Value-based Explainers", 2025, arXiv:2501.06261), as
/// pytorch-grad-cam's <c>ShapleyCAM</c> computes it: a second-order Taylor estimate of each neuron's Shapley value,
/// <code>w_k = mean_ij (G - (1/2) (H A))_k,ij;   L = ReLU(sum_k w_k A_k)</code>
/// with G = dy/dA and <c>H A</c> the Hessian of the target score with respect to A applied to A itself
/// (exact, through forward-mode jets and a reverse pass). For a raw logit through
/// piecewise-linear layers H = 0 and Shapley-CAM equals Grad-CAM; it differs for softmax targets (pgc pairs it
/// with a softmax-based target) and for smooth layers after A.
/// </summary>
public sealed class ShapleyCam : GradientCamMethod
{
    /// <inheritdoc/>
    public override string Name => "shapleycam";

    /// <inheritdoc/>
    public override string Summary => "Shapley-CAM: mean of the gradient minus half the Hessian-activation product";

    /// <inheritdoc/>
    public override string Paper => "Cai et al., CAMs as Shapley Value-based Explainers, 2025 (arXiv:2501.06261)";

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var layerNames = context.Layers.Select(l => l.Output).ToList();
        using var seed = context.Seed();
        using var grads = model.Backward(context.Forward, seed, new BackwardRequest { Layers = layerNames });
        var activations = layerNames.Select((_, l) => context.Activations(l)).ToList(); // (N, C, h, w) through the layout
        var gradients = layerNames.Select((_, l) => context.LayerGradients(grads, l)).ToList();
        return Build(context, (i, l, c, plane) =>
        {
            int size = c * plane;
            var a = activations[l].AsSpan(i * size, size);
            var g = gradients[l].AsSpan(i * size, size);
            // H a in the layer's own layout (a's dropped tokens, if any, keep their values), read back as the grid.
            var grid = context.Grid(l);
            var ha = grid.ToGrid(HigherOrder.Hvp(model, context.Forward, i, layerNames[l], context.ScoreFunctionFor(i),
                grid.IsIdentity ? a : context.NativeRow(l, a, i)));
            var w = new float[c];
            for (int k = 0; k < c; k++)
            {
                double sum = 0;
                for (int j = 0; j < plane; j++)
                    sum += g[k * plane + j] - 0.5 * ha[k * plane + j];
                w[k] = (float)(sum / plane);
            }
            var map = new float[plane];
            for (int k = 0; k < c; k++)
            {
                for (int j = 0; j < plane; j++)
                    map[j] += w[k] * a[k * plane + j];
            }
            return map;
        });
    }
}
