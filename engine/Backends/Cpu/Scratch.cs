using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Pinned scratch arrays for the CPU kernels (phase-split inputs, column buffers, output tiles), reused across
/// calls so a forward pass does not churn the large-object heap. Contents are undefined on rent.
/// </summary>
internal static class Scratch
{
    private static readonly List<float[]> s_pool = [];

    [ThreadStatic]
    private static float[]? t_panel;

    [ThreadStatic]
    private static float[]? t_tile;

    /// <summary>An array of at least <paramref name="length"/> floats plus 64 bytes of alignment slack: the smallest
    /// pooled one that fits, else a new one.</summary>
    public static float[] Rent(long length)
    {
        long need = length + 16;
        if (need > Array.MaxLength)
            throw new CamEngineException($"cpu backend: scratch buffer of {length} floats is too large");
        lock (s_pool)
        {
            int best = -1;
            for (int i = 0; i < s_pool.Count; i++)
            {
                if (s_pool[i].Length >= need && (best < 0 || s_pool[i].Length < s_pool[best].Length))
                    best = i;
            }
            if (best >= 0)
            {
                var a = s_pool[best];
                s_pool.RemoveAt(best);
                return a;
            }
        }
        return GC.AllocateUninitializedArray<float>((int)Math.Max(need, 1024), pinned: true);
    }

    /// <summary>Bytes of pooled scratch arrays (diagnostics).</summary>
    internal static long PooledBytes
    {
        get
        {
            lock (s_pool)
                return s_pool.Sum(a => 4L * a.Length);
        }
    }

    /// <summary>Empties the pool (its arrays go to the garbage collector).</summary>
    internal static void Trim()
    {
        lock (s_pool)
            s_pool.Clear();
    }

    /// <summary>Gives an array back for reuse; past eight pooled arrays the smallest is dropped.</summary>
    public static void Return(float[] a)
    {
        lock (s_pool)
        {
            s_pool.Add(a);
            if (s_pool.Count > 8)
            {
                int smallest = 0;
                for (int i = 1; i < s_pool.Count; i++)
                {
                    if (s_pool[i].Length < s_pool[smallest].Length)
                        smallest = i;
                }
                s_pool.RemoveAt(smallest);
            }
        }
    }

    /// <summary>The 64-byte aligned start of an array with 16 floats of slack (a rented one, or a tensor storage's).</summary>
    public static unsafe float* Aligned(float[] a)
    {
        var p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a));
        return (float*)((p + 63) & ~(nint)63);
    }

    /// <summary>This thread's packing buffer for B panels (at least <paramref name="length"/> floats, aligned).</summary>
    public static unsafe float* Panel(int length)
    {
        if (t_panel == null || t_panel.Length < length + 16)
            t_panel = GC.AllocateUninitializedArray<float>(length + 16, pinned: true);
        return Aligned(t_panel);
    }

    /// <summary>This thread's accumulator for direct-convolution tiles (at least <paramref name="length"/> floats, aligned).</summary>
    public static unsafe float* Tile(int length)
    {
        if (t_tile == null || t_tile.Length < length + 16)
            t_tile = GC.AllocateUninitializedArray<float>(length + 16, pinned: true);
        return Aligned(t_tile);
    }
}
