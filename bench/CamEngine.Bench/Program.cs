using BenchmarkDotNet.Running;

namespace CamEngine.Bench;

internal static class Program
{
    private static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "nhwc-copy")
        {
            NhwcCopyTiming.Run();
            return;
        }
        if (args.Length > 0 && args[0] == "gemm")
        {
            GemmTiming.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "layout")
        {
            LayoutTiming.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "parallel")
        {
            ParallelTiming.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "layer")
        {
            LayerTiming.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "profile")
        {
            Profile.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "resnet18")
        {
            TorchLike.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "ort")
        {
            OrtComparison.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "fidelity")
        {
            Fidelity.Run(args);
            return;
        }
        if (args.Length > 0 && args[0] == "depthwise")
        {
            DepthwiseTiming.Run();
            return;
        }
        if (args.Length > 0 && args[0] == "model")
        {
            ModelTiming.Run(args);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
