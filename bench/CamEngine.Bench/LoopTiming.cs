using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CamEngine.Bench;

/// <summary>
/// `loop`: one kind of call back to back for a sampling profiler to attribute (bench/perf-breakdown.sh runs it under
/// Linux perf): the engine's output-only forward of a converted model, ONNX Runtime's forward of the same ONNX file
/// (configured as the `ort` mode configures it), or one conv layer in a given form. Random inputs; prints the calls
/// made and their median and best times. Not a comparison: nothing alternates, so the machine's drift over the run
/// is in the times.
/// Run: dotnet CamEngine.Bench.dll loop model MODEL.safetensors BATCH SECONDS
///      dotnet CamEngine.Bench.dll loop ort MODEL.onnx BATCH SECONDS
///      dotnet CamEngine.Bench.dll loop conv N C K H KH STRIDE FORM|auto SECONDS   (square planes, pad KH/2)
/// </summary>
internal static class LoopTiming
{
    private const string Usage = "usage: loop model MODEL.safetensors BATCH SECONDS | loop ort MODEL.onnx BATCH SECONDS | "
                                 + "loop conv N C K H KH STRIDE FORM|auto SECONDS";

    public static void Run(string[] args)
    {
        if (args.Length < 5)
            throw new ArgumentException(Usage);
        switch (args[1])
        {
            case "model" when args.Length == 5:
                Model(args[2], Int(args[3]), Seconds(args[4]));
                break;
            case "ort" when args.Length == 5:
                Ort(args[2], Int(args[3]), Seconds(args[4]));
                break;
            case "conv" when args.Length == 10:
                Conv(LayerTiming.Shape(args[2..8]), args[8], Seconds(args[9]));
                break;
            default:
                throw new ArgumentException(Usage);
        }
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static double Seconds(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && v <= 3600
            ? v
            : throw new ArgumentException($"SECONDS must be a number of seconds from 0 to 3600, got '{s}'");

    private static float[] Random(long count)
    {
        var rng = new Random(3);
        return Enumerable.Range(0, checked((int)count)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static void Model(string path, int batch, double seconds)
    {
        using var backend = Devices.Open("cpu");
        using var model = DeviceModel.Load(ModelFile.Load(path), backend);
        int[] shape = [batch, .. model.Graph.InputShape];
        using var input = backend.Upload(Random(shape.Aggregate(1L, (a, b) => a * b)), shape);
        Loop($"engine forward {Path.GetFileName(path)} batch {batch}, {backend.DeviceDescription}", seconds, () =>
        {
            using var pass = model.ForwardOutput(input);
            backend.Synchronize();
        });
    }

    private static void Ort(string onnx, int batch, double seconds)
    {
        using var options = OrtComparison.Options();
        using var session = new InferenceSession(onnx, options);
        var (name, meta) = session.InputMetadata.First();
        int[] shape = meta.Dimensions.ToArray();
        shape[0] = batch;
        if (shape.Any(d => d <= 0))
            throw new ArgumentException($"{onnx}: input '{name}' has a dimension other than the batch that is not fixed: [{string.Join(", ", meta.Dimensions)}]");
        var feeds = new[] { NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(Random(shape.Aggregate(1L, (a, b) => a * b)), shape)) };
        Loop($"ORT forward {Path.GetFileName(onnx)} batch {batch}, {Environment.ProcessorCount} intra-op threads", seconds, () =>
        {
            using var results = session.Run(feeds);
        });
    }

    private static void Conv(ConvShape s, string form, double seconds)
    {
        using var backend = Devices.Open("cpu");
        var (x, w, b) = LayerTiming.Operands(backend, s, new Random(3));
        using var xd = x;
        using var wd = w;
        using var bd = b;
        using var y = backend.Allocate(s.N, s.K, s.OH, s.OW);
        ConvForm? chosen = form == "auto" ? null : LayerTiming.ParseForm(form);
        CpuConv.FormOverride = chosen;
        try
        {
            Loop($"conv {s.C}->{s.K} {s.KH}x{s.KW}/{s.StrideH} {s.H}->{s.OH} batch {s.N}, form {chosen?.ToString() ?? CpuConv.ChooseForm(s, CpuSimd.Vector512) + " (chosen)"}, "
                 + backend.DeviceDescription, seconds, () =>
            {
                backend.Conv2d(x, w, b, y, s);
                backend.Synchronize();
            });
        }
        finally
        {
            CpuConv.FormOverride = null;
        }
    }

    private static void Loop(string what, double seconds, Action call)
    {
        for (int i = 0; i < 3; i++)
            call();
        var times = new List<double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            long t0 = Stopwatch.GetTimestamp();
            call();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine(FormattableString.Invariant(
            $"loop {what}: {times.Count} calls in {clock.Elapsed.TotalSeconds:F1} s, median {times[times.Count / 2]:F3} ms, best {times[0]:F3} ms"));
    }
}
