using System.Globalization;
using CamEngine;
using CamEngine.Backends;
using ILGPU.Runtime.Cuda;

namespace CamEngine.GpuSuite;

/// <summary>The GPU suite (bench/gpu/run.sh). <c>--dry</c>: no GPU needed. <c>--gpu</c>: on a CUDA device, the checks,
/// then the timing table against PyTorch (<see cref="GpuTiming"/>). Exit code: 0 when every check passed, 1
/// otherwise, 2 on bad usage.</summary>
internal static class SuiteMain
{
    public static int Main(string[] args)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        try
        {
            if (args.Length >= 1 && args[0] == "--dry")
                return Dry.Run();
            if (args.Length >= 1 && args[0] == "--gpu")
                return GpuTiming.Run(args[1..]);
            if (args.Length == 3 && args[0] == "--methods")
                return MethodParity.Run(args[1], args[2]);
            if (args.Length == 2 && args[0] == "--layers")
                return GpuTiming.WriteLayers(args[1]);
            Console.Error.WriteLine("usage: CamEngine.GpuSuite --dry | --gpu [--torch FILE.json] [--quick] | --layers FILE.json | --methods DEVICE REPO_ROOT");
            return 2;
        }
        catch (CamEngineException e)
        {
            Console.Error.WriteLine($"gpu suite: {e.Message}");
            return 2;
        }
    }
}

/// <summary>The suite without a GPU: PTX of every kernel for sm_90 and sm_75, and the tiled kernels on ILGPU's CPU
/// accelerator shaped like a GPU against the reference.</summary>
internal static class Dry
{
    public static int Run()
    {
        var kernels = KernelCatalog.All();
        var failed = new HashSet<string>(StringComparer.Ordinal);
        Console.WriteLine($"PTX from ILGPU's PTX backend (no GPU needed) for sm_90 and sm_75; figures from the sm_90 PTX.");
        Console.WriteLine("Main loop: the innermost loop with a barrier (tiled kernels), else the loop with the most FMAs.");
        Console.WriteLine("FMA = fma instructions + mul.f32 feeding an add.f32 (ptxas contracts the pair); global load = ld.global or generic ld.");
        Console.WriteLine("Static counts: both sides of a runtime branch count (Gemm.TiledBackwardWeights reads x or dy by w's layout: 6 loads run per K step).");
        Console.WriteLine($"{"kernel",-34} {"sm_90",-6} {"sm_75",-6} {"shared B",8} {"loads",6} {"FMAs",6} {"FMA/load",9}  goal >= 8");
        foreach (var k in kernels)
        {
            PtxFigures? f90 = null, f75 = null;
            string e90 = "ok", e75 = "ok";
            try
            {
                f90 = Ptx.Compile(k.Method, k.ExplicitlyGrouped, CudaArchitecture.SM_90);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                e90 = "FAIL";
                failed.Add(k.Name);
                Console.WriteLine($"  {k.Name}: sm_90 PTX failed: {e.GetType().Name}: {e.Message}");
            }
            try
            {
                f75 = Ptx.Compile(k.Method, k.ExplicitlyGrouped, CudaArchitecture.SM_75);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                e75 = "FAIL";
                failed.Add(k.Name);
                Console.WriteLine($"  {k.Name}: sm_75 PTX failed: {e.GetType().Name}: {e.Message}");
            }
            if (!k.ConvOrGemm)
                continue;
            string ratio = f90 == null ? "-" : double.IsInfinity(f90.FmaPerLoad) ? "inf" : f90.FmaPerLoad.ToString("F1", CultureInfo.InvariantCulture);
            string goal = !k.IsTiled ? "(simple reference kernel)"
                : k.Name.Contains("Depthwise", StringComparison.Ordinal) ? "n/a (depthwise: KH*KW FMAs per input, memory-bound)"
                : f90 != null && f90.FmaPerLoad >= 8 ? "met" : "NOT met";
            if (goal == "NOT met")
                failed.Add(k.Name);
            Console.WriteLine($"{k.Name,-34} {e90,-6} {e75,-6} {f90?.SharedBytes,8} {f90?.LoopGlobalLoads,6} {f90?.LoopFmas,6} {ratio,9}  {goal}");
        }
        int others = kernels.Count(k => !k.ConvOrGemm);
        Console.WriteLine($"{others} other kernels (element-wise, pooling, reductions, ...) compiled for both targets: {others - kernels.Count(k => !k.ConvOrGemm && failed.Contains(k.Name))} ok.");

        Console.WriteLine();
        using var backend = IlgpuBackend.CreateTiledCpu();
        Console.WriteLine($"Tiled kernels on {backend.DeviceDescription} vs the double-precision reference (|a-b| <= 1e-5 + 1e-4 |ref|):");
        using var reference = new ReferenceBackend();
        var checks = new Checks(backend, reference);
        checks.RunAll();
        foreach (var r in checks.Results.Where(r => !r.Ok))
            failed.Add(r.Kernel);
        var known = kernels.Select(k => k.Name).ToHashSet(StringComparer.Ordinal);
        var unknown = checks.Results.Select(r => r.Kernel).Where(n => !known.Contains(n)).Distinct().ToList();
        foreach (var n in unknown)
        {
            Console.WriteLine($"  check names an unknown kernel: {n}");
            failed.Add(n);
        }
        var tiledUnchecked = kernels.Where(k => k.IsTiled && checks.Results.All(r => r.Kernel != k.Name)).ToList();
        foreach (var k in tiledUnchecked)
        {
            Console.WriteLine($"  tiled kernel without a CPU-accelerator check: {k.Name}");
            failed.Add(k.Name);
        }
        Console.WriteLine($"gpu suite: {kernels.Count + unknown.Count} kernels checked, {failed.Count} failed");
        return failed.Count == 0 ? 0 : 1;
    }
}
