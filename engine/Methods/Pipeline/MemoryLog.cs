using System.Diagnostics;
using CamEngine.Backends.Cpu;

namespace CamEngine.Methods;

/// <summary>
/// With <c>CAMENGINE_MEMLOG=1</c>, one line on stderr after each method of an explain call: the process's resident and
/// peak resident memory, the managed heap (as of the last collection), and what the CPU backend holds (live tensors,
/// its buffer pool, scratch, packed weight forms: how many were built so far, in how many ms, and the bytes held per
/// kind). A diagnostic for sizing the memory plan; off by default.
/// </summary>
internal static class MemoryLog
{
    private static readonly string? s_mode = Environment.GetEnvironmentVariable("CAMENGINE_MEMLOG");
    private static readonly bool s_on = s_mode is "1" or "2";

    /// <summary>With <c>CAMENGINE_MEMLOG=2</c>: waits 3 s and logs again (does the runtime return memory later?).</summary>
    public static void Settle()
    {
        if (s_mode != "2")
            return;
        Thread.Sleep(3000);
        After("  3 s later", 0);
    }

    private static string Status()
    {
        try
        {
            return string.Join(" ", File.ReadLines("/proc/self/status")
                .Where(l => l.StartsWith("RssAnon", StringComparison.Ordinal) || l.StartsWith("RssFile", StringComparison.Ordinal))
                .Select(l => string.Join(' ', l.Split(default(char[]), StringSplitOptions.RemoveEmptyEntries))));
        }
        catch (IOException)
        {
            return "";
        }
    }

    public static void After(string what, double ms)
    {
        if (!s_on)
            return;
        using var p = Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo();
        var (built, buildMs) = CpuStorage.DerivedBuilds;
        static string Mb(long b) => $"{b / (1 << 20),6}";
        Console.Error.WriteLine(
            $"memlog {what,-24} {ms,9:F0} ms  rss {Mb(p.WorkingSet64)}  peak {Mb(p.PeakWorkingSet64)}  heap {Mb(gc.HeapSizeBytes)}  "
            + $"committed {Mb(gc.TotalCommittedBytes)}  live {Mb(CpuStorage.LiveBytes)}  pool {Mb(CpuStorage.PooledBytes)}  "
            + $"scratch {Mb(Scratch.PooledBytes)}  packed {Mb(CpuStorage.DerivedBytes)} MB  frag {Mb(gc.FragmentedBytes)}  {Status()}  "
            + $"built {built} in {buildMs:F0} ms  "
            + string.Join(" ", CpuStorage.DerivedBytesByKind().Select(p => $"{p.Key}={p.Value >> 20}")));
    }
}
