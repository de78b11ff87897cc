using System.Diagnostics;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// The CPU depthwise forward's row form (or with DW_FLAT=1 its flat form) against the forms before it on
/// MobileNetV2's 3x3 shapes and EfficientNet-B0's and ConvNeXt-T's larger kernels at batch 1, in cache: the same x,
/// w and y, the two settings of <see cref="DepthwiseConv.RowsForm"/> (or <see cref="DepthwiseConv.FlatForm"/>)
/// alternating call by call, 40 warm-up calls then the median of 180 each, with the clip MobileNetV2 fuses. Instead of
/// the row form, DW_GATHER=1 switches <see cref="DepthwiseConv.MaskedGatherTail"/>, DW_PREFETCH=1
/// <see cref="DepthwiseConv.PrefetchPlanes"/> and DW_ZEROS=1 <see cref="DepthwiseConv.KeepZeros"/>; DW_COLD=1 writes
/// 64 MB before each call (the data comes from memory), DW_SILU=1 fuses SiLU instead of the clip and DW_SIGNED=1 draws
/// x and w from [-1, 1) instead of [0, 1). Prints <c>dw CxHxW kK sS: rows R us, old O us</c> (the first setting's name).
/// Run: dotnet CamEngine.Bench.dll depthwise
/// </summary>
internal static unsafe class DepthwiseTiming
{
    public static void Run()
    {
        (int C, int H, int S, int K)[] shapes =
        [
            (32, 112, 1, 3), (96, 112, 2, 3), (144, 56, 1, 3), (144, 56, 2, 3), (192, 28, 1, 3), (192, 28, 2, 3), (384, 14, 1, 3),
            (576, 14, 1, 3), (576, 14, 2, 3), (960, 7, 1, 3), (672, 14, 1, 5), (1152, 7, 1, 5), (384, 14, 1, 7), (768, 7, 1, 7), (144, 56, 2, 5), (240, 28, 1, 5), (240, 28, 2, 3), (672, 14, 2, 5),
        ];
        bool flatSwitch = Environment.GetEnvironmentVariable("DW_FLAT") == "1";
        var sweep = Environment.GetEnvironmentVariable("DW_COLD") == "1" ? new float[16 << 20] : null;
        bool gatherSwitch = Environment.GetEnvironmentVariable("DW_GATHER") == "1";
        bool prefetchSwitch = Environment.GetEnvironmentVariable("DW_PREFETCH") == "1";
        bool zerosSwitch = Environment.GetEnvironmentVariable("DW_ZEROS") == "1";
        bool signed = Environment.GetEnvironmentVariable("DW_SIGNED") == "1";
        var activation = Environment.GetEnvironmentVariable("DW_SILU") == "1" ? EpilogueActivation.Silu : EpilogueActivation.Clip;
        foreach (var (c, h, st, kk) in shapes)
        {
            int pad = kk / 2;
            var s = new ConvShape(1, c, h, h, c, kk, kk, st, st, pad, pad, pad, pad, 1, 1, c);
            var rng = new Random(1);
            var x = GC.AllocateUninitializedArray<float>(c * h * h + 64, pinned: true);
            var y = GC.AllocateUninitializedArray<float>(c * s.OH * s.OW + 64, pinned: true);
            var w = new float[c * kk * kk];
            var b = new float[c];
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)(signed ? 2 * rng.NextDouble() - 1 : rng.NextDouble());
            for (int i = 0; i < w.Length; i++)
                w[i] = (float)(signed ? 2 * rng.NextDouble() - 1 : rng.NextDouble());
            var t = new[] { new List<double>(), new List<double>() };
            fixed (float* px = x, py = y, pw = w, pb = b)
            {
                float* X = px, Y = py, W = pw, B = pb;
                for (int r = 0; r < 400; r++)
                {
                    int k = r & 1;
                    if (zerosSwitch)
                        DepthwiseConv.KeepZeros = k == 0;
                    else if (prefetchSwitch)
                        DepthwiseConv.PrefetchPlanes = k == 0;
                    else if (gatherSwitch)
                        DepthwiseConv.MaskedGatherTail = k == 0;
                    else if (flatSwitch)
                        DepthwiseConv.FlatForm = k == 0;
                    else
                        DepthwiseConv.RowsForm = k == 0;
                    if (sweep != null)
                        for (int q = 0; q < sweep.Length; q += 16)
                            sweep[q] += 1f;
                    long t0 = Stopwatch.GetTimestamp();
                    DepthwiseConv.Forward(X, W, B, null, Y, s, CpuSimd.Vector512, activation, 0f, 6f);
                    if (r >= 40)
                        t[k].Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                }
            }
            DepthwiseConv.RowsForm = true;
            DepthwiseConv.FlatForm = true;
            DepthwiseConv.MaskedGatherTail = true;
            DepthwiseConv.PrefetchPlanes = true;
            DepthwiseConv.KeepZeros = true;
            Console.WriteLine($"dw {c}x{h}x{h} k{kk} s{st}: {(zerosSwitch ? "zeros kept" : prefetchSwitch ? "planes prefetched" : gatherSwitch ? "masked gather tail" : flatSwitch ? "flat" : "rows")} {Median(t[0]):F1} us, old {Median(t[1]):F1} us");
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
