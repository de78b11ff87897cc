namespace CamEngine.Kernels;

/// <summary>
/// Geometry of a 2-D convolution, NCHW. Shared by every backend and passed to the ILGPU kernels by value.
/// x: (N, C, H, W); w: (K, C/Groups, KH, KW); b: (K); y: (N, K, OH, OW).
/// Padding may be asymmetric: top/left before the data, bottom/right after it.
/// </summary>
public readonly record struct ConvShape(
    int N, int C, int H, int W,
    int K, int KH, int KW,
    int StrideH, int StrideW,
    int PadTop, int PadLeft, int PadBottom, int PadRight,
    int DilationH, int DilationW,
    int Groups)
{
    /// <summary>Output height: floor((H + pads - dilation*(KH-1) - 1) / stride) + 1.</summary>
    public int OH => (H + PadTop + PadBottom - DilationH * (KH - 1) - 1) / StrideH + 1;

    /// <summary>Output width.</summary>
    public int OW => (W + PadLeft + PadRight - DilationW * (KW - 1) - 1) / StrideW + 1;

    /// <summary>Input channels per group.</summary>
    public int CPerGroup => C / Groups;

    /// <summary>Output channels per group.</summary>
    public int KPerGroup => K / Groups;

    /// <summary>Number of weight elements, K * C/Groups * KH * KW.</summary>
    public long WeightLength => (long)K * CPerGroup * KH * KW;

    /// <summary>Throws <see cref="ArgumentException"/> when the geometry cannot be evaluated safely.</summary>
    public void Validate()
    {
        // Checked first, and without formatting `this`: ToString evaluates OH/OW, which divide by the stride.
        if (StrideH < 1 || StrideW < 1 || DilationH < 1 || DilationW < 1)
            throw new ArgumentException($"conv: strides ({StrideH},{StrideW}) and dilations ({DilationH},{DilationW}) must be positive");
        if (N < 1 || C < 1 || H < 1 || W < 1 || K < 1 || KH < 1 || KW < 1)
            throw new ArgumentException($"conv: every dimension must be positive ({this})");
        if (PadTop < 0 || PadLeft < 0 || PadBottom < 0 || PadRight < 0)
            throw new ArgumentException($"conv: pads must be non-negative ({this})");
        if (Groups < 1 || C % Groups != 0 || K % Groups != 0)
            throw new ArgumentException($"conv: groups {Groups} must divide C={C} and K={K}");
        if (OH < 1 || OW < 1)
            throw new ArgumentException($"conv: the kernel does not fit the padded input ({this})");
    }
}

/// <summary>
/// Geometry of a 2-D max or average pooling window, NCHW. x: (N, C, H, W); y: (N, C, OH, OW).
/// With <see cref="CeilMode"/> the last window may start inside the right/bottom padding but never
/// entirely inside it (PyTorch and ONNX rule).
/// </summary>
public readonly record struct PoolShape(
    int N, int C, int H, int W,
    int KH, int KW,
    int StrideH, int StrideW,
    int PadTop, int PadLeft, int PadBottom, int PadRight,
    int DilationH, int DilationW,
    bool CeilMode, bool CountIncludePad)
{
    // ILGPU kernel parameters must be blittable, and bool is not: the flags are stored as ints.
    private readonly int _ceilMode = CeilMode ? 1 : 0;
    private readonly int _countIncludePad = CountIncludePad ? 1 : 0;

    /// <summary>Output size rounds up (the last window may start in the trailing padding).</summary>
    public bool CeilMode { get => _ceilMode != 0; init => _ceilMode = value ? 1 : 0; }

    /// <summary>Average pooling divides by the window area including padding.</summary>
    public bool CountIncludePad { get => _countIncludePad != 0; init => _countIncludePad = value ? 1 : 0; }

    /// <summary>Output height.</summary>
    public int OH => OutSize(H, KH, StrideH, PadTop, PadBottom, DilationH, CeilMode);

    /// <summary>Output width.</summary>
    public int OW => OutSize(W, KW, StrideW, PadLeft, PadRight, DilationW, CeilMode);

    private static int OutSize(int size, int k, int stride, int padBefore, int padAfter, int dilation, bool ceil)
    {
        int span = size + padBefore + padAfter - dilation * (k - 1) - 1;
        if (span < 0)
            return 0;
        int o = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
        // The last window must start inside the input or the leading padding.
        if (ceil && (o - 1) * stride >= size + padBefore)
            o--;
        return o;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when the geometry cannot be evaluated safely.</summary>
    public void Validate()
    {
        // Checked first, and without formatting `this`: ToString evaluates OH/OW, which divide by the stride.
        if (StrideH < 1 || StrideW < 1 || DilationH < 1 || DilationW < 1)
            throw new ArgumentException($"pool: strides ({StrideH},{StrideW}) and dilations ({DilationH},{DilationW}) must be positive");
        if (N < 1 || C < 1 || H < 1 || W < 1 || KH < 1 || KW < 1)
            throw new ArgumentException($"pool: every dimension must be positive ({this})");
        if (PadTop < 0 || PadLeft < 0 || PadBottom < 0 || PadRight < 0)
            throw new ArgumentException($"pool: pads must be non-negative ({this})");
        if (PadTop >= KH * DilationH || PadBottom >= KH * DilationH || PadLeft >= KW * DilationW
            || PadRight >= KW * DilationW)
            throw new ArgumentException($"pool: padding must be smaller than the window ({this})");
        if (OH < 1 || OW < 1)
            throw new ArgumentException($"pool: the window does not fit the padded input ({this})");
    }
}

/// <summary>
/// Geometry of y = alpha * x op(W) + beta * b with x: (M, K), op(W): (K, N) where W is stored
/// (N, K) when <see cref="TransB"/> (a PyTorch linear layer) and (K, N) otherwise; b: (N) broadcast over rows.
/// </summary>
public readonly record struct GemmShape(int M, int K, int N, bool TransB, float Alpha, float Beta)
{
    // Stored as an int: ILGPU kernel parameters must be blittable.
    private readonly int _transB = TransB ? 1 : 0;

    /// <summary>W is stored (N, K).</summary>
    public bool TransB { get => _transB != 0; init => _transB = value ? 1 : 0; }

    /// <summary>Throws <see cref="ArgumentException"/> when a dimension is not positive.</summary>
    public void Validate()
    {
        if (M < 1 || K < 1 || N < 1)
            throw new ArgumentException($"gemm: every dimension must be positive ({this})");
    }
}

/// <summary>Backward rule of a ReLU, chosen per reverse pass.</summary>
public enum ReluRule
{
    /// <summary>dx = dy * [x &gt; 0]: the true derivative, with ReLU'(0) = 0.</summary>
    Standard = 0,

    /// <summary>Guided backpropagation (Springenberg 2015): dx = dy * [x &gt; 0] * [dy &gt; 0].</summary>
    Guided = 1,

    /// <summary>Deconvnet (Zeiler and Fergus 2014): dx = dy * [dy &gt; 0], ignoring the forward input.</summary>
    Deconvnet = 2,
}
