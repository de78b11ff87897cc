using CamEngine;
namespace CamEngine.GpuSuite;

internal static class GpuTiming
{
    public static int Run(string[] args) => throw new CamEngineException("not yet");
}
