using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Host memory for one tensor of the managed CPU backend: a pinned array (the kernels take raw pointers) in
/// logical row-major order, so reshaped views and the ILGPU/reference backends agree on every index.
/// <see cref="Version"/> counts writes; packed forms of weights derived from this storage are cached against it.
/// Large float arrays come from a process-wide pool and go back to it on dispose, so a forward pass does not
/// allocate (and page-fault in) fresh memory for every activation; a pooled array is zeroed lazily, on its first
/// read or partial write, and not at all when an operation overwrites the whole tensor (<see cref="OverwritePtr"/>).
/// </summary>
internal sealed class CpuStorage : TensorStorage
{
    /// <summary>Arrays shorter than this are allocated zeroed by the GC and not pooled.</summary>
    private const int PoolMin = 1 << 14;

    private static readonly Dictionary<int, Stack<float[]>> s_pool = [];
    private static long s_pooledBytes;
    private static readonly long s_poolCap = Math.Min(2L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    private readonly Dictionary<string, (long Version, float[] Data)> _derived = new(StringComparer.Ordinal);
    private readonly float[]? _floats;
    private bool _zeroPending, _released;

    public CpuStorage(int length, ElementType type)
    {
        int n = Math.Max(length, 1);
        if (type == ElementType.Int32)
        {
            Ints = n >= PoolMin ? TakeInts(n) : null;
            if (Ints != null)
                Ints.AsSpan().Clear();
            else
                Ints = GC.AllocateArray<int>(n, pinned: true);
        }
        else if (n < PoolMin)
        {
            _floats = GC.AllocateArray<float>(n, pinned: true);
        }
        else
        {
            _floats = Take(n) ?? GC.AllocateUninitializedArray<float>(n, pinned: true);
            _zeroPending = true;
        }
    }

    /// <summary>Float data (null for an int32 tensor), zeroed first if it has not been written yet.</summary>
    public float[]? Floats
    {
        get
        {
            EnsureZeroed();
            return _floats;
        }
    }

    /// <summary>Int32 data (null for a float tensor).</summary>
    public int[]? Ints { get; }

    /// <summary>Bumped by every operation that writes this storage.</summary>
    public long Version { get; private set; }

    /// <summary>Marks the contents as changed (drops cached packed forms lazily).</summary>
    public void Touch()
    {
        lock (_derived)
            Version++;
    }

    /// <summary>
    /// A form derived from the current contents (packed or flipped weights), built once per version and key.
    /// </summary>
    public float[] Derived(string key, Func<float[]> build)
    {
        lock (_derived)
        {
            if (_derived.TryGetValue(key, out var e) && e.Version == Version)
                return e.Data;
            var data = build();
            _derived[key] = (Version, data);
            return data;
        }
    }

    /// <summary>Pointer to the float data (the array is pinned for its lifetime), zeroed first if unwritten.</summary>
    public unsafe float* FloatPtr
    {
        get
        {
            EnsureZeroed();
            return Ptr;
        }
    }

    /// <summary>Pointer to the float data for an operation that writes every element before reading any.</summary>
    public unsafe float* OverwritePtr
    {
        get
        {
            _zeroPending = false;
            return Ptr;
        }
    }

    /// <summary>Overwrites the first <paramref name="data"/>.Length elements (a full write needs no zeroing).</summary>
    public void Write(ReadOnlySpan<float> data)
    {
        if (data.Length < _floats!.Length)
            EnsureZeroed();
        _zeroPending = false;
        data.CopyTo(_floats);
    }

    private unsafe float* Ptr => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_floats!));

    /// <summary>Pointer to the int data.</summary>
    public unsafe int* IntPtr => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Ints!));

    private void EnsureZeroed()
    {
        if (!_zeroPending)
            return;
        _zeroPending = false;
        _floats.AsSpan().Clear();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (!_released && _floats != null && _floats.Length >= PoolMin)
        {
            _released = true;
            Give(_floats);
        }
        else if (!_released && Ints != null && Ints.Length >= PoolMin)
        {
            _released = true;
            GiveInts(Ints);
        }
        base.Dispose(disposing);
    }

    private static readonly Dictionary<int, Stack<int[]>> s_intPool = [];

    private static int[]? TakeInts(int n)
    {
        lock (s_intPool)
            return s_intPool.TryGetValue(n, out var stack) && stack.Count > 0 ? stack.Pop() : null;
    }

    private static void GiveInts(int[] a)
    {
        lock (s_intPool)
        {
            if (!s_intPool.TryGetValue(a.Length, out var stack))
                s_intPool[a.Length] = stack = new Stack<int[]>();
            if (stack.Count < 4)
                stack.Push(a);
        }
    }

    private static float[]? Take(int n)
    {
        lock (s_pool)
        {
            if (!s_pool.TryGetValue(n, out var stack) || stack.Count == 0)
                return null;
            s_pooledBytes -= (long)n * sizeof(float);
            return stack.Pop();
        }
    }

    private static void Give(float[] a)
    {
        lock (s_pool)
        {
            long bytes = (long)a.Length * sizeof(float);
            if (s_pooledBytes + bytes > s_poolCap)
                return;
            if (!s_pool.TryGetValue(a.Length, out var stack))
                s_pool[a.Length] = stack = new Stack<float[]>();
            stack.Push(a);
            s_pooledBytes += bytes;
        }
    }
}
