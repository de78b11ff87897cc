using CamEngine.Kernels;
using CamEngine.Tensors;

namespace CamEngine.Backends;

/// <summary>
/// The operator-level line between the engine and the hardware (DESIGN.md section 7). The graph executor,
/// autodiff and CAM methods call only these operations on <see cref="Tensor"/> handles, so a backend
/// (ILGPU for CUDA/OpenCL/CPU, the double-precision reference, a managed SIMD CPU backend) drops in without
/// touching anything above it. Every public operation validates shapes and buffer lengths here, once, before
/// the backend's implementation runs: an out-of-bounds kernel access on ILGPU's CPU accelerator would abort
/// the process.
/// </summary>
internal abstract partial class Backend : IDisposable
{
    /// <summary>Short name, e.g. <c>ilgpu-cpu</c>, <c>cuda</c>, <c>reference</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Human-readable description of the device that runs the kernels.</summary>
    public abstract string DeviceDescription { get; }

    /// <summary>
    /// Serializes work on this backend. A backend may be shared by threads: memory operations take this lock,
    /// and <see cref="Graph.DeviceModel"/> passes and <see cref="Methods.Explainer"/> calls hold it for their whole
    /// duration (it is re-entrant), so concurrent explanations run one after another on the device and give the
    /// same numbers as sequential ones. For parallel CPU work, open one backend per thread.
    /// </summary>
    public Lock SyncRoot { get; } = new();

    // ---- memory ----

    /// <summary>A zero-filled float tensor.</summary>
    public Tensor Allocate(params int[] shape)
    {
        lock (SyncRoot)
            return new(this, (int[])shape.Clone(), ElementType.Float32, Storage(shape, ElementType.Float32), true);
    }

    /// <summary>A suggested bound on the memory one explanation batch may use on this backend (bytes): the
    /// <see cref="Methods.Explainer"/> splits batches to stay under it.</summary>
    public virtual long MemoryBudgetBytes => Math.Min(4L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    private TensorStorage Storage(int[] shape, ElementType type)
    {
        int n = Count(shape);
        try
        {
            return AllocateStorage(n, type);
        }
        catch (OutOfMemoryException e)
        {
            throw new DeviceMemoryException(
                $"out of memory on {DeviceDescription} allocating a {TensorShape.Format(shape)} tensor ({(long)n * 4 >> 20} MiB)", e);
        }
    }

    /// <summary>A zero-filled int32 tensor.</summary>
    public Tensor AllocateIndices(params int[] shape)
    {
        lock (SyncRoot)
            return new(this, (int[])shape.Clone(), ElementType.Int32, Storage(shape, ElementType.Int32), true);
    }

    /// <summary>Copies host data (row-major) into a new tensor.</summary>
    public Tensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        int n = Count(shape);
        if (data.Length != n)
            throw new ArgumentException($"upload: {data.Length} values for shape {TensorShape.Format(shape)}");
        var t = Allocate(shape);
        try
        {
            lock (SyncRoot)
                Write(t.Storage, data);
        }
        catch
        {
            t.Dispose();
            throw;
        }
        return t;
    }

    /// <summary>Overwrites an existing float tensor with host data (row-major, same length).</summary>
    public void CopyFromHost(Tensor t, ReadOnlySpan<float> data)
    {
        Check(t, ElementType.Float32, nameof(t));
        if (data.Length != t.Length)
            throw new ArgumentException($"copy: {data.Length} values for {t.ShapeText}");
        lock (SyncRoot)
            Write(t.Storage, data);
    }

    /// <summary>Copies a host tensor into a new tensor.</summary>
    public Tensor Upload(HostTensor host) => Upload(host.Data, host.Shape);

    /// <summary>Copies a float tensor back to the host, row-major.</summary>
    public float[] Download(Tensor t)
    {
        Check(t, ElementType.Float32, nameof(t));
        lock (SyncRoot)
            return Read(t.Storage, t.Length);
    }

    /// <summary>Copies a float tensor back to the host with its shape.</summary>
    public HostTensor DownloadHost(Tensor t) => new(t.Shape, Download(t));

    /// <summary>Copies <paramref name="length"/> elements of <paramref name="src"/> from <paramref name="srcOffset"/>
    /// to <paramref name="dst"/> at <paramref name="dstOffset"/> (row-major element offsets; both float tensors).
    /// Used to slice, stack and replicate batch rows.</summary>
    public void CopyRange(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length)
    {
        Check(src, ElementType.Float32, nameof(src));
        Check(dst, ElementType.Float32, nameof(dst));
        if (length < 0 || srcOffset < 0 || dstOffset < 0 || (long)srcOffset + length > src.Length
            || (long)dstOffset + length > dst.Length)
            throw new ArgumentException(
                $"copy of {length} elements from {srcOffset} of {src.ShapeText} to {dstOffset} of {dst.ShapeText} is out of range");
        if (length > 0)
        {
            lock (SyncRoot)
                CopyRangeCore(src, srcOffset, dst, dstOffset, length);
        }
    }

