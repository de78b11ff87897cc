using CamEngine.Backends.Cpu;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The CPU kernels' parallel loop (<see cref="CpuParallel"/>): every index runs exactly once, with a share per thread
/// (each thread's own first) and with one shared counter, loops back to back and
/// after the workers have parked, parked workers woken for the next loop, the spin set from the environment, a loop
/// inside a body, loops from several threads at once, a body's exception reaching the caller only after the other
/// indices finished, and the plane loops' grouping of small indices into tasks (<see cref="CpuConv.For"/>).
/// </summary>
[TestFixture]
internal sealed class CpuParallelTests
{
    [Test]
    public void Every_index_runs_once_back_to_back_and_after_the_workers_park()
    {
        CpuParallel.SpinMicroseconds = 200; // so that they park within the sleeps below
        try
        {
            foreach (int count in new[] { 1, 2, 3, 7, 64, 1000 })
            {
                for (int round = 0; round < 50; round++)
                {
                    var hits = new int[count];
                    CpuParallel.For(count, i => Interlocked.Increment(ref hits[i]));
                    Assert.That(hits, Is.All.EqualTo(1), $"count {count}, round {round}");
                }
                // Longer than the workers spin: the next loop wakes parked workers.
                Thread.Sleep(5);
            }
        }
        finally
        {
            CpuParallel.SpinMicroseconds = CpuParallel.DefaultSpinMicroseconds;
        }
    }

    /// <summary>With a share per thread, a thread runs its own share's indices in order, then what is left of the next
    /// shares in turn (here one thread doing all the work, as when the others have not woken yet); with one share,
    /// indices in order from 0.</summary>
    [TestCase(8, 2, 1, new[] { 4, 5, 6, 7, 0, 1, 2, 3 })]
    [TestCase(7, 3, 2, new[] { 4, 5, 6, 0, 1, 2, 3 })]
    [TestCase(7, 3, 1, new[] { 2, 3, 4, 5, 6, 0, 1 })]
    [TestCase(7, 3, 0, new[] { 0, 1, 2, 3, 4, 5, 6 })]
    [TestCase(2, 4, 3, new[] { 1, 0 })]
    [TestCase(5, 1, 1, new[] { 0, 1, 2, 3, 4 })]
    public void A_thread_runs_its_own_share_first_then_the_rest(int count, int shares, int part, int[] expected)
    {
        var order = new List<int>();
        var job = new CpuParallel.Job(order.Add, count, shares);
        job.Work(part);
        Assert.That(order, Is.EqualTo(expected));
        Assert.That(job.Done, Is.EqualTo(count));
        job.Work(0);
        Assert.That(order, Has.Count.EqualTo(count), "nothing is left for a second thread");
    }

    [Test]
    public void Every_index_runs_once_with_a_shared_counter_too()
    {
        CpuParallel.Affine = false;
        try
        {
            foreach (int count in new[] { 1, 2, 3, 7, 64, 1000 })
            {
                var hits = new int[count];
                CpuParallel.For(count, i => Interlocked.Increment(ref hits[i]));
                Assert.That(hits, Is.All.EqualTo(1), $"count {count}");
            }
        }
        finally
        {
            CpuParallel.Affine = true;
        }
    }

    /// <summary><see cref="CpuConv.For"/> groups small indices into tasks of consecutive ones (ResNet-50's global average
    /// pool at batch 8: 16,384 planes of 49, 168 a task, 98 tasks on two threads; large planes one a task; never fewer
    /// than four tasks a thread where there are that many indices), and each index still runs once whatever the
    /// remainder.</summary>
    [Test]
    public void Grouped_plane_loops_run_every_index_once()
    {
        Assert.That(CpuConv.IndicesPerTask(16384, 16384 * 49L, 2), Is.EqualTo(168));
        Assert.That(CpuConv.IndicesPerTask(512, 512 * 3136 * 9L, 2), Is.EqualTo(1));
        Assert.That(CpuConv.IndicesPerTask(40, 40 * 100L, 2), Is.EqualTo(5), "four tasks a thread");
        Assert.That(CpuConv.IndicesPerTask(7, 7 * 10L, 2), Is.EqualTo(1), "fewer indices than eight tasks");
        foreach (var (count, perIndex) in new[] { (16384, 49L), (16383, 49L), (1000, 200L), (129, 1024L), (40, 8192L), (3, 100_000L) })
        {
            var hits = new int[count];
            CpuConv.For(count, count * perIndex, i => Interlocked.Increment(ref hits[i]));
            Assert.That(hits, Is.All.EqualTo(1), $"count {count}");
        }
    }

