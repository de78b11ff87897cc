using System.Globalization;
using System.Reflection;
using CamEngine.Backends;

namespace CamEngine.Cli;

/// <summary>
/// The <c>cam</c> command. Exit codes: 0 success; 2 bad usage or bad input (one line on stderr);
/// 1 an unexpected internal error (a bug: the message and stack go to stderr).
/// </summary>
internal static class Program
{
    internal const string Usage = """
        cam: explain CNN decisions with class activation maps, on CUDA, OpenCL or the CPU, without an ML runtime.

        usage: cam <command> [options]

        commands:
          convert MODEL.onnx -o MODEL.safetensors   convert an ONNX model to a CamEngine model file
          info MODEL                                layers, output shapes, parameters, suggested CAM layers
          predict MODEL IMAGE... [--top 5]          classify images
          explain MODEL IMAGE... --method NAME      write class activation maps (overlay PNG, optional .npy)
          eval MODEL IMAGE... --method NAMES        faithfulness metrics of the maps (avg drop, deletion, ROAD, ...)
          methods                                   list the explanation methods
          devices                                   list the devices (managed CPU, and what ILGPU sees)
          train -o MODEL.safetensors                train a CAM-ready classifier on Fashion-MNIST

        options for every command: --help (-h); at the top level --version prints the version and the devices.
        IMAGE: a PNG, JPEG or BMP file, or a preprocessed float32 .npy of shape (C,H,W) or (N,C,H,W).
        Devices: --device auto|cpu|ilgpu-cpu|cuda|opencl|reference, or the CAMENGINE_DEVICE variable.
        """;

    private static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            stdout.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "--version")
        {
            if (args.Length > 1)
            {
                stderr.WriteLine($"cam: --version takes no arguments, got '{args[1]}'");
                return 2;
            }
            stdout.WriteLine($"cam {Version}");
            foreach (var d in SafeDevices())
                stdout.WriteLine($"  {d}");
            return 0;
        }
        string command = args[0];
        var rest = args.Skip(1).ToArray();
        try
        {
            return command switch
            {
                "convert" => ConvertCommand.Run(rest, stdout),
                "info" => InfoCommand.Run(rest, stdout),
                "predict" => PredictCommand.Run(rest, stdout),
                "explain" => ExplainCommand.Run(rest, stdout, stderr),
                "eval" => EvalCommand.Run(rest, stdout, stderr),
                "methods" => MethodsCommand.Run(rest, stdout),
                "devices" => DevicesCommand.Run(rest, stdout),
                "train" => TrainCommand.Run(rest, stdout),
                _ => throw new UsageException($"unknown command '{command}'"),
            };
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"cam {command}: {e.Message} (see `cam {(command.StartsWith('-') ? "" : command + " ")}--help`)");
            return 2;
        }
        catch (CamEngineException e)
        {
            stderr.WriteLine($"cam {command}: {OneLine(e.Message)}");
            return 2;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"cam {command}: {OneLine(e.Message)}");
            return 2;
        }
        catch (UnauthorizedAccessException e)
        {
            stderr.WriteLine($"cam {command}: {OneLine(e.Message)}");
            return 2;
        }
    }

    internal static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";

    internal static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>A table of every device (the managed CPU backend, then each accelerator ILGPU sees): the
    /// <c>--device</c> kind that opens it, its memory, whether <c>--device auto</c> uses it, and its name. When ILGPU
    /// cannot enumerate (a broken driver), the managed backend's line and the reason.</summary>
    internal static IReadOnlyList<string> SafeDevices()
    {
        const string header = "kind        memory           auto  device";
        static string Line(DeviceInfo d)
        {
            string where = d.Kind is "cpu" or "ilgpu-cpu" ? "host" : "";
            return string.Create(CultureInfo.InvariantCulture,
                $"{d.Kind,-9}  {d.MemoryBytes >> 20,7} MiB {where,-4}  {(d.UsedByAuto ? "yes" : "no"),-4}  {d.Name}");
        }
        try
        {
            return [header, .. Devices.List().Select(Line)];
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var managed = new DeviceInfo("cpu", $"managed SIMD CPU backend ({CamEngine.Backends.Cpu.CpuSimdInfo.Best}, "
                + $"{Environment.ProcessorCount} cores)", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, true);
            return [header, Line(managed), $"(ILGPU could not list devices: {OneLine(e.Message)})"];
        }
    }
}
