namespace CamEngine.Methods;

/// <summary>The kernel of <see cref="KpcaCam"/>, with scikit-learn's definitions (gamma defaults to 1/C).</summary>
public enum KpcaKernel
{
    /// <summary><c>tanh(gamma x.y + 1)</c>, pytorch-grad-cam's default.</summary>
    Sigmoid,

    /// <summary><c>exp(-gamma |x - y|^2)</c>.</summary>
    Rbf,

    /// <summary><c>x.y</c>: plain PCA, i.e. Eigen-CAM.</summary>
    Linear,
}

/// <summary>
/// KPCA-CAM (Karmani et al., 2024, arXiv:2410.00267), as pytorch-grad-cam computes it: kernel PCA with one
/// component on the activations reshaped to (h*w, C) and centred per channel, the h*w positions being the
/// samples. <code>K_ij = k(x_i, x_j);  K_c = K - 1K - K1 + 1K1;  K_c a = l a;  L = sqrt(l) a</code>
/// (scikit-learn's <c>KernelPCA.fit_transform</c>, whose sign rule, the largest-magnitude entry positive, is
/// used here too). pytorch-grad-cam's default kernel is sigmoid with scikit-learn's gamma = 1/C.
/// </summary>
public sealed class KpcaCam : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "kpcacam";

    /// <inheritdoc/>
    public override string Summary => "KPCA-CAM: first kernel principal component of the activations";

    /// <inheritdoc/>
    public override string Paper => "Karmani et al., KPCA-CAM, 2024 (arXiv:2410.00267)";

    /// <summary>The kernel; sigmoid by default (pytorch-grad-cam).</summary>
    public KpcaKernel Kernel { get; init; } = KpcaKernel.Sigmoid;

    /// <summary>Kernel coefficient; null means 1 / C.</summary>
    public double? Gamma { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("kernel", "sigmoid", "sigmoid, rbf or linear (linear is Eigen-CAM)"),
        new("gamma", "auto", "kernel coefficient > 0; auto is 1 / C"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new KpcaCam
    {
        Kernel = values.Enum("kernel", Kernel), Gamma = values.OptionalDouble("gamma", Gamma, 0, inclusive: false),
    };

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var maps = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
            maps[i] = Projection(activations.AsSpan(i * size, size), c, plane);
        return new LayerMaps(maps);
    }

    internal float[] Projection(ReadOnlySpan<float> data, int channels, int plane)
    {
        var x = EigenCam.Centred(data, channels, plane);
        var k = EigenCam.LinearKernel(x, channels, plane);
        double gamma = Gamma ?? 1.0 / channels;
        if (Kernel == KpcaKernel.Sigmoid)
        {
            for (int j = 0; j < k.Length; j++)
                k[j] = Math.Tanh(gamma * k[j] + 1);
        }
        else if (Kernel == KpcaKernel.Rbf)
        {
            var norms = new double[plane];
            for (int a = 0; a < plane; a++)
                norms[a] = k[a * plane + a];
            for (int a = 0; a < plane; a++)
            {
                for (int b = 0; b < plane; b++)
                    k[a * plane + b] = Math.Exp(-gamma * Math.Max(norms[a] + norms[b] - 2 * k[a * plane + b], 0));
            }
        }
        // Centre in feature space: K_c = K - 1K - K1 + 1K1 (1 = the matrix of 1/n).
        var rowMean = new double[plane];
        double all = 0;
        for (int a = 0; a < plane; a++)
        {
            double s = 0;
            for (int b = 0; b < plane; b++)
                s += k[a * plane + b];
            rowMean[a] = s / plane;
            all += s;
        }
        all /= (double)plane * plane;
        for (int a = 0; a < plane; a++)
        {
            for (int b = 0; b < plane; b++)
                k[a * plane + b] = k[a * plane + b] - rowMean[a] - rowMean[b] + all;
        }
        var (value, alpha) = SymmetricEigen.Leading(k, plane);
        double s2 = Math.Sqrt(Math.Max(value, 0));
        return EigenCam.FixSign(alpha.Select(t => t * s2).ToArray());
    }
}
