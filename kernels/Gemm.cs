using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Dense layer (ONNX Gemm with transA = 0) and its first-order backward kernels.
/// <code>
/// x: (M, K)   w: (N, K) if transB else (K, N)   b: (N)   y: (M, N)
/// y[m,n] = alpha * sum_k x[m,k] * W(k,n) + beta * b[n],   W(k,n) = transB ? w[n,k] : w[k,n]
/// </code>
/// Linear in x and in w: higher orders reuse these kernels.
/// </summary>
internal static class Gemm
{
    private static int WIndex(GemmShape s, int k, int n) => s.TransB ? n * s.K + k : k * s.N + n;

    /// <summary>Forward. Index: one per element of y (M*N).</summary>
    public static void Forward(
        Index1D i, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        GemmShape s, int hasBias)
    {
        int n = i % s.N;
        int m = i / s.N;
        float acc = 0f;
        for (int k = 0; k < s.K; k++)
            acc += x[m * s.K + k] * w[WIndex(s, k, n)];
        y[i] = s.Alpha * acc + (hasBias != 0 ? s.Beta * b[n] : 0f);
    }

    /// <summary>dL/dx of <c>y[m,n] = alpha sum_k x[m,k] W(k,n)</c>: <c>dx[m,k] = alpha sum_n dy[m,n] W(k,n)</c>.
    /// Index: one per element of dx (M*K).</summary>
    public static void BackwardData(Index1D i, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, GemmShape s)
    {
        int k = i % s.K;
        int m = i / s.K;
        float acc = 0f;
        for (int n = 0; n < s.N; n++)
            acc += dy[m * s.N + n] * w[WIndex(s, k, n)];
        dx[i] = s.Alpha * acc;
    }

    /// <summary>dL/dw: <c>dW(k,n) = alpha sum_m dy[m,n] x[m,k]</c>, stored in w's layout.
    /// Index: one per weight element (K*N).</summary>
    public static void BackwardWeights(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, GemmShape s)
    {
        int k, n;
        if (s.TransB)
        {
            k = i % s.K;
            n = i / s.K;
        }
        else
        {
            n = i % s.N;
            k = i / s.N;
        }
        float acc = 0f;
        for (int m = 0; m < s.M; m++)
            acc += dy[m * s.N + n] * x[m * s.K + k];
        dw[i] = s.Alpha * acc;
    }

    /// <summary>dL/db: <c>db[n] = beta sum_m dy[m,n]</c>. Index: one per output feature (N).</summary>
    public static void BackwardBias(Index1D i, ArrayView<float> dy, ArrayView<float> db, GemmShape s)
    {
        float acc = 0f;
        for (int m = 0; m < s.M; m++)
            acc += dy[m * s.N + i];
        db[i] = s.Beta * acc;
    }
}
