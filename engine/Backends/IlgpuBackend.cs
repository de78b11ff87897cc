using CamEngine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace CamEngine.Backends;

/// <summary>
/// Runs the kernels in <c>kernels/</c> through ILGPU on CUDA, OpenCL or ILGPU's CPU accelerator.
/// Kernels compile on first use (each 4–150 ms), so a model compiles only the kernels it needs.
/// On CUDA and OpenCL the conv, dense and reduction operations run the tiled kernels (shared-memory block tiles,
/// register micro-tiles, fused epilogues, group and warp reductions; <c>IlgpuBackend.Tiled.cs</c>); every other
/// operation runs its one-thread-per-output kernel. Work is queued on one stream: a forward or reverse pass
/// synchronizes only when the caller reads a result back (<see cref="Backend.Download"/>). Memory comes from an
/// <see cref="IlgpuBufferPool"/>.
/// The CPU accelerator is configured as DESIGN.md section 8 measured best: warps of 2 simulated threads,
/// one multiprocessor per core, and implicitly grouped launches of group size 1, with the simple kernels (barriers
/// cost milliseconds there). <see cref="CreateTiledCpu"/> opens it shaped like a GPU instead, to test the tiled kernels.
/// </summary>
internal sealed partial class IlgpuBackend : Backend
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly bool _isCpu;
    private readonly bool _tiled;
    private readonly IlgpuBufferPool _pool;
    private readonly Dictionary<Delegate, Delegate> _kernels = [];
    private readonly Lock _kernelLock = new();

    private IlgpuBackend(Context context, Accelerator accelerator, string name, bool tiled)
    {
        _context = context;
        _accelerator = accelerator;
        _isCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        _tiled = tiled;
        Name = name;
        DeviceDescription = _isCpu
            ? tiled
                ? $"ILGPU CPU accelerator shaped as a GPU ({accelerator.MaxNumThreadsPerGroup} threads per group, warps of {accelerator.WarpSize}, tiled kernels)"
                : $"ILGPU CPU accelerator ({Environment.ProcessorCount} cores)"
            : $"{accelerator.AcceleratorType} {accelerator.Name} ({accelerator.MemorySize / (1 << 20)} MiB)";
        // A quarter of the device's memory may sit in free buffers (on the CPU accelerator: of the host budget).
        _pool = new IlgpuBufferPool(_isCpu ? base.MemoryBudgetBytes / 4 : accelerator.MemorySize / 4);
    }

    /// <summary>True when the conv, dense and reduction operations run the tiled kernels.</summary>
    public bool UsesTiledKernels => _tiled;

    /// <summary>The pooling allocator (for diagnostics and tests).</summary>
    internal IlgpuBufferPool Pool => _pool;

    /// <summary>
    /// ILGPU's CPU accelerator shaped like a GPU, 256 threads per group in warps of 32 (one multiprocessor), running
    /// the tiled kernels with their real group sizes and barriers: the correctness check of those kernels on a
    /// machine without a GPU. Barriers are slow there (milliseconds each): tiny shapes only.
    /// </summary>
    public static IlgpuBackend CreateTiledCpu()
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(32, 8, 1)).EnableAlgorithms().Math(MathMode.Default));
        try
        {
            return new IlgpuBackend(context, context.GetCPUDevice(0).CreateAccelerator(context), "ilgpu-cpu-tiled", tiled: true);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public override string Name { get; }

    /// <inheritdoc/>
    public override string DeviceDescription { get; }

    /// <summary>The ILGPU accelerator (for benchmarks and diagnostics).</summary>
    public Accelerator Accelerator => _accelerator;

    /// <summary>The CPU device configuration used for ILGPU's CPU accelerator.</summary>
    public static CPUDevice CpuDevice() => new(2, 1, Environment.ProcessorCount);

    /// <summary>Creates a context that sees CUDA, OpenCL and the configured CPU device.</summary>
    internal static Context CreateContext(bool gpus) =>
        Context.Create(b =>
        {
            if (gpus)
                b.Cuda().OpenCL();
            b.CPU(CpuDevice()).EnableAlgorithms().Math(MathMode.Default);
        });

    /// <summary>
    /// Opens an ILGPU backend of the given kind: <c>cuda</c>, <c>opencl</c>, <c>ilgpu-cpu</c>, or <c>auto</c>
    /// (CUDA, then OpenCL, then the CPU accelerator). Returns null when the kind has no device here.
    /// </summary>
    public static IlgpuBackend? TryCreate(string kind)
    {
        bool cpuOnly = kind == "ilgpu-cpu";
        var context = CreateContext(!cpuOnly);
        try
        {
            Device? device = kind switch
            {
                "cuda" => First(context, AcceleratorType.Cuda),
                "opencl" => First(context, AcceleratorType.OpenCL),
                "ilgpu-cpu" => First(context, AcceleratorType.CPU),
                "auto" => First(context, AcceleratorType.Cuda) ?? First(context, AcceleratorType.OpenCL)
                          ?? First(context, AcceleratorType.CPU),
                _ => throw new ArgumentException($"unknown ILGPU device kind '{kind}'"),
            };
            if (device == null)
            {
                context.Dispose();
                return null;
            }
            var accelerator = device.CreateAccelerator(context);
            string name = accelerator.AcceleratorType switch
            {
                AcceleratorType.Cuda => "cuda",
                AcceleratorType.OpenCL => "opencl",
                _ => "ilgpu-cpu",
            };
            return new IlgpuBackend(context, accelerator, name, tiled: accelerator.AcceleratorType != AcceleratorType.CPU);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>CUDA, then OpenCL; null when this machine has neither.</summary>
    public static IlgpuBackend? TryCreateGpu() => TryCreate("cuda") ?? TryCreate("opencl");

    private static Device? First(Context context, AcceleratorType type)
    {
        foreach (var d in context.Devices)
        {
            if (d.AcceleratorType == type)
                return d;
        }
        return null;
    }

    /// <summary>Every device ILGPU sees on this machine, one line each.</summary>
    public static IReadOnlyList<string> ListDevices() =>
        Accelerators().Select(d => d.Kind == "ilgpu-cpu"
            ? $"CPU: ILGPU CPU accelerator ({Environment.ProcessorCount} cores, host memory)"
            : $"{(d.Kind == "cuda" ? "Cuda" : "OpenCL")}: {d.Name} ({d.MemoryBytes / (1 << 20)} MiB)").ToList();

    /// <summary>Every device ILGPU sees, in its order, with the device kind that opens it (<c>cuda</c>,
    /// <c>opencl</c> or <c>ilgpu-cpu</c>) and its memory (host memory for the CPU accelerator).</summary>
    internal static IReadOnlyList<(string Kind, string Name, long MemoryBytes)> Accelerators()
    {
        using var context = CreateContext(true);
        return context.Devices.Select(d => d.AcceleratorType switch
        {
            AcceleratorType.Cuda => ("cuda", d.Name, d.MemorySize),
            AcceleratorType.OpenCL => ("opencl", d.Name, d.MemorySize),
            _ => ("ilgpu-cpu", $"ILGPU CPU accelerator ({Environment.ProcessorCount} cores)", Devices.HostMemoryBytes),
        }).ToList();
    }

    /// <summary>A tensor's buffer; disposing it hands the buffer back to the pool.</summary>
    private sealed class Storage<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, IlgpuBufferPool pool) : TensorStorage
        where T : unmanaged
    {
        public MemoryBuffer1D<T, Stride1D.Dense> Buffer { get; } = buffer;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                pool.Return(Buffer);
            base.Dispose(disposing);
        }
    }

    private static ArrayView<float> F(Tensor t) => ((Storage<float>)t.Storage).Buffer.View;

    private static ArrayView<int> I(Tensor t) => ((Storage<int>)t.Storage).Buffer.View;

    /// <summary>A 1-element stand-in for an absent optional operand (the kernel ignores it).</summary>
    private static ArrayView<float> F(Tensor? t, Tensor fallback) => t == null ? F(fallback) : F(t);

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(int length, ElementType type)
    {
        int n = Math.Max(length, 1);
        try
        {
            return Rent(n, type);
        }
        catch (Exception e) when (e is OutOfMemoryException or AcceleratorException)
        {
            // The pool's free buffers may be what fills the device: release them and try once more.
            _pool.Trim();
            try
            {
                return Rent(n, type);
            }
            catch (Exception again) when (again is OutOfMemoryException or AcceleratorException)
            {
                throw new DeviceMemoryException(
                    $"out of memory on {DeviceDescription} allocating {length} {type} elements ({(long)length * 4 / (1 << 20)} MiB)", again);
            }
        }
    }

    /// <summary>A zeroed buffer from the pool (the zeroing is queued on the stream like a kernel).</summary>
    private TensorStorage Rent(int n, ElementType type)
    {
        if (type == ElementType.Int32)
        {
            var b = _pool.Rent(n, l => _accelerator.Allocate1D<int>(l));
            b.MemSetToZero();
            return new Storage<int>(b, _pool);
        }
        var f = _pool.Rent(n, l => _accelerator.Allocate1D<float>(l));
        f.MemSetToZero();
        return new Storage<float>(f, _pool);
    }

    /// <summary>Host-to-device copies so far (uploads): a forward or reverse pass makes none.</summary>
    internal long HostWrites => Interlocked.Read(ref _hostWrites);

    /// <summary>Device-to-host copies so far (downloads), each of which waits for the queued work.</summary>
    internal long HostReads => Interlocked.Read(ref _hostReads);

    /// <summary>Explicit <see cref="Synchronize"/> calls so far.</summary>
    internal long Synchronizations => Interlocked.Read(ref _synchronizations);

    /// <summary>Bytes copied host-to-device so far.</summary>
    internal long HostWriteBytes => Interlocked.Read(ref _hostWriteBytes);

    /// <summary>Bytes copied device-to-host so far.</summary>
    internal long HostReadBytes => Interlocked.Read(ref _hostReadBytes);

    private long _hostWrites, _hostReads, _synchronizations, _hostWriteBytes, _hostReadBytes;

    /// <inheritdoc/>
    protected override void Write(TensorStorage storage, ReadOnlySpan<float> data)
    {
        Interlocked.Increment(ref _hostWrites);
        Interlocked.Add(ref _hostWriteBytes, 4L * data.Length);
        var buffer = ((Storage<float>)storage).Buffer;
        buffer.View.SubView(0, data.Length).CopyFromCPU(data.ToArray());
    }

    /// <inheritdoc/>
    protected override float[] Read(TensorStorage storage, int length)
    {
        Interlocked.Increment(ref _hostReads);
        Interlocked.Add(ref _hostReadBytes, 4L * length);
        var buffer = ((Storage<float>)storage).Buffer;
        var r = new float[length];
        if (length > 0)
            buffer.View.SubView(0, length).CopyToCPU(r);
        return r;
    }

    /// <inheritdoc/>
    public override void Synchronize()
    {
        Interlocked.Increment(ref _synchronizations);
        _accelerator.Synchronize();
    }

    /// <summary>On a GPU: 60% of the memory free now (the driver's count, plus what this backend's pool holds free
    /// and would hand out first), so batches are sized to what is left beside other processes; the host default for
    /// ILGPU's CPU accelerator.</summary>
    public override long MemoryBudgetBytes => _isCpu ? base.MemoryBudgetBytes : (FreeDeviceBytes() + _pool.FreeBytes) / 10 * 6;

    /// <summary>Free device memory as the driver reports it (CUDA), else the device's total memory.</summary>
    private long FreeDeviceBytes()
    {
        if (_accelerator is CudaAccelerator cuda)
        {
            try
            {
                cuda.Bind();
                if (CudaAPI.CurrentAPI.GetMemoryInfo(out long free, out long _) == CudaError.CUDA_SUCCESS)
                    return free;
            }
            catch (Exception e) when (e is CudaException or DllNotFoundException or EntryPointNotFoundException)
            {
                // Fall back to the total below.
            }
        }
        return _accelerator.MemorySize;
    }

    // ---- kernel loading: one compiled launcher per kernel method, on first use ----

    /// <summary>Group size of the one-thread-per-output kernels on the CPU accelerator: 1 as measured best, or a
    /// whole group on the GPU-shaped device (whose every group, however small, wakes all its simulated threads).</summary>
    private int CpuGroupSize => _tiled ? _accelerator.MaxNumThreadsPerGroup : 1;

    private TLauncher Get<TLauncher>(Delegate kernel, Func<TLauncher> load) where TLauncher : Delegate
    {
        lock (_kernelLock)
        {
            if (_kernels.TryGetValue(kernel, out var d))
                return (TLauncher)d;
            var launcher = load();
            _kernels[kernel] = launcher;
            return launcher;
        }
    }

    private void Launch<T1, T2>(Action<Index1D, T1, T2> k, int extent, T1 a, T2 b)
        where T1 : struct where T2 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b);
    }

    private void Launch<T1, T2, T3>(Action<Index1D, T1, T2, T3> k, int extent, T1 a, T2 b, T3 c)
        where T1 : struct where T2 : struct where T3 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b, c);
    }

    private void Launch<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> k, int extent, T1 a, T2 b, T3 c, T4 d)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b, c, d);
    }

    private void Launch<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> k, int extent, T1 a, T2 b, T3 c, T4 d, T5 e)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b, c, d, e);
    }

    private void Launch<T1, T2, T3, T4, T5, T6, T7>(
        Action<Index1D, T1, T2, T3, T4, T5, T6, T7> k, int extent, T1 a, T2 b, T3 c, T4 d, T5 e, T6 f, T7 g)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b, c, d, e, f, g);
    }

    private void Launch<T1, T2, T3, T4, T5, T6>(
        Action<Index1D, T1, T2, T3, T4, T5, T6> k, int extent, T1 a, T2 b, T3 c, T4 d, T5 e, T6 f)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (extent == 0)
            return;
        var l = Get(k, () => _isCpu ? _accelerator.LoadImplicitlyGroupedKernel(k, CpuGroupSize) : _accelerator.LoadAutoGroupedKernel(k));
        l(_accelerator.DefaultStream, extent, a, b, c, d, e, f);
    }

    // ---- operations ----

    /// <inheritdoc/>
    protected override void Conv2dCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        if (_tiled)
            TiledConv(x, w, b, null, y, s, EpilogueActivation.None, 0f, 0f);
        else
            Launch(Kernels.Conv2d.Forward, y.Length, F(x), F(w), F(b, w), F(y), s, b == null ? 0 : 1);
    }

    /// <inheritdoc/>
    protected override void Conv2dReluCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s)
    {
        if (_tiled)
            TiledConv(x, w, b, null, y, s, EpilogueActivation.Relu, 0f, 0f);
        else
            base.Conv2dReluCore(x, w, b, y, s);
    }

    /// <inheritdoc/>
    protected override void Conv2dFusedCore(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        if (_tiled)
            TiledConv(x, w, b, residual, y, s, activation, lo, hi);
        else
            base.Conv2dFusedCore(x, w, b, residual, y, s, activation, lo, hi);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardDataCore(Tensor dy, Tensor w, Tensor dx, ConvShape s)
    {
        // Depthwise: each input pixel gathers K/G * KH * KW products, too few for a tile; the gather kernel suits it.
        if (_tiled && s.CPerGroup > 1)
            TiledConvBackwardData(dy, w, dx, s);
        else
            Launch(Kernels.Conv2d.BackwardData, dx.Length, F(dy), F(w), F(dx), s);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        if (_tiled)
            TiledConvBackwardWeights(x, dy, dw, s);
        else
            Launch(Kernels.Conv2d.BackwardWeights, dw.Length, F(x), F(dy), F(dw), s);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardBiasCore(Tensor dy, Tensor db, ConvShape s)
    {
        if (_tiled)
            ChannelSum(dy, db, s.N, s.K, s.OH * s.OW, 1f);
        else
            Launch(Kernels.Conv2d.BackwardBias, db.Length, F(dy), F(db), s);
    }

    /// <inheritdoc/>
    protected override void ReluCore(Tensor x, Tensor y) => Launch(Kernels.Relu.Forward, y.Length, F(x), F(y));

    /// <inheritdoc/>
    protected override void ReluBackwardCore(Tensor x, Tensor dy, Tensor dx, ReluRule rule) =>
        Launch(Kernels.Relu.Backward, dx.Length, F(x), F(dy), F(dx), (int)rule);

    /// <inheritdoc/>
    protected override void MaxPoolCore(Tensor x, Tensor y, Tensor argmax, PoolShape s) =>
        Launch(Kernels.Pooling.MaxForward, y.Length, F(x), F(y), I(argmax), s);

    /// <inheritdoc/>
    protected override void MaxPoolBackwardCore(Tensor dy, Tensor argmax, Tensor dx, PoolShape s) =>
        Launch(Kernels.Pooling.MaxBackward, dx.Length, F(dy), I(argmax), F(dx), s);

    /// <inheritdoc/>
    protected override void MaxPoolRouteCore(Tensor x, Tensor argmax, Tensor y, PoolShape s) =>
        Launch(Kernels.Pooling.MaxRoute, y.Length, F(x), I(argmax), F(y), s);

    /// <inheritdoc/>
    protected override void AvgPoolCore(Tensor x, Tensor y, PoolShape s) =>
        Launch(Kernels.Pooling.AvgForward, y.Length, F(x), F(y), s);

    /// <inheritdoc/>
    protected override void AvgPoolBackwardCore(Tensor dy, Tensor dx, PoolShape s) =>
        Launch(Kernels.Pooling.AvgBackward, dx.Length, F(dy), F(dx), s);

    /// <inheritdoc/>
    protected override void GlobalAvgPoolCore(Tensor x, Tensor y, int plane)
    {
        if (_tiled)
            RowMeans(x, y, y.Length, plane);
        else
            Launch(Kernels.GlobalAvgPool.Forward, y.Length, F(x), F(y), plane);
    }

    /// <inheritdoc/>
    protected override void GlobalAvgPoolBackwardCore(Tensor dy, Tensor dx, int plane) =>
        Launch(Kernels.GlobalAvgPool.Backward, dx.Length, F(dy), F(dx), plane);

    /// <inheritdoc/>
    protected override void GemmCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        if (_tiled)
            Tiled(new Kernels.Gemm.TiledForward(F(x), F(w), F(b, w), F(y), F(y), s, Epilogue(b != null, false, EpilogueActivation.None, 0f, 0f)));
        else
            Launch(Kernels.Gemm.Forward, y.Length, F(x), F(w), F(b, w), F(y), s, b == null ? 0 : 1);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardDataCore(Tensor dy, Tensor w, Tensor dx, GemmShape s)
    {
        if (_tiled)
            Tiled(new Kernels.Gemm.TiledBackwardData(F(dy), F(w), F(dx), s));
        else
            Launch(Kernels.Gemm.BackwardData, dx.Length, F(dy), F(w), F(dx), s);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, GemmShape s)
    {
        if (_tiled)
            Tiled(new Kernels.Gemm.TiledBackwardWeights(F(x), F(dy), F(dw), s));
        else
            Launch(Kernels.Gemm.BackwardWeights, dw.Length, F(x), F(dy), F(dw), s);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardBiasCore(Tensor dy, Tensor db, GemmShape s)
    {
        if (_tiled)
            ChannelSum(dy, db, s.M, s.N, 1, s.Beta);
        else
            Launch(Kernels.Gemm.BackwardBias, db.Length, F(dy), F(db), s);
    }

    /// <inheritdoc/>
    protected override void AddCore(Tensor a, Tensor b, Tensor y) =>
        Launch(Kernels.Elementwise.Add, y.Length, F(a), F(b), F(y));

    /// <inheritdoc/>
    protected override void CopyRangeCore(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) =>
        F(src).SubView(srcOffset, length).CopyTo(F(dst).SubView(dstOffset, length));

    /// <inheritdoc/>
    protected override void ScaleCore(Tensor x, Tensor y, float scale) =>
        Launch(Kernels.Elementwise.Scale, y.Length, F(x), F(y), scale);

    /// <inheritdoc/>
    protected override void UnaryCore<TOp>(TOp op, Tensor x, Tensor y) =>
        Launch<ArrayView<float>, ArrayView<float>, TOp>(Kernels.Unary.Forward, y.Length, F(x), F(y), op);

    /// <inheritdoc/>
    protected override void UnaryBackwardCore<TOp>(TOp op, Tensor x, Tensor dy, Tensor dx) =>
        Launch<ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>(Kernels.Unary.Backward, dx.Length, F(x), F(dy), F(dx), op);

    /// <inheritdoc/>
    protected override void UnaryJetCore<TOp>(TOp op, Tensor x0, Tensor xs, Tensor ys) =>
        Launch<ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp, int>(
            Kernels.Unary.Jet, x0.Length, F(x0), F(xs), F(ys), op, x0.Length);

    /// <inheritdoc/>
    protected override void BinaryCore(Tensor a, Tensor b, Tensor y, BroadcastShape s) =>
        Launch(Kernels.Broadcast.Forward, y.Length, F(a), F(b), F(y), s);

    /// <inheritdoc/>
    protected override void BinaryBackwardCore(Tensor a, Tensor b, Tensor dy, Tensor grad, BroadcastShape s, int operand) =>
        Launch(Kernels.Broadcast.Backward, grad.Length, F(a), F(b), F(dy), F(grad), s, operand);

    /// <inheritdoc/>
    protected override void ChannelAffineCore(Tensor x, Tensor scale, Tensor shift, Tensor y, int channels, int inner) =>
        Launch(Kernels.ChannelAffine.Forward, y.Length, F(x), F(scale), F(shift), F(y), channels, inner);

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardDataCore(Tensor dy, Tensor scale, Tensor dx, int channels, int inner) =>
        Launch(Kernels.ChannelAffine.BackwardData, dx.Length, F(dy), F(scale), F(dx), channels, inner);

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardParamsCore(Tensor x, Tensor dy, Tensor dscale, Tensor dshift, int channels, int inner) =>
        Launch(Kernels.ChannelAffine.BackwardParams, channels, F(x), F(dy), F(dscale), F(dshift), channels, inner, x.Shape[0]);

    /// <inheritdoc/>
    protected override void ConcatCopyInCore(Tensor part, Tensor whole, ChannelSlice s) =>
        Launch(Kernels.Concat.CopyIn, part.Length, F(part), F(whole), s);

    /// <inheritdoc/>
    protected override void ConcatCopyOutCore(Tensor whole, Tensor part, ChannelSlice s) =>
        Launch(Kernels.Concat.CopyOut, part.Length, F(whole), F(part), s);

    /// <inheritdoc/>
    protected override void PadCore(Tensor x, Tensor y, PadShape s, float value) =>
        Launch(Kernels.Pad.Forward, y.Length, F(x), F(y), s, value);

    /// <inheritdoc/>
    protected override void PadBackwardCore(Tensor dy, Tensor dx, PadShape s) =>
        Launch(Kernels.Pad.Backward, dx.Length, F(dy), F(dx), s);

    /// <inheritdoc/>
    protected override void SoftmaxCore(Tensor x, Tensor y, int rows, int cols) =>
        Launch(Kernels.Softmax.Forward, rows, F(x), F(y), cols);

    /// <inheritdoc/>
    protected override void SoftmaxBackwardCore(Tensor y, Tensor dy, Tensor dx, int rows, int cols) =>
        Launch(Kernels.Softmax.Backward, rows, F(y), F(dy), F(dx), cols);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _pool.Dispose();
            _accelerator.Dispose();
            _context.Dispose();
        }
        base.Dispose(disposing);
    }
}
