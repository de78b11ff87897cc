using CamEngine.Graph;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Smooth Grad-CAM++ (Omeiza et al., 2019, arXiv:1908.01224): Grad-CAM++ with the derivative powers averaged
/// over <see cref="Samples"/> noisy copies of the input, x + N(0, <see cref="NoiseStd"/>^2) (absolute noise on
/// the normalized input, TorchCAM's defaults 4 and 0.3). With m2 = mean_n G_n^2 and m3 = mean_n G_n^3:
/// <list type="bullet">
/// <item><b>TorchCAM</b> (<c>SmoothGradCAMpp</c>, reproduced exactly): <c>alpha = m2 / (2 m2 + sum_ab(m3 A) + 1e-8)</c>
/// with A the clean activations; <c>w_k = sum_ij alpha ReLU(G_last)</c> and <c>L = ReLU(sum_k w_k A_last)</c>,
/// where G_last and A_last come from the last noisy sample (TorchCAM's hooks stay on during the noise loop).</item>
/// <item><b>paper</b> and <b>pytorch-grad-cam</b> (which has no Smooth Grad-CAM++): Grad-CAM++'s Eq. 19 with the
/// averaged powers and the clean activations A, <c>alpha = m2 / (2 m2 + sum_ab(A) m3 [+ 1e-6])</c>, 0 where
/// m2 = 0; <c>w_k = sum_ij alpha ReLU(mean_n G_n)</c> (the SmoothGrad estimate of the gradient) and
/// <c>L = ReLU(sum_k w_k A_k)</c>. With zero noise this is exactly <see cref="GradCamPlusPlus"/>.</item>
/// </list>
/// The noise is drawn from <c>--seed</c>: same seed, same map.
/// </summary>
public sealed class SmoothGradCamPlusPlus : GradientCamMethod
{
    /// <summary>Number of noisy samples (TorchCAM's default 4).</summary>
    public int Samples { get; init; } = 4;

    /// <summary>Standard deviation of the input noise (TorchCAM's default 0.3).</summary>
    public double NoiseStd { get; init; } = 0.3;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("samples", "4", "noisy copies of the input, an integer >= 1"),
        new("std", "0.3", "standard deviation of the input noise (absolute, in the normalized input space), >= 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new SmoothGradCamPlusPlus
    {
        Samples = values.Int("samples", Samples, 1), NoiseStd = values.Double("std", NoiseStd, 0), ReplayNoise = ReplayNoise,
    };

    /// <summary>Test hook: noise samples to use instead of drawing them, each as long as the whole input batch
    /// (rows x C x H x W), or as one image (then added to every row).</summary>
    internal IReadOnlyList<float[]>? ReplayNoise { get; init; }

    /// <inheritdoc/>
    public override string Name => "smoothgradcampp";

    /// <inheritdoc/>
    public override string Summary => "Smooth Grad-CAM++: Grad-CAM++ with derivatives averaged over noisy inputs";

    /// <inheritdoc/>
    public override string Paper => "Omeiza et al., Smooth Grad-CAM++, 2019 (arXiv:1908.01224)";

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var backend = model.Backend;
        var layerNames = context.Layers.Select(l => l.Output).ToList();
        var clean = layerNames.Select((_, l) => context.Activations(l)).ToList(); // (N, C, h, w) through the layout
        var input = context.Input ?? backend.DownloadHost(context.Forward.Input);
        int samples = ReplayNoise?.Count ?? Samples;
        if (samples < 1)
            throw new CamEngineException("Smooth Grad-CAM++ needs at least one noise sample");
        var m1 = clean.Select(c => new double[c.Length]).ToList();
        var m2 = clean.Select(c => new double[c.Length]).ToList();
        var m3 = clean.Select(c => new double[c.Length]).ToList();
        var lastA = new List<float[]>();
        var lastG = new List<float[]>();
        var random = context.NewRandom(salt: 0x5C47);
        for (int s = 0; s < samples; s++)
        {
            var noisy = new float[input.Length];
            if (ReplayNoise is { } replay)
            {
                var noise = replay[s];
                if (input.Length % noise.Length != 0)
                    throw new CamEngineException($"noise sample {s} has {noise.Length} values; the input has {input.Length}");
                for (int j = 0; j < noisy.Length; j++)
                    noisy[j] = input.Data[j] + noise[j % noise.Length];
            }
            else
            {
                GaussianNoise.Fill(random, noisy, NoiseStd);
                for (int j = 0; j < noisy.Length; j++)
                    noisy[j] += input.Data[j];
            }
            using var x = backend.Upload(noisy, input.Shape);
            using ForwardPass pass = model.Forward(x);
            using var seed = context.SeedFor(pass);
            using var grads = model.Backward(pass, seed, new BackwardRequest { Layers = layerNames });
            lastA.Clear();
            lastG.Clear();
            for (int l = 0; l < layerNames.Count; l++)
            {
                var g = context.LayerGradients(grads, l);
                for (int j = 0; j < g.Length; j++)
                {
                    double v = g[j];
                    m1[l][j] += v;
                    m2[l][j] += v * v;
                    m3[l][j] += v * v * v;
                }
                lastA.Add(context.Grid(l).ToGrid(backend.Download(pass[layerNames[l]])));
                lastG.Add(g);
            }
        }
        for (int l = 0; l < layerNames.Count; l++)
        {
            for (int j = 0; j < m1[l].Length; j++)
            {
                m1[l][j] /= samples;
                m2[l][j] /= samples;
                m3[l][j] /= samples;
            }
        }
        bool torchCam = context.Convention == Convention.TorchCam;
        double eps = context.Convention switch
        {
            Convention.TorchCam => CamPostprocess.TorchCamEpsilon,
            Convention.PytorchGradCam => GradCamPlusPlus.PytorchGradCamEpsilon,
            _ => 0,
        };
        return Build(context, (i, l, c, plane) =>
        {
            int size = c * plane, o = i * size;
            var aAlpha = clean[l].AsSpan(o, size);
            var aMap = torchCam ? lastA[l].AsSpan(o, size) : aAlpha;
            var w = new float[c];
            for (int k = 0; k < c; k++)
            {
                double sumA = 0, sumM3A = 0;
                for (int j = k * plane; j < (k + 1) * plane; j++)
                {
                    sumA += aAlpha[j];
                    sumM3A += m3[l][o + j] * aAlpha[j];
                }
                double acc = 0;
                for (int j = k * plane; j < (k + 1) * plane; j++)
                {
                    double g2 = m2[l][o + j], g3 = m3[l][o + j];
                    double alpha, grad;
                    if (torchCam)
                    {
                        alpha = g2 / (2 * g2 + sumM3A + eps);
                        grad = lastG[l][o + j];
                    }
                    else
                    {
                        alpha = GradCamPlusPlus.Alpha(g2, g3, sumA, eps);
                        grad = m1[l][o + j];
                    }
                    acc += alpha * Math.Max(grad, 0);
                }
                w[k] = (float)acc;
            }
            var contributions = new float[size];
            for (int k = 0; k < c; k++)
            {
                for (int j = k * plane; j < (k + 1) * plane; j++)
                    contributions[j] = w[k] * aMap[j];
            }
            return context.EigenSmooth
                ? PrincipalComponent.Project(contributions, c, plane)
                : ChannelSum(contributions, c, plane);
        });
    }
}
