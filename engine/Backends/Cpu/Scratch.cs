using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Pinned scratch arrays for the CPU kernels (phase-split inputs, column buffers, output tiles), reused across
/// calls so a forward pass does not churn the large-object heap. Contents are undefined on rent.
/// </summary>
internal static class Scratch
{
    private static readonly ConcurrentBag<float[]> s_pool = [];

    [ThreadStatic]
    private static float[]? t_panel;

    /// <summary>An array of at least <paramref name="length"/> floats plus 64 bytes of alignment slack.</summary>
    public static float[] Rent(long length)
    {
        long need = length + 16;
        if (need > Array.MaxLength)
            throw new CamEngineException($"cpu backend: scratch buffer of {length} floats is too large");
        // Take what the pool has; keep a too-small array out of the way rather than spinning on it.
        if (s_pool.TryTake(out var a) && a.Length >= need)
            return a;
        return GC.AllocateUninitializedArray<float>((int)Math.Max(need, 1024), pinned: true);
    }

    /// <summary>Gives an array back for reuse.</summary>
    public static void Return(float[] a)
    {
        if (s_pool.Count < 8)
            s_pool.Add(a);
    }

    /// <summary>The 64-byte aligned start of a rented array.</summary>
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
}
