using System.Diagnostics;

namespace CamEngine.Bench;

/// <summary>
/// The engine side of bench/resnet18_torch.py with the same method: ResNet-18 shape, random weights, batch 1 and 8,
/// median of repeated calls (20 at batch 1, 5 at batch 8) after warm-up, printed in the script's
/// format so bench/compare.sh can take ratios. Run: dotnet run -c Release --project bench/CamEngine.Bench -- resnet18
/// </summary>
internal static class TorchLike
{
    public static void Run(string[] args)
    {
        string device = args.Length > 1 ? args[1] : "cpu";
        Environment.SetEnvironmentVariable(Backends.Devices.EnvironmentVariable, device);
        foreach (int batch in new[] { 1, 8 })
        {
            var b = new ResNet18Benchmarks { Batch = batch };
            b.Setup();
            int reps = batch == 1 ? 20 : 5;
            // Steady state: the first few dozen passes still run partly unoptimized (tiered JIT) code, which the
            // script's warm-up calls would count against the engine.
            for (int i = 0; i < 40 / batch; i++)
                b.ForwardBackwardToInput();
            double f = Median(reps, () => b.Forward());
            double l4 = Median(reps, () => b.ForwardBackwardToLayer4());
            double inp = Median(reps, () => b.ForwardBackwardToInput());
            Console.WriteLine(System.FormattableString.Invariant(
                $"batch {batch}: forward {f:F1} ms, forward+backward to layer4 {l4:F1} ms, forward+backward to input {inp:F1} ms"));
            b.Cleanup();
        }
        Console.WriteLine($"peak working set {Environment.WorkingSet / 1e6:F0} MB now; VmHWM {PeakRss()}");
    }

    /// <summary>Median wall time (ms) of <paramref name="reps"/> calls of <paramref name="f"/> after 10 warm-up calls (as
    /// the Python scripts do: the first calls of a pass that follows a different one still ran slower).</summary>
    internal static double Median(int reps, Func<int> f)
    {
        var ts = Times(10, reps, () => f());
        Array.Sort(ts);
        return ts[reps / 2];
    }

    /// <summary>Wall times (ms) of <paramref name="reps"/> calls of <paramref name="f"/> after <paramref name="warmup"/>
    /// untimed ones.</summary>
    internal static double[] Times(int warmup, int reps, Action f)
    {
        for (int i = 0; i < warmup; i++)
            f();
        var ts = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            f();
            ts[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        return ts;
    }

    /// <summary>The process's peak resident set (Linux /proc/self/status VmHWM), or "n/a".</summary>
    public static string PeakRss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return line[6..].Trim();
            }
        }
        catch (IOException)
        {
        }
        return "n/a";
    }
}
