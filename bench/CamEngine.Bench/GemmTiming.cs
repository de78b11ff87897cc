using System.Diagnostics;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// `gemm`: the column form's GEMM on ResNet-50's four 1x1 stride-1 shapes of 56x56 and 28x28 (batch 1, x read in
/// place, bias and ReLU, the residual on the expanding ones), with the tile epilogue in a second pass over the stored
/// tile and B packed panel by panel (as before both changes), in registers with B packed row by row
/// (<see cref="PackedGemm.FusedStores"/>, <see cref="ConvColumns.RowOrder"/>: today), in registers with B packed panel
/// by panel, in registers with x's rows read in place by the kernel (<see cref="InPlaceRows"/>: today's choice where
/// the output is not streamed), in registers with B packed beforehand (what the per-task packing of x costs), without prefetching the
/// next tile's output lines (<see cref="PackedGemm.PrefetchOutput"/>), and with x, the residual and y half a line off
/// a 64-byte boundary (what the aligned tensor storage saves). In rotation, each hot (the same call again) and cold (after a 64 MB sweep);
/// medians of 60, and the median of the per-round ratios to the first variant.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- gemm
/// </summary>
internal static unsafe class GemmTiming
{
    public static void Run(string[] args)
    {
        var simd = CpuSimd.Vector512;
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            Console.WriteLine("gemm: the tile epilogue in registers is an AVX-512 path; this CPU has no AVX-512");
            return;
        }
        Console.WriteLine($"gemm: column-form GEMMs, epilogue in a second pass / in registers / the same packing panel by panel / B prepacked, {Environment.ProcessorCount} threads; hot/cold ms, medians of 60");
        foreach (var (c, k, side) in new[] { (64, 256, 56), (256, 64, 56), (128, 512, 28), (512, 128, 28) })
        {
            var s = new ConvShape(1, c, side, side, k, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
            var rng = new Random(1);
            // Every operand on a 64-byte boundary as the engine's tensors are (a GC array starts anywhere on an 8-byte
            // boundary), plus room for the misaligned copies of the last variant.
            float[] Fill(long count)
            {
                var a = GC.AllocateUninitializedArray<float>(checked((int)count + 32), pinned: true);
                for (int i = 0; i < a.Length; i++)
                    a[i] = (float)(rng.NextDouble() * 2 - 1);
                return a;
            }
            int hw = side * side;
            var x = Fill((long)c * hw);
            var w = Fill((long)k * c);
            var bias = Fill(k);
            var res = Fill((long)k * hw);
            var y = Fill((long)k * hw);
            float[] x2 = Fill((long)c * hw), res2 = Fill((long)k * hw), y2 = Fill((long)k * hw);
            var packedX = GC.AllocateUninitializedArray<float>((int)PackedGemm.PackedBLength(c, hw), pinned: true);
            var sweep = new float[16 << 20];
            fixed (float* pw = w, ppx = packedX)
            {
                float* fx = Scratch.Aligned(x), fb = Scratch.Aligned(bias), fr = Scratch.Aligned(res), fy = Scratch.Aligned(y), fpx = ppx;
                // x, the residual and y half a line (32 bytes) off a line boundary.
                float* mx = Scratch.Aligned(x2) + 8, mr = Scratch.Aligned(res2) + 8, my = Scratch.Aligned(y2) + 8;
                Buffer.MemoryCopy(fx, mx, 4L * c * hw, 4L * c * hw);
                Buffer.MemoryCopy(fr, mr, 4L * k * hw, 4L * k * hw);
                var pwa = CpuConv.PackForwardWeights(pw, s);
                fixed (float* pa = pwa)
                {
                    float* fa = pa;
                    PackedGemm.PackB(new StridedPanels(fx, hw, 1, hw), c, hw, fpx);
                    var plan = new ConvPlan(s, 1);
                    var ro = plan.RowOffsets(0);
                    fixed (long* pro = ro)
                    {
                        long* fro = pro;
                        bool resid = k > c;
                        var ep = new StoreEpilogue(resid ? fr : null, EpilogueActivation.Relu);
                        var epm = new StoreEpilogue(resid ? mr : null, EpilogueActivation.Relu);
                        var runs = new (string Name, Action Run)[]
                        {
                            ("unfused", () => { PackedGemm.FusedStores = ConvColumns.RowOrder = false; PackedGemm.Run(k, hw, c, fa, new ConvColumns(fx, fro, plan), fy, hw, false, simd, epilogue: ep, rowBias: fb); PackedGemm.FusedStores = ConvColumns.RowOrder = true; }),
                            ("fused", () => PackedGemm.Run(k, hw, c, fa, new ConvColumns(fx, fro, plan), fy, hw, false, simd, epilogue: ep, rowBias: fb)),
                            ("packed panel by panel", () => { ConvColumns.RowOrder = false; PackedGemm.Run(k, hw, c, fa, new ConvColumns(fx, fro, plan), fy, hw, false, simd, epilogue: ep, rowBias: fb); ConvColumns.RowOrder = true; }),
                            ("x's rows in place", () => PackedGemm.Run(k, hw, c, fa, new InPlaceRows(fx, hw, hw), fy, hw, false, simd, epilogue: ep, rowBias: fb)),
                            ("prepacked B", () => PackedGemm.Run(k, hw, c, fa, new PrepackedPanels(fpx, PackedGemm.RoundUp(hw, 32)), fy, hw, false, simd, epilogue: ep, rowBias: fb)),
                            ("fused, no output prefetch", () => { PackedGemm.PrefetchOutput = false; PackedGemm.Run(k, hw, c, fa, new ConvColumns(fx, fro, plan), fy, hw, false, simd, epilogue: ep, rowBias: fb); PackedGemm.PrefetchOutput = true; }),
                            ("fused, x/res/y 32 B off a line", () => PackedGemm.Run(k, hw, c, fa, new ConvColumns(mx, fro, plan), my, hw, false, simd, epilogue: epm, rowBias: fb)),
                        };
                        var t = runs.Select(_ => new List<double>()).ToArray();
                        var tc = runs.Select(_ => new List<double>()).ToArray();
                        for (int rep = 0; rep < 60; rep++)
                        for (int o = 0; o < runs.Length; o++)
                        {
                            int i = (rep + o) % runs.Length;
                            runs[i].Run();
                            long t0 = Stopwatch.GetTimestamp();
                            runs[i].Run();
                            t[i].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                            for (int j = 0; j < sweep.Length; j += 16)
                                sweep[j] += 1f;
                            t0 = Stopwatch.GetTimestamp();
                            runs[i].Run();
                            tc[i].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                        }
                        double M(List<double> l) => l.Order().ElementAt(l.Count / 2);
                        double flops = 2.0 * k * c * hw;
                        Console.WriteLine($"gemm {c}->{k} {side}x{side}{(resid ? " +res" : "")}: " + string.Join("; ", runs.Select((r, i) =>
                            $"{r.Name} {M(t[i]):F3}/{M(tc[i]):F3} ms (paired ratio {M(t[i].Zip(t[0], (u, v) => u / v).ToList()):F3}/{M(tc[i].Zip(tc[0], (u, v) => u / v).ToList()):F3})")));
                        GC.KeepAlive(x);
                        GC.KeepAlive(x2);
                        GC.KeepAlive(bias);
                        GC.KeepAlive(res);
                        GC.KeepAlive(res2);
                        GC.KeepAlive(y);
                        GC.KeepAlive(y2);
                    }
                }
            }
        }
    }
}
