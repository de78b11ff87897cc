using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Integrated gradients (Sundararajan et al., ICML 2017, arXiv:1703.01365): the gradient integrated along the
/// straight path from a baseline x' to the input,
/// <code>IG(x) = (x - x') * integral_0^1 dy/dx (x' + a (x - x')) da</code>
/// by the trapezoid rule over <see cref="Steps"/> intervals (Steps + 1 points, batched). Completeness:
/// <c>sum IG = y(x) - y(x')</c> up to the quadrature error. The baseline is zeros in the normalized input space
/// unless <see cref="Baseline"/> or <see cref="BaselinePixel"/> is given. Raw: the signed (C, H, W) attribution.
/// </summary>
public sealed class IntegratedGradients : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "integrated-gradients";

    /// <inheritdoc/>
    public override string Summary => "Integrated gradients: input gradient integrated from a baseline to the image";

    /// <inheritdoc/>
    public override string Paper => "Sundararajan et al., Axiomatic Attribution for Deep Networks, ICML 2017 (arXiv:1703.01365)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Gradient;

    /// <summary>Intervals of the path (m); 50 by default.</summary>
    public int Steps { get; init; } = 50;

    /// <summary>The baseline (C, H, W) in the model's input space; null means zeros.</summary>
    public HostTensor? Baseline { get; init; }

    /// <summary>When <see cref="Baseline"/> is null: a uniform picture of this pixel value (0 black, 1 white)
    /// passed through the model's preprocessing; null means zeros in the normalized input space.</summary>
    public float? BaselinePixel { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("steps", "50", "intervals of the path (trapezoid rule over steps + 1 points), an integer >= 1"),
        new("baseline", "zero", "zero (zeros in the normalized input space), black, white, or a (C,H,W) .npy file in the input space"),
    ];

    private protected override CamMethod Configure(ParameterValues values)
    {
        int steps = values.Int("steps", Steps, 1);
        var (baseline, pixel) = (Baseline, BaselinePixel);
        switch (values.Raw("baseline")?.ToLowerInvariant())
        {
            case null:
                break;
            case "zero" or "zeros":
                (baseline, pixel) = (null, null);
                break;
            case "black":
                (baseline, pixel) = (null, 0f);
                break;
            case "white":
                (baseline, pixel) = (null, 1f);
                break;
            case var text when text.EndsWith(".npy", StringComparison.Ordinal):
                (baseline, pixel) = (Npy.Read(values.Raw("baseline")!), null);
                break;
            default:
                throw new CamEngineException(
                    $"{Name}: parameter 'baseline' must be zero, black, white or a .npy file, got '{values.Raw("baseline")}'");
        }
        return new IntegratedGradients { Steps = steps, Baseline = baseline, BaselinePixel = pixel };
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        if (Steps < 1)
            throw new CamEngineException($"integrated-gradients needs at least one step, got {Steps}");
        var x = Perturbation.Inputs(context);
        var shape = context.Model.Graph.InputShape;
        int size = shape[0] * shape[1] * shape[2], n = context.Batch, points = Steps + 1;
        var baseline = Baseline?.Data ?? PixelBaseline(context.Model.Graph) ?? new float[size];
        if (baseline.Length != size)
            throw new CamEngineException($"the integrated-gradients baseline has {baseline.Length} values; the input has {size}");
        var sums = new double[n * size];
        Perturbation.InputGradients(context, n * points, item => item / points, (item, input) =>
        {
            int i = item / points, p = item % points;
            float a = (float)p / Steps;
            var xi = x.AsSpan(i * size, size);
            for (int j = 0; j < size; j++)
                input[j] = baseline[j] + a * (xi[j] - baseline[j]);
        }, (item, g) =>
        {
            int i = item / points, p = item % points;
            double weight = (p == 0 || p == Steps ? 0.5 : 1.0) / Steps;
            for (int j = 0; j < size; j++)
                sums[i * size + j] += weight * g[j];
        });
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            var raw = new float[size];
            for (int j = 0; j < size; j++)
                raw[j] = (float)((x[i * size + j] - baseline[j]) * sums[i * size + j]);
            result.Add(PixelMaps.Make(this, context, i, raw));
        }
        return result;
    }

    // The uniform picture of BaselinePixel, normalized as an input image would be: (C, H, W).
    private float[]? PixelBaseline(ModelGraph graph)
    {
        if (BaselinePixel is not { } v)
            return null;
        if (!(v >= 0 && v <= 1))
            throw new CamEngineException($"the integrated-gradients baseline pixel must lie in [0, 1], got {v}");
        var picture = new RgbImage(graph.InputShape[2], graph.InputShape[1]);
        Array.Fill(picture.Data, (byte)Math.Round(255 * v));
        return ImagePreprocessor.Normalize(picture, graph.Preprocessing).Data;
    }
}
