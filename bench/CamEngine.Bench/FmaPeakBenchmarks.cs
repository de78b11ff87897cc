using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;

namespace CamEngine.Bench;

/// <summary>
/// This machine's fp32 FMA peak: each of <see cref="Environment.ProcessorCount"/> threads runs 12 independent
/// Vector512 (or Vector256) FMA chains, enough to cover the FMA latency on two pipes. GFLOP/s =
/// threads * 12 chains * lanes * 2 flops * <see cref="Iterations"/> / time.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*FmaPeak*' --job Short
/// </summary>
public class FmaPeakBenchmarks
{
    /// <summary>FMA steps per chain per thread.</summary>
    public const int Iterations = 10_000_000;

    /// <summary>Flops of one benchmark call at a given vector width in floats.</summary>
    public static double Flops(int lanes) => (double)Environment.ProcessorCount * 12 * lanes * 2 * Iterations;

    [GlobalSetup]
    public void Setup() =>
        Console.WriteLine($"// {Environment.ProcessorCount} threads; Vector512 call = {Flops(16) / 1e9:F2} GFLOP, "
                          + $"Vector256 call = {Flops(8) / 1e9:F2} GFLOP");

    [Benchmark]
    public float Vector512Fma() => Run(() => Chains512(Iterations));

    [Benchmark]
    public float Vector256Fma() => Run(Chains256);

    private static float Run(Func<float> chains)
    {
        var sums = new float[Environment.ProcessorCount];
        Parallel.For(0, sums.Length, new ParallelOptions { MaxDegreeOfParallelism = sums.Length }, t => sums[t] = chains());
        return sums.Sum();
    }

    /// <summary>12 independent Vector512 FMA chains of <paramref name="iterations"/> steps each, in registers (also the
    /// memory-free task of the bench's `parallel` mode).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Chains512(int iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        Vector512<float> c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a);
            c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a);
            c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a);
            c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a);
            c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a);
            c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a);
            c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256()
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        Vector256<float> c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a);
            c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a);
            c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a);
            c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a);
            c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a);
            c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a);
            c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
