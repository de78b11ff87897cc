using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// 2-D convolution (groups = 1, AVX-512) in NCHW as it is, for layers with few input channels (a network's stem,
/// 3 -> 64 7x7 stride 2): each output row is a run of 16-pixel vectors, three output channels at a time, summed over
/// the C x KH x KW taps from the phase-split padded copy of the input (<see cref="ConvPlan"/>, where the input values
/// one tap reads along an output row are consecutive, whatever the stride), the tap's three weights broadcast from a
/// packed copy. No im2col panels, no temporary and no transpose: the bias and the epilogue are applied in registers
/// and each row is stored into y once. The im2col form copies every input value KH*KW times into packed panels and,
/// over a batch, sums into a temporary that a scatter moves into y; the direct form wants 16 or more channels.
/// <code>packed W: [K/3 block][tap = (c*KH + kh)*KW + kw][3 lanes]     one call: 3 channels x up to 7 x 16 pixels of a row</code>
/// </summary>
internal static unsafe class PlanarConv
{
    /// <summary>Output channels per register tile.</summary>
    private const int KB = 3;

    /// <summary>Pixels per vector.</summary>
    private const int VL = 16;

    /// <summary>Vectors of one output row per register tile: 3 x 7 accumulators, one input vector and three broadcast
    /// weights in 25 of the 32 registers (4 x 7 left no room for the broadcasts, and the JIT spilled).</summary>
    private const int MaxVectors = 7;

    /// <summary>Whether the form runs: one group, AVX-512, and at most <see cref="MaxTaps"/> taps.</summary>
    public static bool Supports(ConvShape s, CpuSimd simd) =>
        simd == CpuSimd.Vector512 && Avx512F.IsSupported && s.Groups == 1 && (long)s.C * s.KH * s.KW <= MaxTaps;

    /// <summary>
    /// The most taps (C x KH x KW) the form sums: each output is one running sum over them in order, with no blocks
    /// (the GEMM and direct forms add partial sums of at most 256 taps into the output), so its float rounding grows
    /// with their count; forced on 2,700 and 9,216 taps (ConvFormTests' 300 and 1024 channels) 2 of 2,304 and 3 of
    /// 480 outputs were off the double reference by up to 7.7e-5 and 2.2e-4, beyond the 1e-5 + 1e-4 relative budget.
    /// </summary>
    public const int MaxTaps = 1024;

    /// <summary>Whether the form is chosen for a layer it supports: few input channels (3 for an RGB stem), where the
    /// im2col forms copy each input value KH*KW times and the direct form does not run, and rows of a vector or more.
    /// Measured against the column form (bench profile, PROFILE_FORMS=1, ms planar / column, batch 1 and 8): ResNet's
    /// 3->64 7x7/2 1.21 / 1.38-1.44 and 10.1-10.5 / 11.9-12.5; MobileNetV2's 3->32 3x3/2 0.20 / 0.25 and 1.80 / 2.92;
    /// ConvNeXt-T's 3->96 4x4/4 0.32 / 0.30 and 2.85 / 3.23 (taken: rows of 56 fill 3.5 vectors).</summary>
    public static bool Pays(ConvShape s) => Chosen && s.C <= 4 && s.OW >= VL;

    /// <summary>False: <see cref="Pays"/> never holds (the bench's profile compares the forms, PROFILE_PLANAR=1).</summary>
    internal static bool Chosen { get; set; } = true;

    /// <summary>Packs W (K x C x KH x KW) as blocks of three output channels, tap by tap; channels past K are zeros.</summary>
    public static float[] PackWeights(float* w, ConvShape s)
    {
        int crs = s.C * s.KH * s.KW, blocks = (s.K + KB - 1) / KB;
        var packed = GC.AllocateArray<float>(blocks * crs * KB, pinned: true);
        for (int k = 0; k < s.K; k++)
        {
            int kb = k / KB, lane = k % KB;
            for (int r = 0; r < crs; r++)
                packed[((long)kb * crs + r) * KB + lane] = w[(long)k * crs + r];
        }
        return packed;
    }

