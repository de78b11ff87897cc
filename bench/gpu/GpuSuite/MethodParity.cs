using System.Diagnostics;
using System.Globalization;
using CamEngine.Methods;
using CamEngine.Onnx;

namespace CamEngine.GpuSuite;

/// <summary>
/// <c>--methods DEVICE</c>: every method the model can run, on DEVICE (cuda) and on the managed CPU backend, on the
/// same photo, with the same seed; the maps are compared. The models cover the graph kinds the engine runs: the
/// bundled tiny ResNet (residual CNN) and three converted fixtures (MobileNetV2: depthwise and clip; ConvNeXt:
/// LayerNorm and channels-last layers; ViT: tokens, attention, batched matmul). Maps are in [0, 1]; a method
/// passes when the largest |cuda - cpu| is at most 1e-3, and is listed as "close" (not a failure) up to 2e-2, since
/// a few methods pick masks or channels by rank and a float-order difference can swap two near-equal ones.
/// </summary>
internal static class MethodParity
{
    private const double Tight = 1e-3, Loose = 2e-2;

    public static int Run(string device, string root)
    {
        string photo = Path.Combine(root, "models/images/chelsea.png");
        var models = new List<(string Name, Func<byte[]> Bytes)>
        {
            ("tiny_resnet", () => File.ReadAllBytes(Path.Combine(root, "models/tiny_resnet.safetensors"))),
            ("mobilenet_v2", () => Convert(root, "families/mobilenet_v2.opset17.onnx")),
            ("convnext", () => Convert(root, "families/convnext.opset17.onnx")),
            ("vit", () => Convert(root, "transformers/vit.opset17.onnx")),
        };
        int failed = 0, checkedCount = 0, close = 0;
        Console.WriteLine($"Every applicable method on {device} vs the managed CPU backend, photo chelsea.png, seed 0.");
        Console.WriteLine($"{"model",-13} {"method",-22} {"max|map diff|",14} {"raw rel",10} {"cpu s",7} {device + " s",7}  verdict");
        foreach (var (name, bytes) in models)
        {
            byte[] file = bytes();
            using var cpu = CamModel.Load(file, new CamModelOptions { Device = "cpu", BatchSize = 1 });
            using var gpu = CamModel.Load(file, new CamModelOptions { Device = device, BatchSize = 1 });
            foreach (var method in CamModel.Methods)
            {
                var options = new ExplainOptions { Seed = 0 };
                CamResult a;
                var sw = Stopwatch.StartNew();
                try
                {
                    a = cpu.Explain(photo, method, options);
                }
                catch (Exception e) when (e is MethodNotApplicableException or UnsupportedTargetException)
                {
                    continue;
                }
                double cpuS = sw.Elapsed.TotalSeconds;
                sw.Restart();
                CamResult b;
                try
                {
                    b = gpu.Explain(photo, method, options);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    failed++;
                    Console.WriteLine($"{name,-13} {method.Name,-22} {device} threw {e.GetType().Name}: {e.Message}");
                    continue;
                }
                double gpuS = sw.Elapsed.TotalSeconds;
                checkedCount++;
                double mapDiff = MaxAbs(a.Map, b.Map);
                double rawRel = MaxAbs(a.Explanation.Raw.Data, b.Explanation.Raw.Data)
                    / Math.Max(1e-30, a.Explanation.Raw.Data.Max(v => Math.Abs((double)v)));
                string verdict = double.IsNaN(mapDiff) || mapDiff > Loose ? "FAIL" : mapDiff > Tight ? "close" : "ok";
                if (verdict == "FAIL")
                    failed++;
                else if (verdict == "close")
                    close++;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-13} {method.Name,-22} {mapDiff,14:E2} {rawRel,10:E2} {cpuS,7:F2} {gpuS,7:F2}  {verdict}"));
            }
        }
        Console.WriteLine($"method parity: {checkedCount} maps compared, {close} close, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static byte[] Convert(string root, string fixture) =>
        OnnxConversion.Convert(File.ReadAllBytes(Path.Combine(root, "tests/CamEngine.Tests/fixtures", fixture)));

    private static double MaxAbs(float[] a, float[] b)
    {
        if (a.Length != b.Length)
            return double.NaN;
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(d))
                return double.NaN;
            m = Math.Max(m, d);
        }
        return m;
    }
}
