using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Host memory for one tensor of the managed CPU backend: a pinned array (the kernels take raw pointers) in
/// logical row-major order, so reshaped views and the ILGPU/reference backends agree on every index.
/// <see cref="Version"/> counts writes; packed forms of weights derived from this storage are cached against it.
/// </summary>
internal sealed class CpuStorage : TensorStorage
{
    private readonly Dictionary<string, (long Version, float[] Data)> _derived = new(StringComparer.Ordinal);

    public CpuStorage(int length, ElementType type)
    {
        int n = Math.Max(length, 1);
        if (type == ElementType.Int32)
            Ints = GC.AllocateArray<int>(n, pinned: true);
        else
            Floats = GC.AllocateArray<float>(n, pinned: true);
    }

    /// <summary>Float data (null for an int32 tensor).</summary>
    public float[]? Floats { get; }

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

    /// <summary>Pointer to the float data (the array is pinned for its lifetime).</summary>
    public unsafe float* FloatPtr => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Floats!));

    /// <summary>Pointer to the int data.</summary>
    public unsafe int* IntPtr => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Ints!));
}