    [Test]
    public void Uses_more_than_one_thread_when_the_machine_has_them()
    {
        if (Environment.ProcessorCount < 2)
            Assert.Ignore("one processor: loops run on the caller");
        var threads = new HashSet<int>();
        for (int round = 0; round < 20 && threads.Count < 2; round++)
        {
            CpuParallel.For(16, _ =>
            {
                lock (threads)
                    threads.Add(Environment.CurrentManagedThreadId);
                Thread.Sleep(1);
            });
        }
        Assert.That(threads, Has.Count.GreaterThanOrEqualTo(2));
    }

    [Test]
    public void The_spin_comes_from_the_environment_when_a_cpu_backend_opens_and_a_bad_value_is_named()
    {
        string? before = Environment.GetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable, "0.5");
            new CpuBackend().Dispose();
            Assert.That(CpuParallel.SpinMicroseconds, Is.EqualTo(500));
            Environment.SetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable, "0");
            new CpuBackend().Dispose();
            Assert.That(CpuParallel.SpinMicroseconds, Is.EqualTo(0));
            foreach (string bad in new[] { "fast", "-1", "1001", "NaN", "" })
            {
                Environment.SetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable, bad);
                if (bad.Length == 0 && Environment.GetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable) == null)
                    continue; // an empty value unsets the variable on this platform
                var e = Assert.Throws<CamEngineException>(() => new CpuBackend().Dispose(), bad);
                Assert.That(e!.Message, Does.Contain(CpuParallel.SpinEnvironmentVariable).And.Contain("milliseconds"), bad);
            }
            Environment.SetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable, null);
            CpuParallel.SpinMicroseconds = CpuParallel.DefaultSpinMicroseconds;
            new CpuBackend().Dispose();
            Assert.That(CpuParallel.SpinMicroseconds, Is.EqualTo(CpuParallel.DefaultSpinMicroseconds), "unset: the default stays");
        }
        finally
        {
            Environment.SetEnvironmentVariable(CpuParallel.SpinEnvironmentVariable, before);
            CpuParallel.SpinMicroseconds = CpuParallel.DefaultSpinMicroseconds;
        }
    }

    [Test]
    public void Parked_workers_join_the_next_loop()
    {
        if (Environment.ProcessorCount < 2)
            Assert.Ignore("one processor: loops run on the caller");
        CpuParallel.SpinMicroseconds = 200;
        try
        {
            for (int round = 0; round < 5; round++)
            {
                CpuParallel.For(2, _ => { });
                Thread.Sleep(5); // past the spin: the workers park
                var threads = new HashSet<int>();
                CpuParallel.For(16, _ =>
                {
                    lock (threads)
                        threads.Add(Environment.CurrentManagedThreadId);
                    Thread.Sleep(2);
                });
                Assert.That(threads, Has.Count.GreaterThanOrEqualTo(2), $"round {round}: a parked worker took part");
            }
        }
        finally
        {
            CpuParallel.SpinMicroseconds = CpuParallel.DefaultSpinMicroseconds;
        }
    }

    [Test]
    public void A_loop_inside_a_body_runs_every_index()
    {
        var hits = new int[8 * 9];
        CpuParallel.For(8, i => CpuParallel.For(9, j => Interlocked.Increment(ref hits[i * 9 + j])));
        Assert.That(hits, Is.All.EqualTo(1));
    }

    [Test]
    public void Loops_from_several_threads_at_once_all_complete()
    {
        const int Callers = 4, Count = 200;
        var hits = new int[Callers * Count];
        var callers = Enumerable.Range(0, Callers).Select(c => new Thread(() =>
        {
            for (int round = 0; round < 20; round++)
                CpuParallel.For(Count, i => Interlocked.Increment(ref hits[c * Count + i]));
        })).ToList();
        callers.ForEach(t => t.Start());
        callers.ForEach(t => t.Join());
        Assert.That(hits, Is.All.EqualTo(20));
    }

    [Test]
    public void A_body_exception_reaches_the_caller_after_the_other_indices()
    {
        var hits = new int[32];
        var e = Assert.Throws<InvalidOperationException>(() => CpuParallel.For(32, i =>
        {
            Interlocked.Increment(ref hits[i]);
            if (i == 5)
                throw new InvalidOperationException("index 5");
        }));
        Assert.That(e!.Message, Is.EqualTo("index 5"));
        Assert.That(hits, Is.All.EqualTo(1), "the other indices still ran, once each");
        // The loop is usable again afterwards.
        var after = new int[10];
        CpuParallel.For(10, i => after[i]++);
        Assert.That(after, Is.All.EqualTo(1));
    }
}
