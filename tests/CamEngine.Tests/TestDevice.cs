using NUnit.Framework;
using CamEngine.Backends;

namespace CamEngine.Tests;

/// <summary>
/// The ILGPU backend the tests run kernels on: ILGPU's CPU accelerator by default, or the device named by
/// CAMENGINE_TEST_DEVICE (cuda, opencl) on a machine that has one. One instance for the whole run.
/// </summary>
[SetUpFixture]
internal sealed class TestDevice
{
    private static IlgpuBackend? s_backend;
    private static readonly Lock s_lock = new();

    public static IlgpuBackend Ilgpu
    {
        get
        {
            lock (s_lock)
            {
                if (s_backend == null)
                {
                    string kind = Environment.GetEnvironmentVariable("CAMENGINE_TEST_DEVICE") ?? "ilgpu-cpu";
                    s_backend = IlgpuBackend.TryCreate(kind);
                    if (s_backend == null)
                        Assert.Ignore($"no {kind} device on this machine");
                }
                return s_backend!;
            }
        }
    }

    private static CamEngine.Backends.Cpu.CpuBackend? s_cpu;

    /// <summary>The managed CPU backend at this machine's widest vector width.</summary>
    public static CamEngine.Backends.Cpu.CpuBackend Cpu
    {
        get
        {
            lock (s_lock)
                return s_cpu ??= new CamEngine.Backends.Cpu.CpuBackend();
        }
    }

    /// <summary>A test device by name: <c>ilgpu</c> (<see cref="Ilgpu"/>) or <c>cpu</c> (<see cref="Cpu"/>).</summary>
    public static Backend Named(string name) => name == "cpu" ? Cpu : Ilgpu;

    [OneTimeTearDown]
    public void Release()
    {
        lock (s_lock)
        {
            s_backend?.Dispose();
            s_backend = null;
            s_cpu?.Dispose();
            s_cpu = null;
        }
    }
}

/// <summary>llm.c-style comparison: |a - b| &lt;= atol + rtol * |ref|, reporting the first mismatches.</summary>
internal static class TensorAssert
{
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double atol, double rtol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        var bad = new List<string>();
        int count = 0;
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (!(err <= tol))
            {
                count++;
                if (bad.Count < 5)
                    bad.Add($"[{i}] {actual[i]:G9} vs {expected[i]:G9}");
            }
            worst = Math.Max(worst, err);
        }
        Assert.That(count, Is.Zero, $"{what}: {count}/{actual.Length} mismatches (max abs err {worst:G3}): {string.Join("; ", bad)}");
    }

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol, string what)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++)
            e[i] = expected[i];
        Close(actual, e, atol, rtol, what);
    }

    public static void Close(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, double atol, double rtol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        int count = 0;
        var bad = new List<string>();
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= atol + rtol * Math.Abs(expected[i])))
            {
                count++;
                if (bad.Count < 5)
                    bad.Add($"[{i}] {actual[i]:G12} vs {expected[i]:G12}");
            }
        }
        Assert.That(count, Is.Zero, $"{what}: {count}/{actual.Length} mismatches: {string.Join("; ", bad)}");
    }

    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var r = new float[n];
        for (int i = 0; i < n; i++)
            r[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return r;
    }
}
