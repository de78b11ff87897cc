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

    private static long s_derivedBytes, s_liveBytes, s_clock, s_builds, s_buildTicks;

    /// <summary>Derived forms built so far and the milliseconds spent building them (diagnostics).</summary>
    internal static (long Count, double Ms) DerivedBuilds =>
        (Interlocked.Read(ref s_builds), Interlocked.Read(ref s_buildTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency);

    /// <summary>Every storage that holds derived forms (weakly: a storage the program dropped is not kept alive).</summary>
    private static readonly ConditionalWeakTable<CpuStorage, object?> s_holders = [];

    private static readonly Lock s_holdersLock = new();

    /// <summary>Bytes of derived (packed) weight forms held by every storage.</summary>
    internal static long DerivedBytes => Interlocked.Read(ref s_derivedBytes);

    /// <summary>Bytes of pooled float arrays held by storages not yet disposed (diagnostics).</summary>
    internal static long LiveBytes => Interlocked.Read(ref s_liveBytes);

    /// <summary>Bytes of float arrays waiting in the pool.</summary>
    internal static long PooledBytes
    {
        get
        {
            lock (s_pool)
                return s_pooledBytes;
        }
    }

    /// <summary>
    /// Most bytes of derived forms held by all storages together: past it, building a form drops the forms used
    /// longest ago (they are rebuilt, bit-identical, when next needed). Unbounded unless a memory plan sets it.
    /// </summary>
    internal static long DerivedCapBytes { get; set; } = long.MaxValue;

    /// <summary>The use clock of derived forms: <see cref="TrimDerived"/> with a value read here drops every form not
    /// used since.</summary>
    internal static long DerivedClock => Interlocked.Read(ref s_clock);

    private readonly Dictionary<string, DerivedForm> _derived = new(StringComparer.Ordinal);

    private sealed class DerivedForm(long version, float[] data)
    {
        public long Version { get; } = version;

        public float[] Data { get; } = data;

        public long LastUse { get; set; } = Interlocked.Increment(ref s_clock);
    }

    /// <summary>Floats allocated past a tensor's length so that its data can start on a 64-byte boundary.</summary>
    private const int Pad = 16;

    private readonly float[]? _floats;
    private readonly int _offset, _length;
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
        else
        {
            if (n < PoolMin)
            {
                _floats = GC.AllocateArray<float>(n + Pad, pinned: true);
            }
            else
            {
                _floats = Take(n + Pad) ?? GC.AllocateUninitializedArray<float>(n + Pad, pinned: true);
                _zeroPending = true;
                Interlocked.Add(ref s_liveBytes, 4L * _floats.Length);
            }
            _length = n;
            _offset = AlignedOffset(_floats);
        }
    }

    /// <summary>
    /// Elements from an array's start to its first 64-byte boundary. The garbage collector places objects on 8-byte
    /// boundaries, so a tensor at the array's start would begin anywhere in a cache line, and every 64-byte vector
    /// load or store of it would split two lines; which offset a buffer got changed from run to run. The array is
    /// pinned for its lifetime, so the offset is fixed.
    /// </summary>
    private static unsafe int AlignedOffset(float[] a) =>
        (int)(Scratch.Aligned(a) - (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a)));

    /// <summary>The first <paramref name="length"/> floats of the data (a float tensor's), zeroed first if unwritten.</summary>
    public Memory<float> FloatMemory(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _length);
        EnsureZeroed();
        return _floats.AsMemory(_offset, length);
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
    /// A form derived from the current contents (packed or flipped weights), built once per version and key, and kept
    /// until the contents change, <see cref="DerivedCapBytes"/> needs the room, or <see cref="TrimDerived"/> drops it.
    /// </summary>
    public float[] Derived(string key, Func<float[]> build)
    {
        float[] data;
        lock (_derived)
        {
            if (_derived.TryGetValue(key, out var e) && e.Version == Version)
            {
                e.LastUse = Interlocked.Increment(ref s_clock);
                return e.Data;
            }
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            data = build();
            Interlocked.Increment(ref s_builds);
            Interlocked.Add(ref s_buildTicks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            if (e != null)
                Interlocked.Add(ref s_derivedBytes, -4L * e.Data.Length);
            _derived[key] = new DerivedForm(Version, data);
            Interlocked.Add(ref s_derivedBytes, 4L * data.Length);
        }
        // Outside this storage's lock: eviction takes the registry's lock, then each storage's.
        lock (s_holdersLock)
        {
            s_holders.AddOrUpdate(this, null);
            if (DerivedBytes > DerivedCapBytes)
                Evict(DerivedCapBytes, this, key);
        }
        return data;
    }

    /// <summary>Bytes of derived forms held, by kind (the key up to its first colon: fwdW, flipW, fwdD, ...);
    /// a diagnostic for <c>CAMENGINE_MEMLOG</c>.</summary>
    internal static IReadOnlyDictionary<string, long> DerivedBytesByKind()
    {
        var kinds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        lock (s_holdersLock)
        {
            foreach (var (storage, _) in s_holders)
            {
                lock (storage._derived)
                {
                    foreach (var (key, form) in storage._derived)
                    {
                        string kind = key.Split(':')[0];
                        kinds[kind] = kinds.GetValueOrDefault(kind) + 4L * form.Data.Length;
                    }
                }
            }
        }
        return kinds;
    }

    /// <summary>Drops every derived form (of every storage) not used since <paramref name="mark"/> (a
    /// <see cref="DerivedClock"/> value).</summary>
    internal static void TrimDerived(long mark)
    {
        lock (s_holdersLock)
        {
            foreach (var (storage, _) in s_holders)
            {
                lock (storage._derived)
                {
                    foreach (var (key, form) in storage._derived.Where(p => p.Value.LastUse <= mark).ToList())
                        storage.Drop(key, form);
                }
            }
        }
    }

    /// <summary>Drops the forms used longest ago until at most <paramref name="cap"/> bytes are held, never the form
    /// <paramref name="key"/> of <paramref name="keep"/> (just built for a caller).</summary>
    private static void Evict(long cap, CpuStorage keep, string key)
    {
        var all = new List<(CpuStorage Storage, string Key, DerivedForm Form)>();
        foreach (var (storage, _) in s_holders)
        {
            lock (storage._derived)
                all.AddRange(storage._derived.Select(p => (storage, p.Key, p.Value)));
        }
        // Counted from the forms themselves: a storage collected without Dispose took its forms with it.
        long held = all.Sum(f => 4L * f.Form.Data.Length);
        foreach (var (storage, k, form) in all.OrderBy(f => f.Form.LastUse))
        {
            if (held <= cap)
                break;
            if (ReferenceEquals(storage, keep) && k == key)
                continue;
            lock (storage._derived)
            {
                if (storage._derived.TryGetValue(k, out var now) && ReferenceEquals(now, form))
                {
                    storage.Drop(k, form);
                    held -= 4L * form.Data.Length;
                }
            }
        }
        Interlocked.Exchange(ref s_derivedBytes, held);
    }

    private void Drop(string key, DerivedForm form)
    {
        _derived.Remove(key);
        Interlocked.Add(ref s_derivedBytes, -4L * form.Data.Length);
    }

    /// <summary>Empties the process-wide buffer pools (their arrays go to the garbage collector).</summary>
    internal static void TrimPool()
    {
        lock (s_pool)
        {
            s_pool.Clear();
            s_pooledBytes = 0;
        }
        lock (s_intPool)
            s_intPool.Clear();
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
        if (data.Length < _length)
            EnsureZeroed();
        _zeroPending = false;
        data.CopyTo(_floats.AsSpan(_offset, _length));
    }

    private unsafe float* Ptr => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_floats!)) + _offset;

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
        lock (_derived)
        {
            foreach (var (key, form) in _derived.ToList())
                Drop(key, form);
        }
        if (!_released && _floats != null && _length >= PoolMin)
        {
            _released = true;
            Interlocked.Add(ref s_liveBytes, -4L * _floats.Length);
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
