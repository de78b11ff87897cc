namespace CamEngine.Kernels;

/// <summary>
/// Geometry of a 2-D convolution, NCHW. Shared by every backend and passed to the ILGPU kernels by value.
/// x: (N, C, H, W); w: (K, C/Groups, KH, KW); b: (K); y: (N, K, OH, OW).
/// Padding may be asymmetric: top/left before the data, bottom/right after it.
/// </summary>
internal readonly record struct ConvShape(
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

    /// <summary>A 1x1, stride-1 conv with no padding: each output pixel is a product of its own input pixel (dilation
    /// does not matter at 1x1).</summary>
    public bool IsUnpaddedPointwise => KH == 1 && KW == 1 && StrideH == 1 && StrideW == 1
                                       && PadTop == 0 && PadLeft == 0 && PadBottom == 0 && PadRight == 0;

    /// <summary>A 1x1 conv with a stride over 1 and no padding: it reads one input pixel in StrideH*StrideW.</summary>
    public bool IsUnpaddedStridedPointwise => KH == 1 && KW == 1 && (StrideH > 1 || StrideW > 1)
                                              && PadTop == 0 && PadLeft == 0 && PadBottom == 0 && PadRight == 0;

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
internal readonly record struct PoolShape(
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

    /// <summary>The average-pool window of output (<paramref name="oh"/>, <paramref name="ow"/>) clipped to the input,
    /// [Hs, He) x [Ws, We), and its divisor (the unclipped area inside the padded input when
    /// <see cref="CountIncludePad"/>, else the clipped area). For the host backends; the ILGPU kernels inline it.</summary>
    public (int Hs, int He, int Ws, int We, int Divisor) AvgWindow(int oh, int ow)
    {
        int hs = oh * StrideH - PadTop, ws = ow * StrideW - PadLeft;
        int he = Math.Min(hs + KH, H + PadBottom), we = Math.Min(ws + KW, W + PadRight);
        int area = (he - hs) * (we - ws);
        hs = Math.Max(hs, 0);
        ws = Math.Max(ws, 0);
        he = Math.Min(he, H);
        we = Math.Min(we, W);
        return (hs, he, ws, we, CountIncludePad ? area : (he - hs) * (we - ws));
    }

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
internal readonly record struct GemmShape(int M, int K, int N, bool TransB, float Alpha, float Beta)
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
internal enum ReluRule
{
    /// <summary>dx = dy * [x &gt; 0]: the true derivative, with ReLU'(0) = 0.</summary>
    Standard = 0,

    /// <summary>Guided backpropagation (Springenberg 2015): dx = dy * [x &gt; 0] * [dy &gt; 0].</summary>
    Guided = 1,

    /// <summary>Deconvnet (Zeiler and Fergus 2014): dx = dy * [dy &gt; 0], ignoring the forward input.</summary>
    Deconvnet = 2,
}

/// <summary>Binary element-wise operators with broadcasting (<see cref="Broadcast"/>).</summary>
internal enum BinaryOp
{
    /// <summary>a + b.</summary>
    Add = 0,

    /// <summary>a - b.</summary>
    Sub = 1,

    /// <summary>a * b.</summary>
    Mul = 2,

    /// <summary>a / b.</summary>
    Div = 3,
}

/// <summary>
/// Geometry of a broadcasting binary op over rank-4 views: output dims D0..D3, operand dims A0..A3 and B0..B3
/// (each 1 or equal to the output's), and the operands' row-major strides with 0 along broadcast axes.
/// Build it with <see cref="Create"/>, which right-aligns shapes of rank 1 to 4 (numpy's rule).
/// </summary>
internal readonly record struct BroadcastShape(
    int D0, int D1, int D2, int D3,
    int A0, int A1, int A2, int A3,
    int B0, int B1, int B2, int B3,
    int SA0, int SA1, int SA2, int SA3,
    int SB0, int SB1, int SB2, int SB3,
    int Op)
{
    /// <summary>The operator.</summary>
    public BinaryOp Operator => (BinaryOp)Op;

    /// <summary>Number of output elements.</summary>
    public long OutputLength => (long)D0 * D1 * D2 * D3;

    /// <summary>Right-aligns <paramref name="shape"/> to rank 4, padding with leading 1s.</summary>
    public static int[] Pad4(ReadOnlySpan<int> shape)
    {
        if (shape.Length > 4)
            throw new ArgumentException($"broadcasting supports rank 4 at most, got rank {shape.Length}");
        var r = new[] { 1, 1, 1, 1 };
        shape.CopyTo(r.AsSpan(4 - shape.Length));
        return r;
    }

    /// <summary>The numpy broadcast of two shapes (rank up to 4), or an exception naming both.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var pa = Pad4(a);
        var pb = Pad4(b);
        var r = new int[rank];
        for (int k = 0; k < rank; k++)
        {
            int da = pa[4 - rank + k], db = pb[4 - rank + k];
            if (da < 1 || db < 1 || (da != db && da != 1 && db != 1))
                throw new ArgumentException($"shapes ({string.Join(",", a.ToArray())}) and ({string.Join(",", b.ToArray())}) do not broadcast");
            r[k] = Math.Max(da, db);
        }
        return r;
    }

    /// <summary>The geometry for <c>op(a, b)</c>; throws when the shapes do not broadcast.</summary>
    public static BroadcastShape Create(BinaryOp op, ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        var d = Pad4(Broadcast(a, b));
        var pa = Pad4(a);
        var pb = Pad4(b);
        var sa = Strides(pa);
        var sb = Strides(pb);
        return new BroadcastShape(d[0], d[1], d[2], d[3], pa[0], pa[1], pa[2], pa[3], pb[0], pb[1], pb[2], pb[3],
            sa[0], sa[1], sa[2], sa[3], sb[0], sb[1], sb[2], sb[3], (int)op);
    }

    private static int[] Strides(int[] dims)
    {
        var s = new int[4];
        int acc = 1;
        for (int k = 3; k >= 0; k--)
        {
            s[k] = dims[k] == 1 ? 0 : acc;
            acc = checked(acc * dims[k]);
        }
        return s;
    }
}

/// <summary>Where one concat input sits in the output: part (N, C, Inner) at channel Offset of (N, Total, Inner).</summary>
internal readonly record struct ChannelSlice(int N, int C, int Inner, int Total, int Offset)
{
    /// <summary>The output index of part element <paramref name="i"/>.</summary>
    public int WholeIndex(int i)
    {
        int j = i % Inner;
        int t = i / Inner;
        int c = t % C;
        int n = t / C;
        return (n * Total + Offset + c) * Inner + j;
    }
}

/// <summary>
/// Padding of H and W: x (N, C, H, W) to (N, C, H + PadTop + PadBottom, W + PadLeft + PadRight). <see cref="Mode"/> 0
/// writes a constant outside x; 1 (reflect) mirrors x about its edge without repeating it (ONNX/PyTorch reflect,
/// pads at most side - 1); 2 (edge) repeats the edge element (PyTorch's replicate).
/// </summary>
internal readonly record struct PadShape(int N, int C, int H, int W, int PadTop, int PadLeft, int PadBottom, int PadRight)
{
    /// <summary>0 constant, 1 reflect, 2 edge.</summary>
    public int Mode { get; init; }

    /// <summary>The index along an axis of <paramref name="len"/> padded by <paramref name="pad"/> before that output
    /// index <paramref name="o"/> reads, or -1 for the constant.</summary>
    public int Source(int o, int pad, int len)
    {
        int h = o - pad;
        if (h >= 0 && h < len)
            return h;
        if (Mode == 1)
            return h < 0 ? -h : 2 * len - 2 - h;
        if (Mode == 2)
            return h < 0 ? 0 : len - 1;
        return -1;
    }

    /// <summary>How many output indices read input index <paramref name="h"/> of an axis (len, pads before and
    /// after): 1 in constant mode; its own plus up to two mirror images (reflect); the whole padded run at an edge.</summary>
    public int Readers(int h, int pad, int len, int padEnd)
    {
        int run = Mode == 2 ? (h == 0 ? pad : 0) + (h == len - 1 ? padEnd : 0) + 1 : 1;
        if (Mode == 1)
            run += (h >= 1 && h <= pad ? 1 : 0) + (h <= len - 2 && h >= len - 1 - padEnd ? 1 : 0);
        return run;
    }

    /// <summary>The <paramref name="j"/>-th output index reading input index h (j below <see cref="Readers"/>).</summary>
    public int Reader(int j, int h, int pad, int len, int padEnd)
    {
        if (Mode == 2)
            return (h == 0 ? 0 : h + pad) + j;
        if (j == 0)
            return h + pad;
        if (j == 1 && h >= 1 && h <= pad)
            return pad - h;
        return pad + 2 * len - 2 - h;
    }

    /// <summary>Padded height.</summary>
    public int OH => H + PadTop + PadBottom;

    /// <summary>Padded width.</summary>
    public int OW => W + PadLeft + PadRight;

    /// <summary>Throws <see cref="ArgumentException"/> for non-positive sides or negative pads.</summary>
    public void Validate()
    {
        if (N < 1 || C < 1 || H < 1 || W < 1)
            throw new ArgumentException($"pad: every dimension must be positive ({this})");
        if (PadTop < 0 || PadLeft < 0 || PadBottom < 0 || PadRight < 0 || PadTop > 1 << 16 || PadLeft > 1 << 16
            || PadBottom > 1 << 16 || PadRight > 1 << 16)
            throw new ArgumentException($"pad: pads must be between 0 and 65536 ({this})");
        if (Mode is < 0 or > 2)
            throw new ArgumentException($"pad: mode {Mode} must be 0 (constant), 1 (reflect) or 2 (edge)");
        if (Mode == 1 && (PadTop >= H || PadBottom >= H || PadLeft >= W || PadRight >= W))
            throw new ArgumentException($"pad: reflect pads must be smaller than the side they mirror ({this})");
    }
}
