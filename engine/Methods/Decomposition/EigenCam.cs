namespace CamEngine.Methods;

/// <summary>
/// Eigen-CAM (Muhammad and Yeasin, IJCNN 2020, arXiv:2008.00299), as pytorch-grad-cam computes it: the
/// activations reshaped to X (h*w, C), centred per channel, projected on their first right singular vector:
/// <code>L = X_c v_1,   X_c = X - mean_rows(X)</code>
/// No class information. The singular vector's sign is arbitrary (pytorch-grad-cam inherits LAPACK's); here
/// it is fixed so that the projection's largest-magnitude value is positive, which keeps the dominant lobe
/// after the ReLU. The decomposition runs on the smaller Gram matrix, in double.
/// </summary>
public sealed class EigenCam : LayerMapMethod
{
    /// <inheritdoc/>
    public override string Name => "eigencam";

    /// <inheritdoc/>
    public override string Summary => "Eigen-CAM: projection of the activations on their first principal component";

    /// <inheritdoc/>
    public override string Paper => "Muhammad and Yeasin, Eigen-CAM, IJCNN 2020 (arXiv:2008.00299)";

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var maps = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
            maps[i] = Projection(activations.AsSpan(i * size, size), c, plane);
        return new LayerMaps(maps);
    }

    /// <summary>The centred (C, plane) data projected on its first principal axis, (plane).</summary>
    internal static float[] Projection(ReadOnlySpan<float> data, int channels, int plane)
    {
        var x = Centred(data, channels, plane);
        double[] projection;
        if (channels <= plane)
        {
            // Gram (C, C) = X^T X; L = X v.
            var gram = new double[channels * channels];
            for (int a = 0; a < channels; a++)
            {
                for (int b = a; b < channels; b++)
                {
                    double s = 0;
                    for (int j = 0; j < plane; j++)
                        s += x[a * plane + j] * x[b * plane + j];
                    gram[a * channels + b] = gram[b * channels + a] = s;
                }
            }
            var (_, v) = SymmetricEigen.Leading(gram, channels);
            projection = new double[plane];
            for (int k = 0; k < channels; k++)
            {
                for (int j = 0; j < plane; j++)
                    projection[j] += x[k * plane + j] * v[k];
            }
        }
        else
        {
            // Gram (hw, hw) = X X^T = U S^2 U^T; X v_1 = s_1 u_1.
            var gram = LinearKernel(x, channels, plane);
            var (value, u) = SymmetricEigen.Leading(gram, plane);
            double s = Math.Sqrt(Math.Max(value, 0));
            projection = u.Select(t => t * s).ToArray();
        }
        return FixSign(projection);
    }

    /// <summary>(C, plane) data centred over the positions (each channel minus its mean), in double.</summary>
    internal static double[] Centred(ReadOnlySpan<float> data, int channels, int plane)
    {
        var x = new double[channels * plane];
        for (int k = 0; k < channels; k++)
        {
            double mean = 0;
            for (int j = 0; j < plane; j++)
                mean += data[k * plane + j];
            mean /= plane;
            for (int j = 0; j < plane; j++)
                x[k * plane + j] = data[k * plane + j] - mean;
        }
        return x;
    }

    /// <summary>The (plane, plane) matrix of dot products between positions of (C, plane) data.</summary>
    internal static double[] LinearKernel(double[] x, int channels, int plane)
    {
        var gram = new double[plane * plane];
        for (int k = 0; k < channels; k++)
        {
            for (int a = 0; a < plane; a++)
            {
                double xa = x[k * plane + a];
                if (xa == 0)
                    continue;
                for (int b = a; b < plane; b++)
                    gram[a * plane + b] += xa * x[k * plane + b];
            }
        }
        for (int a = 0; a < plane; a++)
        {
            for (int b = 0; b < a; b++)
                gram[a * plane + b] = gram[b * plane + a];
        }
        return gram;
    }

    /// <summary>Flips <paramref name="p"/> so that its largest-magnitude entry is positive, as float.</summary>
    internal static float[] FixSign(double[] p)
    {
        int arg = 0;
        for (int j = 1; j < p.Length; j++)
        {
            if (Math.Abs(p[j]) > Math.Abs(p[arg]))
                arg = j;
        }
        double sign = p.Length > 0 && p[arg] < 0 ? -1 : 1;
        return p.Select(v => (float)(sign * v)).ToArray();
    }
}
