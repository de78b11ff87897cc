using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// `layout`: what a channels-last graph layout would buy on ResNet-50's 1x1 stride-1 convs. Each shape runs in the
/// form the CPU backend chooses today (NCHW in and out: <see cref="CpuConv.ChooseForm"/>, the column form reading x
/// in place or the direct form with its NHWC copy and transposed store), in <see cref="DirectConv.ForwardChannelsLast"/>
/// (NHWC in and out, no copy, no transpose) and in <see cref="DirectConv.ForwardBlocked"/> (blocks of 32 channels),
/// the three in rotation, with ReLU fused and, on the expanding convs (a bottleneck's last), the residual add too; hot
/// (the same call again) and cold (after a 64 MB sweep, as a real forward finds its tensors). All three write the
/// same values (checked each shape, reordered).
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- layout [batch ...]
/// </summary>
internal static unsafe class LayoutTiming
{
    public static void Run(string[] args)
    {
        var batches = args.Length > 1 ? args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [1, 8];
        var simd = CpuSimd.Vector512;
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            simd = CpuSimd.Vector256;
        Console.WriteLine($"layout: ResNet-50's 1x1 convs, today's NCHW form against channels-last and blocked by 32, {simd}, {Environment.ProcessorCount} threads; medians of 20");
        foreach (int n in batches)
        {
            var sum = new double[6];
            foreach (var (c, k, side) in new[] { (64, 256, 56), (256, 64, 56), (128, 512, 28), (512, 128, 28),
                         (256, 1024, 14), (1024, 256, 14), (512, 2048, 7), (2048, 512, 7) })
            {
                var r = Shape(n, c, k, side, simd);
                double[] v = [r.TodayHot, r.LastHot, r.BlockHot, r.TodayCold, r.LastCold, r.BlockCold];
                for (int i = 0; i < 6; i++)
                    sum[i] += v[i];
            }
            Console.WriteLine($"layout batch {n}, the eight shapes once each (hot / cold): today {sum[0]:F3} / {sum[3]:F3} ms; channels-last "
                              + $"{sum[1]:F3} / {sum[4]:F3} ({sum[1] / sum[0]:F3} / {sum[4] / sum[3]:F3}); blocked by 32 {sum[2]:F3} / {sum[5]:F3} "
                              + $"({sum[2] / sum[0]:F3} / {sum[5] / sum[3]:F3})");
        }
    }

