using System.Diagnostics;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// The CPU depthwise forward's row form against the forms before it (per-plane, channels-last on small planes) on
/// MobileNetV2's 3x3 shapes at batch 1, in cache: the same x, w and y, the two settings of
/// <see cref="DepthwiseConv.RowsForm"/> alternating call by call, 40 warm-up calls then the median of 180 each, with
/// the clip MobileNetV2 fuses. Prints <c>dw CxHxW sS: rows R us, old O us</c>.
/// Run: dotnet CamEngine.Bench.dll depthwise
/// </summary>
internal static unsafe class DepthwiseTiming
{
    public static void Run()
    {
        (int C, int H, int S)[] shapes =
        [
            (32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (192, 28, 2), (384, 14, 1), (576, 14, 1),
            (576, 14, 2), (960, 7, 1),
        ];
        foreach (var (c, h, st) in shapes)
        {
            var s = new ConvShape(1, c, h, h, c, 3, 3, st, st, 1, 1, 1, 1, 1, 1, c);
            var rng = new Random(1);
            var x = GC.AllocateUninitializedArray<float>(c * h * h + 64, pinned: true);
            var y = GC.AllocateUninitializedArray<float>(c * s.OH * s.OW + 64, pinned: true);
            var w = new float[c * 9];
            var b = new float[c];
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)rng.NextDouble();
            for (int i = 0; i < w.Length; i++)
                w[i] = (float)rng.NextDouble();
            var t = new[] { new List<double>(), new List<double>() };
            fixed (float* px = x, py = y, pw = w, pb = b)
            {
                float* X = px, Y = py, W = pw, B = pb;
                for (int r = 0; r < 400; r++)
                {
                    int k = r & 1;
                    DepthwiseConv.RowsForm = k == 0;
                    long t0 = Stopwatch.GetTimestamp();
                    DepthwiseConv.Forward(X, W, B, null, Y, s, CpuSimd.Vector512, EpilogueActivation.Clip, 0f, 6f);
                    if (r >= 40)
                        t[k].Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                }
            }
            DepthwiseConv.RowsForm = true;
            Console.WriteLine($"dw {c}x{h}x{h} s{st}: rows {Median(t[0]):F1} us, old {Median(t[1]):F1} us");
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
