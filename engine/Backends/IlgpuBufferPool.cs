using ILGPU;
using ILGPU.Runtime;

namespace CamEngine.Backends;

/// <summary>
/// A pooling allocator for one accelerator: a freed buffer goes back to a free list keyed by its element type and
/// length, and the next allocation of that size takes it instead of asking the driver (a CUDA allocation
/// synchronizes the device and costs far more than a kernel). The forward and reverse passes of a CNN allocate the
/// same sizes batch after batch, so after the first batch they allocate nothing new. The pool holds at most
/// <see cref="CapacityBytes"/> of free buffers (beyond that a freed buffer is released), and <see cref="Trim"/>
/// releases them all, which the backend does before it reports that the device is out of memory.
/// Thread-safe: tensors may be disposed from any thread.
/// </summary>
internal sealed class IlgpuBufferPool : IDisposable
{
    private readonly Dictionary<(Type Type, long Length), Stack<MemoryBuffer>> _free = [];
    private readonly Lock _lock = new();
    private long _freeBytes;
    private bool _disposed;

    /// <summary>A pool that keeps at most <paramref name="capacityBytes"/> of free buffers.</summary>
    public IlgpuBufferPool(long capacityBytes) => CapacityBytes = capacityBytes;

    /// <summary>The most bytes of free buffers the pool keeps.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes held in free buffers now.</summary>
    public long FreeBytes
    {
        get
        {
            lock (_lock)
                return _freeBytes;
        }
    }

    /// <summary>Allocations served from the pool.</summary>
    public long Reused { get; private set; }

    /// <summary>Allocations that went to the driver.</summary>
    public long Fresh { get; private set; }

    /// <summary>A buffer of <paramref name="length"/> elements, reused when one is free, else from
    /// <paramref name="allocate"/>; the caller zeroes it.</summary>
    public MemoryBuffer1D<T, Stride1D.Dense> Rent<T>(long length, Func<long, MemoryBuffer1D<T, Stride1D.Dense>> allocate)
        where T : unmanaged
    {
        lock (_lock)
        {
            if (_free.TryGetValue((typeof(T), length), out var stack) && stack.Count > 0)
            {
                var b = (MemoryBuffer1D<T, Stride1D.Dense>)stack.Pop();
                _freeBytes -= b.LengthInBytes;
                Reused++;
                return b;
            }
            Fresh++;
        }
        return allocate(length);
    }

    /// <summary>Takes <paramref name="buffer"/> back for reuse, or releases it when the pool is full or disposed.</summary>
    public void Return<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer) where T : unmanaged
    {
        lock (_lock)
        {
            if (!_disposed && _freeBytes + buffer.LengthInBytes <= CapacityBytes)
            {
                var key = (typeof(T), buffer.Length);
                if (!_free.TryGetValue(key, out var stack))
                    _free[key] = stack = new Stack<MemoryBuffer>();
                stack.Push(buffer);
                _freeBytes += buffer.LengthInBytes;
                return;
            }
        }
        buffer.Dispose();
    }

    /// <summary>Releases every free buffer to the driver.</summary>
    public void Trim()
    {
        List<MemoryBuffer> all;
        lock (_lock)
        {
            all = _free.Values.SelectMany(s => s).ToList();
            _free.Clear();
            _freeBytes = 0;
        }
        foreach (var b in all)
            b.Dispose();
    }

    /// <summary>Releases the free buffers; buffers returned later are released at once.</summary>
    public void Dispose()
    {
        lock (_lock)
            _disposed = true;
        Trim();
    }
}
