using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CamEngine;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Methods;
using CamEngine.Tensors;

namespace CamEngine.GpuSuite;

/// <summary>
/// The suite on a CUDA device: the kernel checks against the reference, then one table of timings beside PyTorch's
/// (read from the JSON that bench/gpu/torch_suite.py wrote on the same machine): ResNet-50's conv layers forward,
/// backward-data and backward-weights (PyTorch/cuDNN fp32 with TF32 off and on), ResNet-50 Grad-CAM throughput at
/// batch 64, ResNet-18 Score-CAM per image. Every timing is the median of several synchronized calls after warm-up.
/// <c>--layers FILE</c> only writes ResNet-50's conv layer list (the PyTorch script times the same list).
/// </summary>
internal static class GpuTiming
{
    private const int ConvBatch = 32, GradCamBatch = 64;

    public static int Run(string[] args)
    {
        string? torchPath = Option(args, "--torch");
        bool quick = args.Contains("--quick");
        using var backend = IlgpuBackend.TryCreate("cuda")
            ?? throw new CamEngineException("no CUDA device here: run `bench/gpu/run.sh --dry`, or run on a machine with an NVIDIA GPU and its driver");
        Console.WriteLine($"device: {backend.DeviceDescription}; tiled kernels: {backend.UsesTiledKernels}");

        Console.WriteLine("checks on CUDA against the double-precision reference:");
        var checks = new Checks(backend, new ReferenceBackend());
        checks.RunAll();
        var failedKernels = checks.Results.Where(r => !r.Ok).Select(r => r.Kernel).ToHashSet(StringComparer.Ordinal);

        var torch = torchPath != null && File.Exists(torchPath)
            ? JsonDocument.Parse(File.ReadAllText(torchPath)).RootElement
            : (JsonElement?)null;
        if (torch == null)
            Console.WriteLine("no PyTorch results (--torch FILE): the PyTorch columns stay empty");
        int reps = quick ? 3 : 7;

        Console.WriteLine();
        Console.WriteLine($"ResNet-50 conv layers at batch {ConvBatch}, 224x224, fp32: engine ms | PyTorch/cuDNN ms TF32 off / on | engine / cuDNN (TF32 off)");
        Console.WriteLine($"{"layer",-26} {"CxH->K",-15} {"n",2} | {"fwd",7} {"torch",15} {"ratio",5} | {"bwd-data",8} {"torch",15} {"ratio",5} | {"bwd-w",7} {"torch",15} {"ratio",5}");
        var fwdRatios = new List<double>();
        foreach (var layer in ResNets.ResNet50Convs())
        {
            var (f, d, w) = TimeConv(backend, layer, reps);
            var tf = Torch(torch, layer.Name, "fwd");
            var td = Torch(torch, layer.Name, "bwd_data");
            var tw = Torch(torch, layer.Name, "bwd_weights");
            if (tf.Off > 0)
                fwdRatios.Add(f / tf.Off);
            Console.WriteLine($"{layer.Name,-26} {$"{layer.C}x{layer.H}->{layer.K}",-15} {layer.Count,2} | {f,7:F3} {Pair(tf),15} {Ratio(f, tf.Off),5} | {d,8:F3} {Pair(td),15} {Ratio(d, td.Off),5} | {w,7:F3} {Pair(tw),15} {Ratio(w, tw.Off),5}");
        }
        if (fwdRatios.Count > 0)
        {
            double geo = Math.Exp(fwdRatios.Average(Math.Log));
            Console.WriteLine($"forward, geometric mean over the layers: engine takes {geo:F2}x cuDNN's time (TF32 off), i.e. {100 / geo:F0}% of cuDNN's speed (goal: >= 50%)");
        }

        Console.WriteLine();
        var (passes, full) = GradCamThroughput(backend, quick ? 2 : 5);
        var tg = torch?.TryGetProperty("gradcam", out var g) == true ? g : (JsonElement?)null;
        double torchPasses = tg?.GetProperty("passes_ms").GetDouble() ?? 0, torchFull = tg?.GetProperty("full_ms").GetDouble() ?? 0;
        Console.WriteLine($"ResNet-50 Grad-CAM, batch {GradCamBatch}: engine {Rate(passes)} (forward + backward to layer4), {Rate(full)} (whole method, maps at 224x224 on the host)");
        if (tg != null)
            Console.WriteLine($"                             PyTorch eager {Rate(torchPasses)} (forward + backward), {Rate(torchFull)} (whole method, maps copied to the host)");

        double score = ScoreCamPerImage(backend, quick ? 1 : 3);
        double torchScore = torch?.TryGetProperty("scorecam", out var sc) == true ? sc.GetProperty("per_image_ms").GetDouble() : 0;
        Console.WriteLine($"ResNet-18 Score-CAM, one 224x224 image (512 masked forwards in batches of 32): engine {score:F1} ms" +
                          (torchScore > 0 ? $", PyTorch (pytorch-grad-cam's steps) {torchScore:F1} ms" : ""));

        int kernels = checks.Results.Select(r => r.Kernel).Distinct().Count();
        Console.WriteLine($"gpu suite: {kernels} kernels checked, {failedKernels.Count} failed");
        return failedKernels.Count == 0 ? 0 : 1;
    }

