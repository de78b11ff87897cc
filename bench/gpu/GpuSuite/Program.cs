using System.Reflection;
using CamEngine.GpuSuite;
using CamEngine.Kernels;
using ILGPU.Runtime.Cuda;

if (args.Length > 0 && args[0] == "ptx")
{
    var m = typeof(TiledGemm).GetMethod("Run")!.MakeGenericMethod(typeof(Conv2d.TiledForward));
    var text = Ptx.Text(m, true, CudaArchitecture.SM_90);
    File.WriteAllText("/tmp/run.ptx", text);
    Console.WriteLine(Ptx.Analyze(text));
}
