using System.Diagnostics;
using CamEngine.Backends.Cpu;

namespace CamEngine.Bench;

/// <summary>
/// `parallel`: the CPU kernels' own parallel loop (<see cref="CpuParallel"/>) on work that touches no memory. First
/// loops of TASKS tasks of 8,000 register FMAs each: the loop's median time, how many tasks the caller and the workers
/// ran, and the caller's time alone for half of them (a worker as fast as the caller splits the tasks evenly and the
/// loop takes about that). Then rounds of GAP us of serial work on the caller and a loop of TASKS tasks of TASK_US us
/// each (busy waits on the clock): the loop's time, p10/p50/p90, per gap (ideal TASKS x TASK_US / threads; a worker
/// that joins late shows as more). On the Zen 5 VM (2026-12-08) both were ideal (22 tasks of 4 us: 45.2-48.3 us at gaps
/// of 0 to 10 ms; the FMA tasks split 22,002 / 21,998), while a 1x1 conv's tasks, which read x, went 83% to the caller:
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
        Console.WriteLine($"parallel: {tasks} tasks of {task} us on {Environment.ProcessorCount} threads (ideal loop {task * tasks / Environment.ProcessorCount} us); loop us p10/p50/p90 per serial gap");
        // Fixed compute per task (FMA chains in registers): the threads' speeds, not their clocks.
        var which = new int[2];
        float Compute(int n)
        {
            var a = System.Runtime.Intrinsics.Vector512.Create(1.0001f);
            var b0 = System.Runtime.Intrinsics.Vector512.Create(0.5f);
            var b1 = b0; var b2 = b0; var b3 = b0; var b4 = b0; var b5 = b0; var b6 = b0; var b7 = b0;
            for (int i = 0; i < n; i++)
            {
                b0 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b0, a, a);
                b1 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b1, a, a);
                b2 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b2, a, a);
                b3 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b3, a, a);
                b4 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b4, a, a);
                b5 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b5, a, a);
                b6 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b6, a, a);
                b7 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(b7, a, a);
            }
            return System.Runtime.Intrinsics.Vector512.Sum(b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7);
        }
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
                    Compute(1000);
                    Interlocked.Increment(ref which[Environment.CurrentManagedThreadId == mainThread ? 0 : 1]);
                });
                tt.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            tt.Sort();
            Console.WriteLine($"  compute tasks (8000 FMAs each): loop p50 {tt[tt.Count / 2]:F1} us; tasks by the caller {which[0]}, by the workers {which[1]}");
            long c0 = Stopwatch.GetTimestamp();
            for (int r = 0; r < 2000 * tasks / 2; r++)
                Compute(1000);
            Console.WriteLine($"  the same on the caller alone: {Stopwatch.GetElapsedTime(c0).TotalMicroseconds / 2000:F1} us a loop's half");
        }
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