    /// <summary><c>y = conv(x, w) + b</c> with w packed by <see cref="PackWeights"/>, then the <paramref name="epilogue"/>
    /// on each output as it is stored. Images go in chunks whose phase buffer stays near <see cref="ConvPlan.ChunkFloats"/>.</summary>
    public static void Forward(float* x, float* packedW, float* bias, float* y, ConvShape s, StoreEpilogue epilogue)
    {
        int nb = ConvPlan.ChunkImages(s, 0);
        var bufArray = Scratch.Rent(new ConvPlan(s, nb).BufferLength);
        try
        {
            float* buf = Scratch.Aligned(bufArray);
            for (int n0 = 0; n0 < s.N; n0 += nb)
            {
                var plan = new ConvPlan(s, Math.Min(nb, s.N - n0));
                CpuConv.BuildPhases(x, n0, plan, buf);
                var offsets = plan.RowOffsets(0);
                fixed (long* ro = offsets)
                    Rows(buf, ro, plan, n0, packedW, bias, y, epilogue);
            }
        }
        finally
        {
            Scratch.Return(bufArray);
        }
    }

    /// <summary>Every output row of the chunk, in tasks of consecutive rows (each task all channels of its rows, so
    /// the input rows it reads stay in L1 across the channel blocks).</summary>
    private static void Rows(float* buf, long* ro, ConvPlan plan, int n0, float* packedW, float* bias, float* y,
        StoreEpilogue epilogue)
    {
        var s = plan.S;
        int rows = plan.Images * s.OH, crs = plan.Crs, blocks = (s.K + KB - 1) / KB;
        int perTask = Math.Max(1, rows / (16 * Environment.ProcessorCount));
        int tasks = (rows + perTask - 1) / perTask;
        int vectors = (s.OW + VL - 1) / VL, groups = (vectors + MaxVectors - 1) / MaxVectors;
        long plane = plan.Plane, ohw = (long)s.OH * s.OW;
        CpuParallel.For(tasks, t =>
        {
            var acc = stackalloc Vector512<float>[KB * MaxVectors];
            int end = Math.Min(rows, (t + 1) * perTask);
            for (int row = t * perTask; row < end; row++)
            {
                int img = row / s.OH, oh = row - img * s.OH;
                float* src = buf + img * plane + (long)oh * plan.Wq;
                long yRow = (long)(n0 + img) * s.K * ohw + (long)oh * s.OW;
                for (int kb = 0; kb < blocks; kb++)
                {
                    int k0 = kb * KB;
                    float* yk = y + yRow + k0 * ohw, bk = bias == null ? null : bias + k0;
                    var ek = epilogue.Shifted(yRow + k0 * ohw);
                    int channels = Math.Min(KB, s.K - k0);
                    float* w = packedW + (long)kb * crs * KB;
                    // The row's vectors in groups of at most seven, as even as they go (8 vectors: 4 + 4, not 7 + 1).
                    for (int gi = 0, v0 = 0; gi < groups; gi++)
                    {
                        int nv = (vectors - v0) / (groups - gi);
                        int ow0 = v0 * VL;
                        var at = new Tile(yk, ohw, channels, bk, ek, ow0, Math.Min(nv * VL, s.OW - ow0));
                        switch (nv)
                        {
                            case 7: Kernel<V7>(src + ow0, ro, crs, w, acc); break;
                            case 6: Kernel<V6>(src + ow0, ro, crs, w, acc); break;
                            case 5: Kernel<V5>(src + ow0, ro, crs, w, acc); break;
                            case 4: Kernel<V4>(src + ow0, ro, crs, w, acc); break;
                            case 3: Kernel<V3>(src + ow0, ro, crs, w, acc); break;
                            case 2: Kernel<V2>(src + ow0, ro, crs, w, acc); break;
                            default: Kernel<V1>(src + ow0, ro, crs, w, acc); break;
                        }
                        Finish(at, acc, nv);
                        v0 += nv;
                    }
                }
            }
        });
    }

    /// <summary>Where a register tile goes: channel i's row at <see cref="Y"/> + i * <see cref="ChannelStride"/> +
    /// <see cref="Ow0"/>, <see cref="Width"/> pixels, the first <see cref="Channels"/> channels of three.</summary>
    private readonly struct Tile(float* y, long channelStride, int channels, float* bias, StoreEpilogue epilogue, int ow0, int width)
    {
        public readonly float* Y = y;
        public readonly long ChannelStride = channelStride;
        public readonly int Channels = channels;
        public readonly float* Bias = bias;
        public readonly StoreEpilogue Epilogue = epilogue;
        public readonly int Ow0 = ow0;
        public readonly int Width = width;
    }