    private static (double TodayHot, double LastHot, double BlockHot, double TodayCold, double LastCold, double BlockCold) Shape(int n, int c, int k, int side, CpuSimd simd)
    {
        var s = new ConvShape(n, c, side, side, k, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        var rng = new Random(c * 7 + k);
        float[] Fill(long count, double scale)
        {
            var a = GC.AllocateUninitializedArray<float>(checked((int)count), pinned: true);
            for (int i = 0; i < a.Length; i++)
                a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
            return a;
        }
        long hw = (long)side * side;
        var x = Fill(n * c * hw, 1);
        var w = Fill((long)k * c, 1.0 / Math.Sqrt(c));
        var bias = Fill(k, 0.1);
        bool residual = k > c;
        var res = Fill(n * k * hw, 1);
        var xl = ChannelsLast(x, n, c, hw);
        var resl = ChannelsLast(res, n, k, hw);
        var xb = Blocked(x, n, c, hw);
        var resb = Blocked(res, n, k, hw);
        var y = new float[n * k * hw];
        var yl = new float[n * k * hw];
        var yb = new float[n * k * hw];
        var form = CpuConv.ChooseForm(s, simd);
        var sweep = new float[16 << 20];
        fixed (float* px = x, pw = w, pb = bias, pr = res, pxl = xl, prl = resl, py = y, pyl = yl, pxb = xb, prb = resb, pyb = yb)
        {
            float* fx = px, fb = pb, fr = pr, fxl = pxl, frl = prl, fy = py, fyl = pyl, fxb = pxb, frb = prb, fyb = pyb;
            var packedD = DirectConv.PackWeights(pw, s);
            var packedC = form == ConvForm.Column ? CpuConv.PackForwardWeights(pw, s) : null;
            fixed (float* pd = packedD, pc = packedC)
            {
                float* fd = pd, fc = pc;
                var act = EpilogueActivation.Relu;
                void Today()
                {
                    var e = new StoreEpilogue(residual ? fr : null, act);
                    if (form == ConvForm.Column)
                        CpuConv.Forward(fx, fc, fb, fy, s, simd, e);
                    else
                        DirectConv.Forward(fx, fd, fb, fy, s, simd, e);
                }
                void Last() => DirectConv.ForwardChannelsLast(fxl, fd, fb, fyl, s, simd, new StoreEpilogue(residual ? frl : null, act));
                void Block() => DirectConv.ForwardBlocked(fxb, fd, fb, fyb, s, simd, new StoreEpilogue(residual ? frb : null, act));
                Today();
                Last();
                Block();
                var back = ChannelsLast(yl, n, hw, k); // (N, HW, K) -> (N, K, HW)
                var back2 = Unblocked(yb, n, k, hw);
                double worst = 0;
                for (int i = 0; i < y.Length; i++)
                    worst = Math.Max(worst, Math.Max(Math.Abs(y[i] - back[i]), Math.Abs(y[i] - back2[i])) / (1 + Math.Abs(y[i])));
                if (worst > 1e-5)
                    throw new InvalidOperationException($"layout {s}: channels-last differs from today's form by {worst:G3}");
                var times = new List<double>[6]; // hot today, channels-last, blocked; then cold
                for (int i = 0; i < 6; i++)
                    times[i] = [];
                var runs = new Action[] { Today, Last, Block };
                for (int rep = 0; rep < 20; rep++)
                {
                    for (int o = 0; o < 3; o++)
                    {
                        int which = (rep + o) % 3;
                        long t0 = Stopwatch.GetTimestamp();
                        runs[which]();
                        times[which].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                        for (int j = 0; j < sweep.Length; j += 16)
                            sweep[j] += 1f;
                        t0 = Stopwatch.GetTimestamp();
                        runs[which]();
                        times[3 + which].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    }
                }
                double M(int i) => times[i].Order().ElementAt(times[i].Count / 2);
                Console.WriteLine($"layout batch {n} {c}->{k} 1x1 {side}x{side}{(residual ? " +residual" : "")}: today ({form}) hot {M(0):F3} ms, cold {M(3):F3}; "
                                  + $"channels-last {M(1):F3} / {M(4):F3} ({M(1) / M(0):F2} / {M(4) / M(3):F2}); blocked by 32 {M(2):F3} / {M(5):F3} ({M(2) / M(0):F2} / {M(5) / M(3):F2})");
                return (M(0), M(1), M(2), M(3), M(4), M(5));
            }
        }
    }

    /// <summary>(N, C, HW) -> (N, C/32, HW, 32).</summary>
    private static float[] Blocked(float[] src, int n, long c, long hw)
    {
        var dst = GC.AllocateUninitializedArray<float>(src.Length, pinned: true);
        for (int img = 0; img < n; img++)
        for (long ch = 0; ch < c; ch++)
        for (long p = 0; p < hw; p++)
            dst[img * c * hw + ch / 32 * hw * 32 + p * 32 + ch % 32] = src[(img * c + ch) * hw + p];
        return dst;
    }

    /// <summary>(N, C/32, HW, 32) -> (N, C, HW).</summary>
    private static float[] Unblocked(float[] src, int n, long c, long hw)
    {
        var dst = new float[src.Length];
        for (int img = 0; img < n; img++)
        for (long ch = 0; ch < c; ch++)
        for (long p = 0; p < hw; p++)
            dst[(img * c + ch) * hw + p] = src[img * c * hw + ch / 32 * hw * 32 + p * 32 + ch % 32];
        return dst;
    }

    /// <summary>(N, A, B) -> (N, B, A) for each of <paramref name="n"/> images.</summary>
    private static float[] ChannelsLast(float[] src, int n, long a, long b)
    {
        var dst = GC.AllocateUninitializedArray<float>(src.Length, pinned: true);
        for (int img = 0; img < n; img++)
        {
            long o = img * a * b;
            for (long i = 0; i < a; i++)
            for (long j = 0; j < b; j++)
                dst[o + j * a + i] = src[o + i * b + j];
        }
        return dst;
    }
}
