using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Layer normalization over the last Cols elements of each row (ONNX LayerNormalization, PyTorch nn.LayerNorm):
/// <code>
/// x, y, dy, dx: (Rows, Cols)   gamma, beta, dgamma, dbeta: (Cols)   stats: (Rows, 2) = (mean, rstd)
/// mean = sum_j x_j / Cols   var = sum_j (x_j - mean)^2 / Cols (biased, as PyTorch)   rstd = 1 / sqrt(var + eps)
/// xhat_j = (x_j - mean) rstd   y_j = gamma_j xhat_j + beta_j
/// </code>
/// </summary>
internal static class LayerNorm
{
    /// <summary>Row statistics (mean, rstd), two passes for accuracy. Index: one per row.</summary>
    public static void Stats(Index1D r, ArrayView<float> x, ArrayView<float> stats, int cols, float eps)
    {
        int b = r * cols;
        float sum = 0f;
        for (int j = 0; j < cols; j++)
            sum += x[b + j];
        float mean = sum / cols;
        float sq = 0f;
        for (int j = 0; j < cols; j++)
        {
            float d = x[b + j] - mean;
            sq += d * d;
        }
        stats[2 * r] = mean;
        stats[2 * r + 1] = 1f / MathF.Sqrt(sq / cols + eps);
    }

    /// <summary><c>y_j = gamma_j (x_j - mean) rstd + beta_j</c>. Index: one per element.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> stats, ArrayView<float> gamma,
        ArrayView<float> beta, ArrayView<float> y, int cols)
    {
        int r = i / cols;
        int j = i % cols;
        y[i] = gamma[j] * ((x[i] - stats[2 * r]) * stats[2 * r + 1]) + beta[j];
    }

    /// <summary>
    /// d/dx of <c>y_j = gamma_j xhat_j + beta_j</c>, with g = dy * gamma:
    /// <c>dx_j = rstd (g_j - mean_k g_k - xhat_j mean_k (g_k xhat_k))</c>. Index: one per row.
    /// </summary>
    public static void BackwardData(Index1D r, ArrayView<float> x, ArrayView<float> stats, ArrayView<float> gamma,
        ArrayView<float> dy, ArrayView<float> dx, int cols)
    {
        int b = r * cols;
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
        float sg = 0f, sgx = 0f;
        for (int j = 0; j < cols; j++)
        {
            float g = dy[b + j] * gamma[j];
            sg += g;
            sgx += g * (x[b + j] - mean) * rstd;
        }
        sg /= cols;
        sgx /= cols;
        for (int j = 0; j < cols; j++)
        {
            float xhat = (x[b + j] - mean) * rstd;
            dx[b + j] = rstd * (dy[b + j] * gamma[j] - sg - xhat * sgx);
        }
    }

    /// <summary><c>dgamma_j = sum_r dy[r, j] xhat[r, j]</c>, <c>dbeta_j = sum_r dy[r, j]</c>. Index: one per column.</summary>
    public static void BackwardParams(Index1D j, ArrayView<float> x, ArrayView<float> stats, ArrayView<float> dy,
        ArrayView<float> dgamma, ArrayView<float> dbeta, int rows, int cols)
    {
        float sg = 0f, sb = 0f;
        for (int r = 0; r < rows; r++)
        {
            int i = r * cols + j;
            sg += dy[i] * (x[i] - stats[2 * r]) * stats[2 * r + 1];
            sb += dy[i];
        }
        dgamma[j] = sg;
        dbeta[j] = sb;
    }
}
