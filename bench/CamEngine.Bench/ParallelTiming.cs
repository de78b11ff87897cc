using System.Diagnostics;
using CamEngine.Backends.Cpu;

namespace CamEngine.Bench;

/// <summary>
/// `parallel`: the CPU kernels' own parallel loop (<see cref="CpuParallel"/>) on work that touches no memory. First
/// loops of TASKS tasks of 12,000 register FMAs each (<see cref="FmaPeakBenchmarks.Chains512"/>): the loop's median time, how many tasks the caller and the workers
/// ran, and the caller's time alone for half of them (a worker as fast as the caller splits the tasks evenly and the
/// loop takes about that). Then rounds of GAP us of serial work on the caller and a loop of TASKS tasks of TASK_US us
/// each (busy waits on the clock): the loop's time, p10/p50/p90, per gap (ideal TASKS x TASK_US / threads; a worker
/// that joins late shows as more). On the Zen 5 VM (2026-12-08) both were ideal (22 tasks of 4 us: 45.2-48.3 us at gaps
/// of 0 to 10 ms; FMA tasks of 8,000 split 22,002 / 21,998), while a 1x1 conv's tasks, which read x, went 83% to the caller:
/// what slows the second core there is its memory traffic, not the loop.
/// Run: dotnet CamEngine.Bench.dll parallel [TASK_US] [TASKS] (defaults 20 and 2 x threads)
/// </summary>
internal static class ParallelTiming
{
    public static void Run(string[] args)
    {
        double task = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20;
        int tasks = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 2 * Environment.ProcessorCount;
        static void Busy(double us)
        {
            long end = Stopwatch.GetTimestamp() + (long)(us * Stopwatch.Frequency / 1e6);
            while (Stopwatch.GetTimestamp() < end)
            {
            }
        }
        // Fixed compute per task (FMA chains in registers): the threads' speeds, not their clocks.
        var which = new int[2];
        int mainThread = Environment.CurrentManagedThreadId;
        for (int rep = 0; rep < 3; rep++)
        {
            which[0] = which[1] = 0;
            var tt = new List<double>();
            for (int r = 0; r < 2000; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                CpuParallel.For(tasks, _ =>
                {
                    FmaPeakBenchmarks.Chains512(1000); // not inlined: the call stays
                    Interlocked.Increment(ref which[Environment.CurrentManagedThreadId == mainThread ? 0 : 1]);
                });
                tt.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            tt.Sort();
            Console.WriteLine($"  compute tasks (12,000 FMAs each): loop p50 {tt[tt.Count / 2]:F1} us; tasks by the caller {which[0]}, by the workers {which[1]}");
            long c0 = Stopwatch.GetTimestamp();
            for (int r = 0; r < 2000 * tasks / 2; r++)
                FmaPeakBenchmarks.Chains512(1000);
            Console.WriteLine($"  the same on the caller alone: {Stopwatch.GetElapsedTime(c0).TotalMicroseconds / 2000:F1} us a loop's half");
        }
        Console.WriteLine($"parallel: {tasks} tasks of {task} us on {Environment.ProcessorCount} threads (ideal loop {task * tasks / Environment.ProcessorCount} us); loop us p10/p50/p90 per serial gap");
        foreach (double gap in new[] { 0.0, 5, 20, 100, 1000, 10000 })
        {
            var t = new List<double>();
            for (int r = 0; r < (gap >= 1000 ? 200 : 2000); r++)
            {
                Busy(gap);
                long t0 = Stopwatch.GetTimestamp();
                CpuParallel.For(tasks, _ => Busy(task));
                t.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            t.Sort();
            Console.WriteLine(FormattableString.Invariant($"  gap {gap,6} us: {t[t.Count / 10],7:F1} {t[t.Count / 2],7:F1} {t[t.Count * 9 / 10],7:F1}"));
        }
    }
}