    /// <summary>Writes ResNet-50's conv layer list as JSON for the PyTorch script.</summary>
    public static int WriteLayers(string path)
    {
        var layers = ResNets.ResNet50Convs().Select(l => new
        {
            name = l.Name, c = l.C, h = l.H, k = l.K, kernel = l.Kernel, stride = l.Stride, pad = l.Pad, count = l.Count,
        });
        File.WriteAllText(path, JsonSerializer.Serialize(new { batch = ConvBatch, gradcam_batch = GradCamBatch, layers }));
        return 0;
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static (double Off, double On) Torch(JsonElement? torch, string layer, string pass)
    {
        if (torch is not { } t || !t.TryGetProperty("layers", out var l) || !l.TryGetProperty(layer, out var e) || !e.TryGetProperty(pass, out var p))
            return (0, 0);
        return (p[0].GetDouble(), p[1].GetDouble());
    }

    private static string Pair((double Off, double On) t) => t.Off > 0 ? $"{t.Off:F3}/{t.On:F3}" : "-";

    private static string Ratio(double engine, double torch) => torch > 0 ? (engine / torch).ToString("F2", CultureInfo.InvariantCulture) : "-";

    private static string Rate(double ms) => ms > 0 ? $"{GradCamBatch * 1000 / ms:F0} img/s ({ms:F1} ms)" : "-";

    /// <summary>Median milliseconds of <paramref name="reps"/> synchronized calls after two warm-up calls.</summary>
    private static double Median(Backend b, int reps, Action call)
    {
        call();
        call();
        b.Synchronize();
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            call();
            b.Synchronize();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times[reps / 2];
    }

    private static (double Fwd, double BwdData, double BwdWeights) TimeConv(Backend b, ConvLayer l, int reps)
    {
        var s = new ConvShape(ConvBatch, l.C, l.H, l.H, l.K, l.Kernel, l.Kernel, l.Stride, l.Stride, l.Pad, l.Pad, l.Pad, l.Pad, 1, 1, 1);
        var rng = new Random(5);
        float[] R(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var x = b.Upload(R((long)s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        using var w = b.Upload(R(s.WeightLength), s.K, s.C, s.KH, s.KW);
        using var bias = b.Upload(R(s.K), s.K);
        using var dy = b.Upload(R((long)s.N * s.K * s.OH * s.OW), s.N, s.K, s.OH, s.OW);
        using var y = b.Allocate(s.N, s.K, s.OH, s.OW);
        using var dx = b.Allocate(x.Shape);
        using var dw = b.Allocate(w.Shape);
        return (Median(b, reps, () => b.Conv2d(x, w, bias, y, s)),
            Median(b, reps, () => b.Conv2dBackwardData(dy, w, dx, s)),
            Median(b, reps, () => b.Conv2dBackwardWeights(x, dy, dw, s)));
    }

    private static HostTensor RandomImages(int n, int seed)
    {
        var rng = new Random(seed);
        var t = new HostTensor([n, 3, 224, 224]);
        for (int i = 0; i < t.Length; i++)
            t.Data[i] = (float)(rng.NextDouble() * 4 - 2);
        return t;
    }

    private static (double Passes, double Full) GradCamThroughput(IlgpuBackend b, int reps)
    {
        using var model = DeviceModel.Load(ResNets.Build(bottleneck: true, seed: 50), b);
        var images = RandomImages(GradCamBatch, 1);
        using var x = b.Upload(images);
        var seedData = new float[GradCamBatch * 1000];
        for (int i = 0; i < GradCamBatch; i++)
            seedData[i * 1000 + 281] = 1f;
        using var seed = b.Upload(seedData, GradCamBatch, 1000);
        double passes = Median(b, reps, () =>
        {
            using var pass = model.ForwardFor(x, [ResNets.Layer4]);
            using var grads = model.Backward(pass, seed, new BackwardRequest { Layers = [ResNets.Layer4] });
        });
        var explainer = new Explainer(model);
        var options = new ExplainOptions { Layers = [ResNets.Layer4] };
        double full = Median(b, reps, () => explainer.Explain(images, new GradCam(), options));
        return (passes, full);
    }

    private static double ScoreCamPerImage(IlgpuBackend b, int reps)
    {
        using var model = DeviceModel.Load(ResNets.Build(bottleneck: false, seed: 18), b);
        var image = RandomImages(1, 2);
        var explainer = new Explainer(model);
        var options = new ExplainOptions { Layers = [ResNets.Layer4] };
        return Median(b, reps, () => explainer.Explain(image, new ScoreCam(), options));
    }
}
