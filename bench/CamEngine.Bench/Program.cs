using BenchmarkDotNet.Running;

namespace CamEngine.Bench;

internal static class Program
{
    /// <summary>The bench tool's own modes, by their first argument (each gets all the arguments); anything else goes to
    /// BenchmarkDotNet.</summary>
    private static readonly Dictionary<string, Action<string[]>> Modes = new(StringComparer.Ordinal)
    {
        ["nhwc-copy"] = _ => NhwcCopyTiming.Run(),
        ["gemm"] = GemmTiming.Run,
        ["layout"] = LayoutTiming.Run,
        ["parallel"] = ParallelTiming.Run,
        ["layer"] = LayerTiming.Run,
        ["loop"] = LoopTiming.Run,
        ["profile"] = Profile.Run,
        ["resnet18"] = TorchLike.Run,
        ["ort"] = OrtComparison.Run,
        ["fidelity"] = Fidelity.Run,
        ["depthwise"] = _ => DepthwiseTiming.Run(),
        ["model"] = ModelTiming.Run,
    };

    private static void Main(string[] args)
    {
        if (args.Length > 0 && Modes.TryGetValue(args[0], out var mode))
        {
            mode(args);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