    /// <summary>Waits until every queued operation has finished.</summary>
    public virtual void Synchronize() { }

    /// <summary>
    /// The data of float tensor <paramref name="t"/> in place, row-major, where the device's memory is the host's (the
    /// managed CPU backend); null elsewhere (read with <see cref="Download"/>). Writing through it changes the tensor;
    /// the caller holds <see cref="SyncRoot"/> while it reads or writes, and only while <paramref name="t"/> lives.
    /// </summary>
    public virtual Memory<float>? HostMemory(Tensor t) => null;

    /// <summary>A mark of the backend's cache clock, for <see cref="TrimCaches"/>.</summary>
    public virtual long CacheMark => 0;

    /// <summary>
    /// Frees what the backend keeps between operations only for speed: forms derived from weights (packed, transformed,
    /// flipped) not used since <paramref name="mark"/> (a <see cref="CacheMark"/>), and idle pooled buffers. Later
    /// operations rebuild what they need, with the same results.
    /// </summary>
    public virtual void TrimCaches(long mark) { }

    /// <summary>Most bytes the backend keeps of forms derived from weights (past it, the forms used longest ago are
    /// dropped and rebuilt when next needed); unbounded by default, and where the backend keeps none.</summary>
    public virtual long WeightFormCacheBytes { get => long.MaxValue; set { } }

    // ---- convolution ----

