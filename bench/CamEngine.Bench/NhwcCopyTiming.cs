using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// `nhwc-copy`: the direct form's NCHW to padded-NHWC copy (<see cref="DirectConv.ToPaddedNhwc"/>) on ResNet-50's
/// strided 1x1 inputs and a padded 3x3 input, hot (the same input again and again) and cold (after a 64 MB sweep, as a
/// block's input is when its downsample runs), with <see cref="DirectConv.Prefetch"/> on and off alternating.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- nhwc-copy
/// </summary>
internal static unsafe class NhwcCopyTiming
{
    public static void Run()
    {
        // (channels, input side, stride, pad)
        foreach (var (c, side, stride, pad) in new[] { (256, 56, 2, 0), (512, 28, 2, 0), (1024, 14, 2, 0), (128, 56, 1, 1) })
            Run(c, side, stride, pad);
    }

    private static void Run(int c, int side, int stride, int pad)
    {
        var rng = new Random(1);
        var x = new float[c * side * side];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)rng.NextDouble();
        int k = pad > 0 ? 3 : 1;
        var (s, rowStep, colStep, hp, wp) =
            DirectConv.CopyPlan(new ConvShape(1, c, side, side, 64, k, k, stride, stride, pad, pad, pad, pad, 1, 1, 1));
        var buf = new float[(long)hp * wp * DirectConv.PixelStride(c) + 64];
        var sweep = new float[16 << 20];
        fixed (float* xp = x, bp = buf)
        {
            float* px = xp, pb = bp;
            void Copy() => DirectConv.ToPaddedNhwc(px, 0, 1, s, side, side, rowStep, colStep, hp, wp, pb);
            var hot = new List<double>();
            var on = new List<double>();
            var off = new List<double>();
            for (int r = 0; r < 40; r++)
            {
                DirectConv.Prefetch = true;
                long t0 = Stopwatch.GetTimestamp();
                Copy();
                hot.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                DirectConv.Prefetch = r % 2 == 0;
                for (int j = 0; j < sweep.Length; j += 16)
                    sweep[j] += 1f;
                t0 = Stopwatch.GetTimestamp();
                Copy();
                (r % 2 == 0 ? on : off).Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            DirectConv.Prefetch = true;
            static string Median(List<double> v) => v.Order().ElementAt(v.Count / 2).ToString("F3", CultureInfo.InvariantCulture);
            Console.WriteLine($"nhwc-copy {c}x{side}x{side} {(k == 1 ? "1x1" : "3x3")}/{stride} pad {pad}: hot {Median(hot)} ms; "
                              + $"after a 64 MB sweep: prefetch {Median(on)} ms, none {Median(off)} ms (medians)");
        }
    }
}