    private interface IVectors
    {
        static abstract int Count { get; }
    }

    private struct V1 : IVectors { public static int Count => 1; }
    private struct V2 : IVectors { public static int Count => 2; }
    private struct V3 : IVectors { public static int Count => 3; }
    private struct V4 : IVectors { public static int Count => 4; }
    private struct V5 : IVectors { public static int Count => 5; }
    private struct V6 : IVectors { public static int Count => 6; }
    private struct V7 : IVectors { public static int Count => 7; }

    /// <summary>Three channels x <typeparamref name="TV"/> vectors of one output row, summed into
    /// <paramref name="acc"/> (channel by channel, <see cref="MaxVectors"/> each): per tap, each input vector loaded
    /// once and multiplied by the three broadcast weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<TV>(float* src, long* ro, int crs, float* w, Vector512<float>* acc)
        where TV : struct, IVectors
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default, a06 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default, a16 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default, a26 = default;
        for (int r = 0; r < crs; r++, w += KB)
        {
            float* p = src + ro[r];
            var x = Vector512.Load(p);
            a00 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a00);
            a10 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a10);
            a20 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a20);
            if (TV.Count > 1)
            {
                x = Vector512.Load(p + VL);
                a01 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a01);
                a11 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a11);
                a21 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a21);
            }
            if (TV.Count > 2)
            {
                x = Vector512.Load(p + 2 * VL);
                a02 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a02);
                a12 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a12);
                a22 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a22);
            }
            if (TV.Count > 3)
            {
                x = Vector512.Load(p + 3 * VL);
                a03 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a03);
                a13 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a13);
                a23 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a23);
            }
            if (TV.Count > 4)
            {
                x = Vector512.Load(p + 4 * VL);
                a04 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a04);
                a14 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a14);
                a24 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a24);
            }
            if (TV.Count > 5)
            {
                x = Vector512.Load(p + 5 * VL);
                a05 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a05);
                a15 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a15);
                a25 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a25);
            }
            if (TV.Count > 6)
            {
                x = Vector512.Load(p + 6 * VL);
                a06 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[0]), a06);
                a16 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[1]), a16);
                a26 = Vector512.FusedMultiplyAdd(x, Vector512.Create(w[2]), a26);
            }
        }
        // Every accumulator to memory, for Finish (with a call or a branch per channel after the loop, the JIT kept
        // some accumulators on the stack through the whole loop).
        acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03; acc[4] = a04; acc[5] = a05; acc[6] = a06;
        acc[7] = a10; acc[8] = a11; acc[9] = a12; acc[10] = a13; acc[11] = a14; acc[12] = a15; acc[13] = a16;
        acc[14] = a20; acc[15] = a21; acc[16] = a22; acc[17] = a23; acc[18] = a24; acc[19] = a25; acc[20] = a26;
    }

    /// <summary>The tile's vectors (<paramref name="acc"/>: channel by channel, <see cref="MaxVectors"/> each): bias,
    /// epilogue, store (the last vector of the row masked when the row ends inside it).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Finish(Tile tile, Vector512<float>* acc, int count)
    {
        for (int i = 0; i < tile.Channels; i++)
        {
            var b = Vector512.Create(tile.Bias == null ? 0f : tile.Bias[i]);
            long at = i * tile.ChannelStride + tile.Ow0;
            for (int v = 0; v < count; v++)
                Store(tile, at, acc[i * MaxVectors + v] + b, v);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Tile tile, long at, Vector512<float> v, int vector)
    {
        at += vector * VL;
        int lanes = tile.Width - vector * VL;
        var e = tile.Epilogue;
        if (lanes >= VL)
        {
            if (e.Residual != null)
                v += Vector512.Load(e.Residual + at);
            e.Activate(v).Store(tile.Y + at);
            return;
        }
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();
        if (e.Residual != null)
            v += Avx512F.MaskLoad(e.Residual + at, mask, Vector512<float>.Zero);
        Avx512F.MaskStore(tile.Y + at, mask, e.Activate(v));
    }
}