    /// <summary><c>y = conv(x, w) + b</c>. x: (N,C,H,W), w: (K,C/G,KH,KW), b: (K) or null, y: (N,K,OH,OW).</summary>
    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        CheckConv(x, w, b, y, s);
        Conv2dCore(x, w, b, y, s);
    }

    /// <summary><c>y = max(0, conv(x, w) + b)</c>, shapes as <see cref="Conv2d"/>: a backend whose conv has an output
    /// stage applies the ReLU there instead of in a second pass over y; the values are those of Conv2d then Relu.</summary>
    public void Conv2dRelu(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        CheckConv(x, w, b, y, s);
        Conv2dReluCore(x, w, b, y, s);
    }

    /// <summary>
    /// <c>y = act(conv(x, w) + b + residual)</c> with residual of y's shape (a ResNet shortcut) or null, and act
    /// none, ReLU, clip to [<paramref name="lo"/>, <paramref name="hi"/>] or SiLU: one pass on backends whose conv has
    /// an output stage (the tiled GPU kernels), else conv, add and activation one after another, with the same values.
    /// </summary>
    public void Conv2dFused(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo = 0f, float hi = 0f)
    {
        CheckConv(x, w, b, y, s);
        if (residual != null)
            CheckShape(residual, y.Shape, nameof(residual));
        CheckEpilogue(activation, lo, hi);
        Conv2dFusedCore(x, w, b, residual, y, s, activation, lo, hi);
    }

    private static void CheckEpilogue(EpilogueActivation activation, float lo, float hi)
    {
        if (!Enum.IsDefined(activation))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        if (activation == EpilogueActivation.Clip && !(lo <= hi))
            throw new ArgumentException($"clip needs lo <= hi, got [{lo}, {hi}]");
    }

    /// <summary>
    /// <c>y = maxpool(act(conv(x, w) + b))</c> (a network's stem: conv, ReLU, max pool) for a forward that keeps
    /// neither the conv's output nor the pool's routing: a backend that can pools the conv's rows as it makes them,
    /// the conv's output never stored; the values are those of <see cref="Conv2dFused"/> (no residual) then
    /// <see cref="MaxPoolValues"/>. y: (N, K, OH', OW') of pool <paramref name="p"/> over the conv's output.
    /// </summary>
    public void Conv2dMaxPool(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s, EpilogueActivation activation, float lo,
        float hi, PoolShape p)
    {
        CheckConvInputs(x, w, b, s);
        p.Validate();
        if (p.N != s.N || p.C != s.K || p.H != s.OH || p.W != s.OW)
            throw new ArgumentException($"the pool {p} does not read the conv's output ({s.N}, {s.K}, {s.OH}, {s.OW})", nameof(p));
        CheckShape(y, [p.N, p.C, p.OH, p.OW], nameof(y));
        CheckEpilogue(activation, lo, hi);
        Conv2dMaxPoolCore(x, w, b, y, s, activation, lo, hi, p);
    }

    private void CheckConv(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        CheckConvInputs(x, w, b, s);
        CheckShape(y, [s.N, s.K, s.OH, s.OW], nameof(y));
    }

    private void CheckConvInputs(Tensor x, Tensor w, Tensor? b, ConvShape s)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckLength(w, s.WeightLength, nameof(w));
        if (b != null)
            CheckLength(b, s.K, nameof(b));
    }

    /// <summary>dx from dy. dy: (N,K,OH,OW), w: (K,C/G,KH,KW), dx: (N,C,H,W).</summary>
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, ConvShape s)
    {
        s.Validate();
        CheckShape(dy, [s.N, s.K, s.OH, s.OW], nameof(dy));
        CheckLength(w, s.WeightLength, nameof(w));
        CheckShape(dx, [s.N, s.C, s.H, s.W], nameof(dx));
        Conv2dBackwardDataCore(dy, w, dx, s);
    }

    /// <summary>dw from x and dy. dw: (K,C/G,KH,KW).</summary>
    public void Conv2dBackwardWeights(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(dy, [s.N, s.K, s.OH, s.OW], nameof(dy));
        CheckLength(dw, s.WeightLength, nameof(dw));
        Conv2dBackwardWeightsCore(x, dy, dw, s);
    }

    /// <summary>db from dy. db: (K).</summary>
    public void Conv2dBackwardBias(Tensor dy, Tensor db, ConvShape s)
    {
        s.Validate();
        CheckShape(dy, [s.N, s.K, s.OH, s.OW], nameof(dy));
        CheckLength(db, s.K, nameof(db));
        Conv2dBackwardBiasCore(dy, db, s);
    }

    // ---- ReLU ----

    /// <summary><c>y = max(x, 0)</c>.</summary>
    public void Relu(Tensor x, Tensor y)
    {
        CheckSame(x, y);
        ReluCore(x, y);
    }

    /// <summary>ReLU backward under <paramref name="rule"/>.</summary>
    public void ReluBackward(Tensor x, Tensor dy, Tensor dx, ReluRule rule)
    {
        CheckSame(x, dy);
        CheckSame(x, dx);
        ReluBackwardCore(x, dy, dx, rule);
    }

    // ---- pooling ----

    /// <summary>Max-pool with argmax routing. x: (N,C,H,W), y and argmax: (N,C,OH,OW).</summary>
    public void MaxPool(Tensor x, Tensor y, Tensor argmax, PoolShape s)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(y, [s.N, s.C, s.OH, s.OW], nameof(y));
        CheckShape(argmax, [s.N, s.C, s.OH, s.OW], nameof(argmax), ElementType.Int32);
        MaxPoolCore(x, y, argmax, s);
    }

    /// <summary>Max-pool values alone, for a forward whose routing nothing reads: the window maxima of
    /// <see cref="MaxPool"/> (a NaN in a window wins), possibly with the other zero's sign where a window holds both
    /// +0 and -0. x: (N,C,H,W), y: (N,C,OH,OW).</summary>
    public void MaxPoolValues(Tensor x, Tensor y, PoolShape s)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(y, [s.N, s.C, s.OH, s.OW], nameof(y));
        MaxPoolValuesCore(x, y, s);
    }

    /// <summary>Max-pool backward through the argmax routing.</summary>
    public void MaxPoolBackward(Tensor dy, Tensor argmax, Tensor dx, PoolShape s)
    {
        s.Validate();
        CheckShape(dy, [s.N, s.C, s.OH, s.OW], nameof(dy));
        CheckShape(argmax, [s.N, s.C, s.OH, s.OW], nameof(argmax), ElementType.Int32);
        CheckShape(dx, [s.N, s.C, s.H, s.W], nameof(dx));
        MaxPoolBackwardCore(dy, argmax, dx, s);
    }

    /// <summary>Routes x through a max-pool's recorded argmax: <c>y[o] = x[argmax[o]]</c> (Taylor coefficients of
    /// order &gt;= 1, and any quantity that follows the order-0 routing). x: (N,C,H,W), argmax and y: (N,C,OH,OW).</summary>
    public void MaxPoolRoute(Tensor x, Tensor argmax, Tensor y, PoolShape s)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(argmax, [s.N, s.C, s.OH, s.OW], nameof(argmax), ElementType.Int32);
        CheckShape(y, [s.N, s.C, s.OH, s.OW], nameof(y));
        MaxPoolRouteCore(x, argmax, y, s);
    }

    /// <summary>Average pool. x: (N,C,H,W), y: (N,C,OH,OW). Dilation must be 1.</summary>
    public void AvgPool(Tensor x, Tensor y, PoolShape s)
    {
        CheckAvg(s);
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(y, [s.N, s.C, s.OH, s.OW], nameof(y));
        AvgPoolCore(x, y, s);
    }

    /// <summary>Average-pool backward.</summary>
    public void AvgPoolBackward(Tensor dy, Tensor dx, PoolShape s)
    {
        CheckAvg(s);
        CheckShape(dy, [s.N, s.C, s.OH, s.OW], nameof(dy));
        CheckShape(dx, [s.N, s.C, s.H, s.W], nameof(dx));
        AvgPoolBackwardCore(dy, dx, s);
    }

    /// <summary>Global average pool. x: (N,C,H,W), y: (N,C,1,1).</summary>
    public void GlobalAvgPool(Tensor x, Tensor y)
    {
        CheckGap(x, y);
        GlobalAvgPoolCore(x, y, x.Shape[2] * x.Shape[3]);
    }

    /// <summary>Global average pool backward. dy: (N,C,1,1), dx: (N,C,H,W).</summary>
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        CheckGap(dx, dy);
        GlobalAvgPoolBackwardCore(dy, dx, dx.Shape[2] * dx.Shape[3]);
    }

    // ---- dense ----

    /// <summary><c>y = alpha x op(w) + beta b</c>. x: (M,K), w: (N,K) or (K,N), b: (N) or null, y: (M,N).</summary>
    public void Gemm(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        CheckGemm(x, w, b, y, s);
        GemmCore(x, w, b, y, s);
    }

    private void CheckGemm(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        s.Validate();
        CheckLength(x, (long)s.M * s.K, nameof(x));
        CheckLength(w, (long)s.K * s.N, nameof(w));
        if (b != null)
            CheckLength(b, s.N, nameof(b));
        CheckLength(y, (long)s.M * s.N, nameof(y));
    }

    /// <summary>
    /// <c>y = GELU(alpha x op(W) + beta b)</c>: <see cref="Gemm"/> and then the exact GELU of every output
    /// (<see cref="Kernels.Gelu"/>), as a linear layer and the GELU after it (the lean forward fuses the pair where
    /// nothing else reads the product). A backend may apply the GELU as it stores the product; by default it is a
    /// second pass over y.
    /// </summary>
    public void GemmGelu(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        CheckGemm(x, w, b, y, s);
        GemmGeluCore(x, w, b, y, s);
    }

    /// <summary>See <see cref="GemmGelu"/>: the product, then the GELU in place.</summary>
    protected virtual void GemmGeluCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        GemmCore(x, w, b, y, s);
        UnaryCore(new Gelu(), y, y);
    }

    /// <summary>dx (M,K) from dy (M,N).</summary>
    public void GemmBackwardData(Tensor dy, Tensor w, Tensor dx, GemmShape s)
    {
        s.Validate();
        CheckLength(dy, (long)s.M * s.N, nameof(dy));
        CheckLength(w, (long)s.K * s.N, nameof(w));
        CheckLength(dx, (long)s.M * s.K, nameof(dx));
        GemmBackwardDataCore(dy, w, dx, s);
    }

    /// <summary>dw (in w's layout) from x and dy.</summary>
    public void GemmBackwardWeights(Tensor x, Tensor dy, Tensor dw, GemmShape s)
    {
        s.Validate();
        CheckLength(x, (long)s.M * s.K, nameof(x));
        CheckLength(dy, (long)s.M * s.N, nameof(dy));
        CheckLength(dw, (long)s.K * s.N, nameof(dw));
        GemmBackwardWeightsCore(x, dy, dw, s);
    }

    /// <summary>db (N) from dy.</summary>
    public void GemmBackwardBias(Tensor dy, Tensor db, GemmShape s)
    {
        s.Validate();
        CheckLength(dy, (long)s.M * s.N, nameof(dy));
        CheckLength(db, s.N, nameof(db));
        GemmBackwardBiasCore(dy, db, s);
    }

    // ---- element-wise ----

    /// <summary><c>y = a + b</c>, all of the same length.</summary>
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        CheckSame(a, b);
        CheckSame(a, y);
        AddCore(a, b, y);
    }

    /// <summary><c>y = max(0, a + b)</c>, same shapes: the values of <see cref="Add"/> then <see cref="Relu"/>, in one
    /// pass on backends that fuse them.</summary>
    public void AddRelu(Tensor a, Tensor b, Tensor y)
    {
        CheckSame(a, b);
        CheckSame(a, y);
        AddReluCore(a, b, y);
    }

    /// <summary><c>y = x * scale</c>.</summary>
    public void Scale(Tensor x, Tensor y, float scale)
    {
        CheckSame(x, y);
        ScaleCore(x, y, scale);
    }

    // ---- element-wise maps, broadcasting arithmetic, per-channel affine ----

    /// <summary><c>y = op(x)</c> element-wise, for any <see cref="IUnaryOp"/> (sigmoid, hard-sigmoid, hard-swish,
    /// leaky ReLU, clip).</summary>
    public void Unary<TOp>(TOp op, Tensor x, Tensor y) where TOp : struct, IUnaryOp
    {
        CheckSame(x, y);
        UnaryCore(op, x, y);
    }

    /// <summary><c>dx = dy * op'(x)</c> element-wise.</summary>
    public void UnaryBackward<TOp>(TOp op, Tensor x, Tensor dy, Tensor dx) where TOp : struct, IUnaryOp
    {
        CheckSame(x, dy);
        CheckSame(x, dx);
        UnaryBackwardCore(op, x, dy, dx);
    }

    /// <summary>Taylor coefficients of orders 1..3 of <c>f(x(t))</c> from those of x: x0 has n elements; xs and ys
    /// hold orders 1, 2, 3 one after another (3n elements each). See <see cref="Kernels.Unary.Jet{TOp}"/>.</summary>
    public void UnaryJet<TOp>(TOp op, Tensor x0, Tensor xs, Tensor ys) where TOp : struct, IUnaryOp
    {
        CheckLength(x0, x0.Length, nameof(x0));
        CheckLength(xs, 3L * x0.Length, nameof(xs));
        CheckLength(ys, 3L * x0.Length, nameof(ys));
        UnaryJetCore(op, x0, xs, ys);
    }

    /// <summary><c>y = a op b</c> with numpy broadcasting (ranks up to 4, right-aligned); y has the broadcast shape.</summary>
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y)
    {
        var s = CheckBinary(op, a, b);
        CheckShape(y, BroadcastShape.Broadcast(a.Shape, b.Shape), nameof(y));
        BinaryCore(a, b, y, s);
    }

    /// <summary>The gradient of operand <paramref name="operand"/> (0 for a, 1 for b) of <c>y = a op b</c>, summed over
    /// the axes that operand was broadcast along; <paramref name="grad"/> has that operand's shape.</summary>
    public void BinaryBackward(BinaryOp op, Tensor a, Tensor b, Tensor dy, Tensor grad, int operand)
    {
        var s = CheckBinary(op, a, b);
        if (operand is not (0 or 1))
            throw new ArgumentOutOfRangeException(nameof(operand), operand, "operand must be 0 (a) or 1 (b)");
        CheckShape(dy, BroadcastShape.Broadcast(a.Shape, b.Shape), nameof(dy));
        CheckShape(grad, operand == 0 ? a.Shape : b.Shape, nameof(grad));
        BinaryBackwardCore(a, b, dy, grad, s, operand);
    }

    /// <summary><c>y[n,c,...] = x[n,c,...] * scale[c] + shift[c]</c> (inference BatchNormalization). x: (N, C, ...).</summary>
    public void ChannelAffine(Tensor x, Tensor scale, Tensor shift, Tensor y)
    {
        int c = CheckAffine(x, scale);
        CheckLength(shift, c, nameof(shift));
        CheckShape(y, x.Shape, nameof(y));
        ChannelAffineCore(x, scale, shift, y, c, x.Length / x.Shape[0] / c);
    }

    /// <summary>dx of <see cref="ChannelAffine"/>: <c>dx = dy * scale[c]</c>.</summary>
    public void ChannelAffineBackwardData(Tensor dy, Tensor scale, Tensor dx)
    {
        int c = CheckAffine(dx, scale);
        CheckShape(dy, dx.Shape, nameof(dy));
        ChannelAffineBackwardDataCore(dy, scale, dx, c, dx.Length / dx.Shape[0] / c);
    }

    /// <summary>Parameter gradients of <see cref="ChannelAffine"/>: dscale = sum dy * x, dshift = sum dy per channel.</summary>
    public void ChannelAffineBackwardParams(Tensor x, Tensor dy, Tensor dscale, Tensor dshift)
    {
        int c = CheckAffine(x, dscale);
        CheckLength(dshift, c, nameof(dshift));
        CheckShape(dy, x.Shape, nameof(dy));
        ChannelAffineBackwardParamsCore(x, dy, dscale, dshift, c, x.Length / x.Shape[0] / c);
    }

    // ---- concat, pad, softmax ----

    /// <summary>Concatenates <paramref name="parts"/> (N, Ci, ...) along axis 1 into y (N, sum Ci, ...).</summary>
    public void Concat(IReadOnlyList<Tensor> parts, Tensor y)
    {
        foreach (var (part, s) in ConcatSlices(parts, y))
            ConcatCopyInCore(part, y, s);
    }

    /// <summary>Splits dy (N, sum Ci, ...) back into the gradients <paramref name="dparts"/> (N, Ci, ...).</summary>
    public void ConcatBackward(Tensor dy, IReadOnlyList<Tensor> dparts)
    {
        foreach (var (part, s) in ConcatSlices(dparts, dy))
            ConcatCopyOutCore(dy, part, s);
    }

    /// <summary>Constant padding of H and W. x: (N,C,H,W), y: (N,C,H+PT+PB,W+PL+PR).</summary>
    public void Pad(Tensor x, Tensor y, PadShape s, float value)
    {
        s.Validate();
        CheckShape(x, [s.N, s.C, s.H, s.W], nameof(x));
        CheckShape(y, [s.N, s.C, s.OH, s.OW], nameof(y));
        PadCore(x, y, s, value);
    }

    /// <summary>Pad backward (a crop). dy: (N,C,OH,OW), dx: (N,C,H,W).</summary>
    public void PadBackward(Tensor dy, Tensor dx, PadShape s)
    {
        s.Validate();
        CheckShape(dy, [s.N, s.C, s.OH, s.OW], nameof(dy));
        CheckShape(dx, [s.N, s.C, s.H, s.W], nameof(dx));
        PadBackwardCore(dy, dx, s);
    }

    /// <summary>Softmax over the last axis. x, y: (..., cols).</summary>
    public void Softmax(Tensor x, Tensor y)
    {
        int cols = CheckRows(x);
        CheckShape(y, x.Shape, nameof(y));
        SoftmaxCore(x, y, x.Length / cols, cols);
    }

    /// <summary>Softmax backward from its output y: <c>dx = y * (dy - sum(dy * y))</c> per row.</summary>
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx)
    {
        int cols = CheckRows(y);
        CheckShape(dy, y.Shape, nameof(dy));
        CheckShape(dx, y.Shape, nameof(dx));
        SoftmaxBackwardCore(y, dy, dx, y.Length / cols, cols);
    }

    /// <summary>
    /// Min-max normalization of each row of x (one saliency map per row, x viewed as (rows, length) with rows =
    /// Shape[0]): <c>y = (x - min) / (max - min)</c> per row, and 0 for a constant row. y has x's shape.
    /// </summary>
    public void MinMaxNormalizeRows(Tensor x, Tensor y)
    {
        CheckSame(x, y);
        if (x.Shape.Length < 1 || x.Shape[0] < 1 || x.Length == 0)
            throw new ArgumentException($"min-max normalization needs (rows, ...) with rows >= 1, got {x.ShapeText}");
        MinMaxNormalizeRowsCore(x, y, x.Shape[0], x.Length / x.Shape[0]);
    }

    /// <summary>Releases the device.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the device.</summary>
    protected virtual void Dispose(bool disposing) { }

    // ---- what a backend implements ----

    /// <summary>Allocates zero-filled storage for <paramref name="length"/> elements.</summary>
    protected abstract TensorStorage AllocateStorage(int length, ElementType type);

    /// <summary>Writes float data (length already checked).</summary>
    protected abstract void Write(TensorStorage storage, ReadOnlySpan<float> data);

    /// <summary>Reads <paramref name="length"/> floats.</summary>
    protected abstract float[] Read(TensorStorage storage, int length);

