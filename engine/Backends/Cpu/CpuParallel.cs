using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The parallel loop of the CPU kernels: <c>body(i)</c> for i in [0, count), on the calling thread and
/// <see cref="Environment.ProcessorCount"/> - 1 dedicated workers that take indices one at a time, each from its own
/// share of consecutive indices first (<see cref="Affine"/>).
/// <para>
/// Why not <see cref="Parallel.For(int, int, Action{int})"/>: a forward pass runs a few hundred short parallel
/// loops with a little serial work between them. A thread-pool worker that finds no work parks at once, and waking it
/// for the next loop cost 25-30 us on the 2-core VM (bench: a loop of 8 x 5 us tasks took 23 us back to back and
/// 50 us after 20 us of serial work). These workers spin for <see cref="SpinMicroseconds"/> after each loop before
/// they park, so the next loop of the same pass finds them awake, and they burn at most that long once the pass
/// ends, as ONNX Runtime's workers do (its default spinning: 37-47 ms of CPU in the 250 ms after a call here).
/// </para>
/// A loop started while another runs (a body that loops itself, or a second thread) runs on its own thread alone;
/// the first exception a body throws is rethrown on the caller once every index has finished.
/// </summary>
internal static class CpuParallel
{
    /// <summary>
    /// How long an idle worker keeps looking for the next loop before it parks: 25 ms. A pass that starts after
    /// its workers parked ran much slower on the 2-vCPU VM, all through the pass, not only while the parked worker
    /// woke (1.3-1.5 ms there; 0.05-0.2 ms after a 1 ms park). Measured with the bench's profile after a 100 ms sleep
    /// before each call (PROFILE_LEAN=1 PROFILE_SLEEP=100, sums of node medians, MobileNetV2 batch 1): one process per
    /// setting, 200 us 13.1-14.3 ms, 25 ms 9.5-9.8 (back to back, no sleep: 8.0-8.6); in one process, alternating
    /// call by call (PROFILE_SPIN=1, 25 ms against 200 us): MobileNetV2 11.06 against 12.14, ResNet-18 16.94 against
    /// 17.34 and at batch 8 109.9 against 112.5, EfficientNet-B0 15.60 against 15.33. The cost is CPU time: a worker
    /// burns up to this long after the last loop of a pass. Tests and the bench set it.
    /// </summary>
    internal static double SpinMicroseconds { get; set; } = DefaultSpinMicroseconds;

    /// <summary>The default of <see cref="SpinMicroseconds"/>.</summary>
    internal const double DefaultSpinMicroseconds = 25_000;

    /// <summary>
    /// The environment variable that sets <see cref="SpinMicroseconds"/>, in milliseconds from 0 (park at once) to 1000,
    /// read when a CPU backend opens: a server that must not keep a core busy after each call sets 0.
    /// </summary>
    public const string SpinEnvironmentVariable = "CAMENGINE_CPU_SPIN_MS";

    /// <summary>Applies <see cref="SpinEnvironmentVariable"/> when it is set; a value that is not a number of
    /// milliseconds from 0 to 1000 is a <see cref="CamEngineException"/> naming it.</summary>
    internal static void ReadSpinSetting()
    {
        string? value = Environment.GetEnvironmentVariable(SpinEnvironmentVariable);
        if (value == null)
            return;
        if (!double.TryParse(value.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture,
                out double ms) || !(ms >= 0 && ms <= 1000))
            throw new CamEngineException(
                $"{SpinEnvironmentVariable}='{PrintableText.Escape(value)}': give how long the CPU workers spin after a loop, in milliseconds from 0 to 1000");
        SpinMicroseconds = ms * 1000;
    }

    /// <summary>False: every loop goes to <see cref="Parallel.For(int, int, Action{int})"/> (the bench compares the two).</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether each loop's indices are dealt out in one run of consecutive indices per thread (<see cref="Job"/>), so
    /// that what a thread writes in one loop is more often what it reads in the next (the kernels number their tasks
    /// so that neighbouring indices touch neighbouring data) and stays in its own core's cache, instead of one counter
    /// all threads take from. On the 2-vCPU VM a value one core wrote and the other reads costs a transfer between the
    /// cores' caches, and in spells of seconds to minutes those transfers are slow (a cache line's round trip between
    /// two spinning threads 400-470 ns in processes that started in one, against 130-210 in others, while one thread's
    /// memory reads stay 19 GB/s and 140-160 ns): that is the slow mode the `ort` comparisons show. Measured with the bench's profile
    /// (PROFILE_LEAN=1 PROFILE_AFFINE=1, 100 ms sleep and a 64 MB sweep before each call, the two settings alternating
    /// call by call, sums of node medians, 2026-12-07): ResNet-50 batch 1 46.0-46.3 ms against 50.7-51.1 (0.90-0.91)
    /// in the slow mode, 0.97-1.00 in processes at 41-44 ms, 0.989-1.005 at 38-40 ms; ResNet-18 batch 1 17.0-17.3
    /// against 18.1-18.7 (0.92-0.94, slow processes); MobileNetV2 batch 1 0.94-0.96; ResNet-18 batch 8 0.97-0.98;
    /// ResNet-50 batch 8 0.98. Whole lean forwards alternating (PROFILE_AFFINE=1 without PROFILE_LEAN, medians):
    /// MobileNetV2 batch 1 0.927-0.962 in four processes, ResNet-50 0.896 and 0.997, ResNet-18 0.928 and 0.995. The
    /// bench switches it.
    /// </summary>
    internal static bool Affine { get; set; } = true;

