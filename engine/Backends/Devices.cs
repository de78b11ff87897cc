namespace CamEngine.Backends;

/// <summary>
/// Picks the backend that runs a job. Request values: <c>auto</c> (CUDA, then OpenCL, then the managed CPU
/// backend), <c>cuda</c>, <c>opencl</c>, <c>cpu</c> (the managed SIMD backend, <see cref="Cpu.CpuBackend"/>),
/// <c>ilgpu-cpu</c> (ILGPU's CPU accelerator, which runs the GPU kernels slowly: for testing them) and
/// <c>reference</c> (the double-precision oracle; slow). When no request is given, the environment variable <see cref="EnvironmentVariable"/> decides,
/// then <c>auto</c>.
/// </summary>
internal static class Devices
{
    /// <summary>Environment variable consulted when no device is requested explicitly.</summary>
    public const string EnvironmentVariable = "CAMENGINE_DEVICE";

    /// <summary>Every accepted request value.</summary>
    public static readonly IReadOnlyList<string> Kinds = ["auto", "cpu", "ilgpu-cpu", "cuda", "opencl", "reference"];

    /// <summary>Memory available to this process on the host (what the CPU backends allocate from).</summary>
    internal static long HostMemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Every device this machine offers: the managed CPU backend first, then each accelerator ILGPU sees, each
    /// marked when <c>auto</c> picks it (the first CUDA device, else the first OpenCL device, else the managed CPU
    /// backend: the order <see cref="Open"/> tries). Throws what ILGPU throws when a driver fails to enumerate.
    /// </summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var accelerators = IlgpuBackend.Accelerators();
        int auto = accelerators.ToList().FindIndex(a => a.Kind == "cuda");
        if (auto < 0)
            auto = accelerators.ToList().FindIndex(a => a.Kind == "opencl");
        var list = new List<DeviceInfo>
        {
            new("cpu", $"managed SIMD CPU backend ({Cpu.CpuSimdInfo.Best}, {Environment.ProcessorCount} cores)",
                HostMemoryBytes, auto < 0),
        };
        list.AddRange(accelerators.Select((a, i) => new DeviceInfo(a.Kind, a.Name, a.MemoryBytes, i == auto)));
        return list;
    }

    /// <summary>Opens the requested backend; throws <see cref="CamEngineException"/> when that device is absent.</summary>
    public static Backend Open(string? request = null)
    {
        string kind = (request ?? Environment.GetEnvironmentVariable(EnvironmentVariable) ?? "auto").Trim().ToLowerInvariant();
        if (kind.Length == 0)
            kind = "auto";
        if (!Kinds.Contains(kind))
            throw new CamEngineException($"unknown device '{kind}'; use one of: {string.Join(", ", Kinds)}");
        if (kind == "reference")
            return new ReferenceBackend();
        if (kind == "cpu")
            return new Cpu.CpuBackend();
        if (kind == "auto")
            return IlgpuBackend.TryCreateGpu() ?? (Backend)new Cpu.CpuBackend();
        return IlgpuBackend.TryCreate(kind)
               ?? throw new CamEngineException($"no {kind} device found (see `cam devices`)");
    }
}