#pragma warning disable CS1591 // the Core methods are documented by their public counterparts above
    protected abstract void Conv2dCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s);

    /// <summary>Conv then ReLU in place; backends with a fused output stage override it.</summary>
    protected virtual void Conv2dReluCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        Conv2dCore(x, w, b, y, s);
        ReluCore(y, y);
    }

    /// <summary>Conv, then the residual added, then the activation, each as its own operation; backends with a fused
    /// output stage override it.</summary>
    protected virtual void Conv2dFusedCore(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        Conv2dCore(x, w, b, y, s);
        if (residual != null)
            AddCore(y, residual, y);
        switch (activation)
        {
            case EpilogueActivation.Relu:
                ReluCore(y, y);
                break;
            case EpilogueActivation.Clip:
                UnaryCore(new Clip(lo, hi), y, y);
                break;
            case EpilogueActivation.Silu:
            {
                using var sigmoid = Allocate(y.Shape);
                UnaryCore(new Sigmoid(), y, sigmoid);
                BinaryCore(y, sigmoid, y, BroadcastShape.Create(BinaryOp.Mul, y.Shape, y.Shape));
                break;
            }
        }
    }

    /// <summary>The conv into a temporary, then the pool's values; backends that pool as the conv writes override it.</summary>
    protected virtual void Conv2dMaxPoolCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s, EpilogueActivation activation,
        float lo, float hi, PoolShape p)
    {
        using var conv = Allocate([s.N, s.K, s.OH, s.OW]);
        Conv2dFusedCore(x, w, b, null, conv, s, activation, lo, hi);
        MaxPoolValuesCore(conv, y, p);
    }

    /// <summary>Min-max normalization on the host (read, normalize in double, write back); the GPU overrides it
    /// with a group reduction.</summary>
    protected virtual void MinMaxNormalizeRowsCore(Tensor x, Tensor y, int rows, int length)
    {
        var v = Read(x.Storage, x.Length);
        var r = new float[v.Length];
        for (int row = 0; row < rows; row++)
        {
            var span = v.AsSpan(row * length, length);
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            foreach (float f in span)
            {
                lo = Math.Min(lo, f);
                hi = Math.Max(hi, f);
            }
            double range = hi - lo;
            for (int j = 0; j < length; j++)
                r[row * length + j] = range > 0 ? (float)((span[j] - lo) / range) : 0f;
        }
        Write(y.Storage, r);
    }
    protected abstract void Conv2dBackwardDataCore(Tensor dy, Tensor w, Tensor dx, ConvShape s);
    protected abstract void Conv2dBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, ConvShape s);
    protected abstract void Conv2dBackwardBiasCore(Tensor dy, Tensor db, ConvShape s);
    protected abstract void ReluCore(Tensor x, Tensor y);
    protected abstract void ReluBackwardCore(Tensor x, Tensor dy, Tensor dx, ReluRule rule);
    protected abstract void MaxPoolCore(Tensor x, Tensor y, Tensor argmax, PoolShape s);
    protected abstract void MaxPoolBackwardCore(Tensor dy, Tensor argmax, Tensor dx, PoolShape s);

    /// <summary><see cref="MaxPoolValues"/>; by default <see cref="MaxPoolCore"/> with a routing thrown away.</summary>
    protected virtual void MaxPoolValuesCore(Tensor x, Tensor y, PoolShape s)
    {
        using var argmax = AllocateIndices(y.Shape);
        MaxPoolCore(x, y, argmax, s);
    }
    protected abstract void MaxPoolRouteCore(Tensor x, Tensor argmax, Tensor y, PoolShape s);
    protected abstract void AvgPoolCore(Tensor x, Tensor y, PoolShape s);
    protected abstract void AvgPoolBackwardCore(Tensor dy, Tensor dx, PoolShape s);
    protected abstract void GlobalAvgPoolCore(Tensor x, Tensor y, int plane);
    protected abstract void GlobalAvgPoolBackwardCore(Tensor dy, Tensor dx, int plane);
    protected abstract void GemmCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s);
    protected abstract void GemmBackwardDataCore(Tensor dy, Tensor w, Tensor dx, GemmShape s);
    protected abstract void GemmBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, GemmShape s);
    protected abstract void GemmBackwardBiasCore(Tensor dy, Tensor db, GemmShape s);
    protected abstract void AddCore(Tensor a, Tensor b, Tensor y);

    /// <summary>Add then ReLU in place; backends with a fused element-wise pass override it.</summary>
    protected virtual void AddReluCore(Tensor a, Tensor b, Tensor y)
    {
        AddCore(a, b, y);
        ReluCore(y, y);
    }
    protected abstract void CopyRangeCore(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length);
    protected abstract void ScaleCore(Tensor x, Tensor y, float scale);
    protected abstract void UnaryCore<TOp>(TOp op, Tensor x, Tensor y) where TOp : struct, IUnaryOp;
    protected abstract void UnaryBackwardCore<TOp>(TOp op, Tensor x, Tensor dy, Tensor dx) where TOp : struct, IUnaryOp;
    protected abstract void UnaryJetCore<TOp>(TOp op, Tensor x0, Tensor xs, Tensor ys) where TOp : struct, IUnaryOp;
    protected abstract void BinaryCore(Tensor a, Tensor b, Tensor y, BroadcastShape s);
    protected abstract void BinaryBackwardCore(Tensor a, Tensor b, Tensor dy, Tensor grad, BroadcastShape s, int operand);
    protected abstract void ChannelAffineCore(Tensor x, Tensor scale, Tensor shift, Tensor y, int channels, int inner);
    protected abstract void ChannelAffineBackwardDataCore(Tensor dy, Tensor scale, Tensor dx, int channels, int inner);
    protected abstract void ChannelAffineBackwardParamsCore(Tensor x, Tensor dy, Tensor dscale, Tensor dshift, int channels, int inner);
    protected abstract void ConcatCopyInCore(Tensor part, Tensor whole, ChannelSlice s);
    protected abstract void ConcatCopyOutCore(Tensor whole, Tensor part, ChannelSlice s);
    protected abstract void PadCore(Tensor x, Tensor y, PadShape s, float value);
    protected abstract void PadBackwardCore(Tensor dy, Tensor dx, PadShape s);
    protected abstract void SoftmaxCore(Tensor x, Tensor y, int rows, int cols);
    protected abstract void SoftmaxBackwardCore(Tensor y, Tensor dy, Tensor dx, int rows, int cols);
