using System.Runtime.Intrinsics;

namespace CamEngine.Backends.Cpu;

/// <summary>The vector width the managed CPU kernels use.</summary>
internal enum CpuSimd
{
    /// <summary>Plain scalar loops (any machine).</summary>
    Scalar = 0,

    /// <summary>256-bit vectors (AVX2 with FMA, or whatever the JIT maps <see cref="Vector256{T}"/> to).</summary>
    Vector256 = 1,

    /// <summary>512-bit vectors (AVX-512F).</summary>
    Vector512 = 2,
}

/// <summary>What this machine runs best.</summary>
internal static class CpuSimdDetect
{
    /// <summary>The widest hardware-accelerated width.</summary>
    public static CpuSimd Best =>
        Vector512.IsHardwareAccelerated ? CpuSimd.Vector512
        : Vector256.IsHardwareAccelerated ? CpuSimd.Vector256
        : CpuSimd.Scalar;
}

/// <summary>What the managed CPU backend would run at on this machine (for device listings).</summary>
internal static class CpuSimdInfo
{
    /// <summary>The widest hardware-accelerated vector width.</summary>
    public static CpuSimd Best => CpuSimdDetect.Best;
}
