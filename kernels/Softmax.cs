using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Softmax over the last axis of a (rows, cols) tensor, stabilized by the row maximum, and its backward.
/// Smooth; its Jacobian is <c>diag(y) - y y^T</c> per row.
/// <code>x, y, dy, dx: (rows, cols)   y[r,j] = exp(x[r,j] - m_r) / sum_k exp(x[r,k] - m_r),  m_r = max_k x[r,k]</code>
/// </summary>
internal static class Softmax
{
    /// <summary>Forward. Index: one per row.</summary>
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, int cols)
    {
        int b = i * cols;
        float m = x[b];
        for (int j = 1; j < cols; j++)
            m = x[b + j] > m ? x[b + j] : m;
        float sum = 0f;
        for (int j = 0; j < cols; j++)
        {
            float e = MathF.Exp(x[b + j] - m);
            y[b + j] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < cols; j++)
            y[b + j] *= inv;
    }

    /// <summary>Backward of the forward above from its output: <c>dx[r,j] = y[r,j] (dy[r,j] - sum_k dy[r,k] y[r,k])</c>.
    /// Index: one per row.</summary>
    public static void Backward(Index1D i, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int cols)
    {
        int b = i * cols;
        float dot = 0f;
        for (int j = 0; j < cols; j++)
            dot += dy[b + j] * y[b + j];
        for (int j = 0; j < cols; j++)
            dx[b + j] = y[b + j] * (dy[b + j] - dot);
    }
}