#pragma warning restore CS1591

    // ---- checks ----

    private static int Count(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return checked((int)TensorShape.CheckedLength(shape));
    }

    private void Check(Tensor t, ElementType type, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        ObjectDisposedException.ThrowIf(t.IsDisposed, t);
        if (!ReferenceEquals(t.Backend, this))
            throw new ArgumentException($"{name} lives on backend '{t.Backend.Name}', not '{Name}'");
        if (t.Type != type)
            throw new ArgumentException($"{name} must be {type}, is {t.Type}");
    }

    private void CheckShape(Tensor t, int[] shape, string name, ElementType type = ElementType.Float32)
    {
        Check(t, type, name);
        if (!TensorShape.Equal(t.Shape, shape))
            throw new ArgumentException($"{name} has shape {t.ShapeText}, expected {TensorShape.Format(shape)}");
    }

    private void CheckLength(Tensor t, long length, string name)
    {
        Check(t, ElementType.Float32, name);
        if (t.Length != length)
            throw new ArgumentException($"{name} has {t.Length} elements ({t.ShapeText}), expected {length}");
    }

    private void CheckSame(Tensor a, Tensor b)
    {
        Check(a, ElementType.Float32, "a");
        Check(b, ElementType.Float32, "b");
        if (a.Length != b.Length)
            throw new ArgumentException($"operand lengths differ: {a.ShapeText} and {b.ShapeText}");
    }

    private BroadcastShape CheckBinary(BinaryOp op, Tensor a, Tensor b)
    {
        Check(a, ElementType.Float32, nameof(a));
        Check(b, ElementType.Float32, nameof(b));
        if (!Enum.IsDefined(op))
            throw new ArgumentOutOfRangeException(nameof(op), op, "unknown binary operator");
        if (a.Shape.Length is < 1 or > 4 || b.Shape.Length is < 1 or > 4)
            throw new ArgumentException($"broadcasting takes ranks 1 to 4, got {a.ShapeText} and {b.ShapeText}");
        return BroadcastShape.Create(op, a.Shape, b.Shape);
    }

    private int CheckAffine(Tensor x, Tensor scale)
    {
        Check(x, ElementType.Float32, nameof(x));
        if (x.Shape.Length < 2 || x.Length == 0)
            throw new ArgumentException($"per-channel affine needs (N, C, ...), got {x.ShapeText}");
        int c = x.Shape[1];
        CheckLength(scale, c, nameof(scale));
        return c;
    }

    private List<(Tensor Part, ChannelSlice Slice)> ConcatSlices(IReadOnlyList<Tensor> parts, Tensor whole)
    {
        ArgumentNullException.ThrowIfNull(parts);
        Check(whole, ElementType.Float32, nameof(whole));
        if (parts.Count == 0 || whole.Shape.Length < 2)
            throw new ArgumentException($"concat needs at least one part and an (N, C, ...) result, got {parts.Count} and {whole.ShapeText}");
        var r = new List<(Tensor, ChannelSlice)>(parts.Count);
        int offset = 0;
        int n = whole.Shape[0], inner = whole.Length / Math.Max(1, n * whole.Shape[1]);
        foreach (var p in parts)
        {
            Check(p, ElementType.Float32, "part");
            if (p.Shape.Length != whole.Shape.Length || p.Shape[0] != n
                || !p.Shape.AsSpan(2).SequenceEqual(whole.Shape.AsSpan(2)))
                throw new ArgumentException($"concat part {p.ShapeText} does not match {whole.ShapeText} outside axis 1");
            r.Add((p, new ChannelSlice(n, p.Shape[1], inner, whole.Shape[1], offset)));
            offset += p.Shape[1];
        }
        if (offset != whole.Shape[1])
            throw new ArgumentException($"concat parts hold {offset} channels, the result {whole.Shape[1]}");
        return r;
    }

    private int CheckRows(Tensor x)
    {
        Check(x, ElementType.Float32, nameof(x));
        if (x.Shape.Length < 1 || x.Shape[^1] < 1)
            throw new ArgumentException($"softmax needs a non-empty last axis, got {x.ShapeText}");
        return x.Shape[^1];
    }

    private static void CheckAvg(PoolShape s)
    {
        s.Validate();
        if (s.DilationH != 1 || s.DilationW != 1)
            throw new ArgumentException("average pooling does not take dilation");
    }

    private void CheckGap(Tensor x, Tensor y)
    {
        Check(x, ElementType.Float32, "x");
        if (x.Shape.Length != 4)
            throw new ArgumentException($"global average pool needs (N,C,H,W), got {x.ShapeText}");
        CheckShape(y, [x.Shape[0], x.Shape[1], 1, 1], "y");
    }
}
