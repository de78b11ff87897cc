namespace CamEngine;

/// <summary>A device this machine offers, as <see cref="CamModel.ListDevices"/> reports it.</summary>
/// <param name="Kind">What <see cref="CamModelOptions.Device"/> takes to pick this kind of device: <c>cpu</c>,
/// <c>ilgpu-cpu</c>, <c>cuda</c> or <c>opencl</c> (a kind picks its first device).</param>
/// <param name="Name">The device in words: accelerator name, or the CPU's vector width and cores.</param>
/// <param name="MemoryBytes">Device memory; for the CPU backends the memory available to this process.</param>
/// <param name="UsedByAuto">True for the one device <c>auto</c> picks (the first CUDA device, else the first
/// OpenCL device, else the managed CPU backend).</param>
public sealed record DeviceInfo(string Kind, string Name, long MemoryBytes, bool UsedByAuto);
