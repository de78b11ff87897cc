using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Dense layer (ONNX Gemm with transA = 0) and its first-order backward kernels.
/// <code>
/// x: (M, K)   w: (N, K) if transB else (K, N)   b: (N)   y: (M, N)
/// y[m,n] = alpha * sum_k x[m,k] * W(k,n) + beta * b[n],   W(k,n) = transB ? w[n,k] : w[k,n]
/// </code>
/// Linear in x and in w: higher orders reuse these kernels. The simple kernels (one thread per output) come
/// first; the tiled operands for <see cref="TiledGemm"/> follow in the same order. The tiled products are laid out
/// so that a tile's rows are the output's contiguous axis (features of y, of dx, and of the stored dw), which makes
/// the stores of adjacent threads adjacent in memory. The bias gradient on a GPU is <see cref="Reductions.ChannelSum"/>.
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

    // ---- tiled ----

    /// <summary>Forward as <c>y^T[n, m] = sum_k W(k, n) x[m, k]</c>, then <c>act(alpha out + beta b[n] + residual)</c>.</summary>
    public struct TiledForward : ITileOperands
    {
        private readonly ArrayView<float> _x, _w, _b, _res, _y;
        private readonly GemmShape _s;
        private readonly Epilogue _e;

        /// <summary>x: (M,K), w: (N,K) or (K,N), b: (N) or a stand-in, residual: (M,N) or a stand-in, y: (M,N).</summary>
        public TiledForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> residual,
            ArrayView<float> y, GemmShape s, Epilogue e)
        {
            (_x, _w, _b, _res, _y, _s, _e) = (x, w, b, residual, y, s, e);
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.N;

        /// <inheritdoc/>
        public readonly int Cols => _s.M;

        /// <inheritdoc/>
        public readonly int Depth => _s.K;

        /// <inheritdoc/>
        public readonly int Slices => 1;

        /// <inheritdoc/>
        public readonly int Splits => 1;

        /// <inheritdoc/>
        public readonly bool AAlongRows => !_s.TransB;

        /// <inheritdoc/>
        public readonly bool BAlongCols => false;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r) => _w[WIndex(_s, r, m)];

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n) => _x[n * _s.K + r];

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc)
        {
            int i = n * _s.N + m;
            float v = _s.Alpha * acc;
            if (_e.HasBias != 0)
                v += _s.Beta * _b[m];
            if (_e.HasResidual != 0)
                v += _res[i];
            _y[i] = _e.Activate(v);
        }
    }

    /// <summary>dL/dx as <c>dx^T[k, m] = alpha sum_n W(k, n) dy[m, n]</c>.</summary>
    public struct TiledBackwardData : ITileOperands
    {
        private readonly ArrayView<float> _dy, _w, _dx;
        private readonly GemmShape _s;

        /// <summary>dy: (M,N), w as in the forward, dx: (M,K).</summary>
        public TiledBackwardData(ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, GemmShape s)
        {
            (_dy, _w, _dx, _s) = (dy, w, dx, s);
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.K;

        /// <inheritdoc/>
        public readonly int Cols => _s.M;

        /// <inheritdoc/>
        public readonly int Depth => _s.N;

        /// <inheritdoc/>
        public readonly int Slices => 1;

        /// <inheritdoc/>
        public readonly int Splits => 1;

        /// <inheritdoc/>
        public readonly bool AAlongRows => _s.TransB;

        /// <inheritdoc/>
        public readonly bool BAlongCols => false;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r) => _w[WIndex(_s, m, r)];

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n) => _dy[n * _s.N + r];

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc) => _dx[n * _s.K + m] = _s.Alpha * acc;
    }

    /// <summary>dL/dw in w's layout: <c>dW(k, n) = alpha sum_m x[m, k] dy[m, n]</c>, rows along w's contiguous axis
    /// (k when w is (N, K), n when it is (K, N)).</summary>
    public struct TiledBackwardWeights : ITileOperands
    {
        private readonly ArrayView<float> _x, _dy, _dw;
        private readonly GemmShape _s;

        /// <summary>x: (M,K), dy: (M,N), dw: w's shape.</summary>
        public TiledBackwardWeights(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, GemmShape s)
        {
            (_x, _dy, _dw, _s) = (x, dy, dw, s);
        }

        /// <inheritdoc/>
        public readonly int Rows => _s.TransB ? _s.K : _s.N;

        /// <inheritdoc/>
        public readonly int Cols => _s.TransB ? _s.N : _s.K;

        /// <inheritdoc/>
        public readonly int Depth => _s.M;

        /// <inheritdoc/>
        public readonly int Slices => 1;

        /// <inheritdoc/>
        public readonly int Splits => 1;

        /// <inheritdoc/>
        public readonly bool AAlongRows => true;

        /// <inheritdoc/>
        public readonly bool BAlongCols => true;

        /// <inheritdoc/>
        public readonly float A(int z, int m, int r) => _s.TransB ? _x[r * _s.K + m] : _dy[r * _s.N + m];

        /// <inheritdoc/>
        public readonly float B(int z, int r, int n) => _s.TransB ? _dy[r * _s.N + n] : _x[r * _s.K + n];

        /// <inheritdoc/>
        public readonly void Store(int z, int m, int n, float acc) =>
            _dw[_s.TransB ? n * _s.K + m : n * _s.N + m] = _s.Alpha * acc;
    }
}