    /// <summary>
    /// One loop. With <see cref="Affine"/>, [0, count) is split into one share of consecutive indices per thread
    /// (the caller's first, then each worker's); a thread runs its own share in order, then whatever is left of the
    /// next shares in turn, so no thread idles while indices remain. Otherwise one share that every thread takes from.
    /// </summary>
    internal sealed class Job
    {
        /// <summary>Longs from one share's cursor to the next: 128 bytes, two cache lines.</summary>
        private const int Stride = 16;

        public readonly Action<int> Body;
        public int Done;
        public ExceptionDispatchInfo? Error;
        private readonly int _shares;

        /// <summary>Share s: its next index at [s*Stride], its end at [s*Stride + 1].</summary>
        private readonly long[] _cursors;

        public Job(Action<int> body, int count, int shares)
        {
            Body = body;
            _shares = Math.Clamp(shares, 1, Math.Max(count, 1));
            _cursors = new long[_shares * Stride];
            for (int share = 0; share < _shares; share++)
            {
                _cursors[share * Stride] = (long)count * share / _shares;
                _cursors[share * Stride + 1] = (long)count * (share + 1) / _shares;
            }
        }

        /// <summary>Runs indices until none is left: share <paramref name="part"/> (modulo the shares) first.</summary>
        public void Work(int part)
        {
            int ran = 0;
            for (int q = 0; q < _shares; q++)
            {
                int at = (part + q) % _shares * Stride;
                long end = _cursors[at + 1], i;
                while ((i = Interlocked.Increment(ref _cursors[at]) - 1) < end)
                {
                    try
                    {
                        Body((int)i);
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref Error, ExceptionDispatchInfo.Capture(e), null);
                    }
                    ran++;
                }
            }
            // Counted once per thread and loop, not per index: a counter both cores write moves between their caches
            // on every update (MobileNetV2 batch 1, about 3,000 indices in 113 loops a forward: 0.994-0.998 of the
            // time counting per index in processes where such moves were slow, 0.999-1.002 elsewhere; bench profile,
            // alternating call by call, 2026-12-07).
            if (ran > 0)
                Interlocked.Add(ref Done, ran);
        }
    }

    private static readonly Lock s_start = new();
    private static readonly object s_park = new();
    private static Job? s_job;
    private static long s_generation;
    private static int s_parked;
    private static int s_busy;
    private static int s_workers = -1;

    /// <summary>Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>).</summary>
    public static void For(int count, Action<int> body)
    {
        if (count <= 0)
            return;
        if (count == 1 || Environment.ProcessorCount == 1)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        if (!Enabled)
        {
            Parallel.For(0, count, body);
            return;
        }
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            // Nested in a body, or a second thread: the workers are taken.
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        try
        {
            EnsureWorkers();
            var job = new Job(body, count, Affine ? s_workers + 1 : 1);
            Volatile.Write(ref s_job, job);
            Interlocked.Increment(ref s_generation);
            if (Volatile.Read(ref s_parked) > 0)
            {
                // Parked workers wait on the generation, not on a count: a loop that starts while one is still
                // waking (1.3-1.5 ms after a long park here) must not leave it wake-ups to spend later, each another
                // spin after the pass has ended.
                lock (s_park)
                    Monitor.PulseAll(s_park);
            }
            job.Work(0);
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Done) < count)
                spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref s_job, null);
            job.Error?.Throw();
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static void EnsureWorkers()
    {
        if (s_workers >= 0)
            return;
        lock (s_start)
        {
            if (s_workers >= 0)
                return;
            int n = Environment.ProcessorCount - 1;
            for (int w = 0; w < n; w++)
            {
                int part = w + 1;
                new Thread(() => Worker(part)) { IsBackground = true, Name = $"CamEngine CPU worker {part}" }.Start();
            }
            s_workers = n;
        }
    }

    /// <summary>Worker <paramref name="part"/> (1 to ProcessorCount - 1): its share of each loop is that one.</summary>
    private static void Worker(int part)
    {
        long seen = Volatile.Read(ref s_generation);
        while (true)
        {
            // Look for a new loop, spinning for a while, then parked until one starts. The spin's length is read as
            // it goes, so a new setting governs the idle spell it is made in.
            long since = Stopwatch.GetTimestamp();
            var spin = new SpinWait();
            while (Volatile.Read(ref s_generation) == seen)
            {
                if (Stopwatch.GetTimestamp() - since < (long)(SpinMicroseconds * Stopwatch.Frequency / 1e6))
                {
                    spin.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                Interlocked.Increment(ref s_parked);
                lock (s_park)
                {
                    while (Volatile.Read(ref s_generation) == seen)
                        Monitor.Wait(s_park);
                }
                Interlocked.Decrement(ref s_parked);
                since = Stopwatch.GetTimestamp();
            }
            seen = Volatile.Read(ref s_generation);
            Volatile.Read(ref s_job)?.Work(part);
        }
    }
}
