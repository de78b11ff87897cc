using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// Depthwise 2-D convolution (one input channel per group, <c>C = G</c>, channel multiplier <c>M = K/G &gt;= 1</c>,
/// as in MobileNetV2, EfficientNet and ConvNeXt), NCHW, any kernel, stride, padding and dilation. The im2col forms
/// run a (M x KH*KW) by (KH*KW x OH*OW) GEMM per channel, which is all packing and no reuse; here each (image,
/// channel) plane is one task:
/// <list type="number">
/// <item>the input plane is copied once into a zero-padded plane split into its SH x SW stride phases (the layout of
/// <see cref="ConvPlan"/>), so tap (kh, kw) of output pixel (oh, ow) is the phase element at
/// <c>q + offset[kh, kw]</c>, with <c>q = oh*Wq + ow</c> the pixel's index in a "wide" output of Wq columns per row;</item>
/// <item>the wide output is KH*KW vector FMAs per vector of pixels, <c>wide[q] = sum_t w[t] buf[q + offset[t]]</c>:
/// contiguous loads, no bounds checks, no borders (the padding holds the zeros), rows shorter than a vector
/// handled with the plane as one run (a 7x7 plane is 4 vectors, not 7);</item>
/// <item>the OW valid columns of each wide row are stored with the bias, the residual and the activation.</item>
/// </list>
/// Backward-data is the same forward with the flipped kernel at stride 1 (multiplier 1); otherwise each tap adds
/// <c>w[t] dy_wide</c> into a zeroed phase plane at its offset (the adjoint of step 2, garbage columns of dy_wide
/// zero) and the plane is read back without its padding. Backward-weights is one dot product per tap and plane,
/// <c>sum_q dy_wide[q] buf[q + offset[t]]</c>, summed over images in double in image order (no races, the same sum
/// on any core count).
/// <code>x: (N, G, H, W)   w: (G*M, 1, KH, KW)   y: (N, G*M, OH, OW)   buf per plane: [SH*SW phase][Hq][Wq] + slack</code>
/// </summary>
internal static unsafe class DepthwiseConv
{
    /// <summary>Whether the CPU backend routes depthwise layers here (benchmarks turn it off to time the im2col path
    /// side by side).</summary>
    internal static bool Enabled { get; set; } = true;

    [ThreadStatic]
    private static float[]? t_buf;

    /// <summary>The layer shape whose padding zeros <see cref="t_buf"/> holds (with <see cref="t_filledArray"/>, the
    /// array they were written in): <see cref="Fill"/> writes the same data positions for the same shape and no reader
    /// writes the buffer, so a thread's next plane of the same layer needs no clearing.</summary>
    [ThreadStatic]
    private static ConvShape t_filled;

    [ThreadStatic]
    private static float[]? t_filledArray;

    /// <summary>The buffer of one plane for <see cref="Fill"/>, and whether its padding already holds zeros (the
    /// thread's last plane was filled for the same layer shape, which decides every position Fill writes, in the same
    /// array).</summary>
    private static float* FillBuffer(ConvShape s, Plane pl, out bool zeroed)
    {
        float* buf = Buffer(ref t_buf, pl.Length);
        zeroed = KeepZeros && ReferenceEquals(t_filledArray, t_buf) && t_filled == s;
        t_filled = s;
        t_filledArray = t_buf;
        return buf;
    }

    /// <summary>Whether <see cref="Fill"/> skips clearing a buffer whose padding already holds zeros. Tests and the bench
    /// switch it.</summary>
    internal static bool KeepZeros { get; set; } = true;

    [ThreadStatic]
    private static float[]? t_wide;

    /// <summary>One input channel per group: what this file computes.</summary>
    public static bool Supports(ConvShape s) => Enabled && s.Groups == s.C && s.CPerGroup == 1;

    /// <summary>The padded, phase-split plane of one (image, channel) and the tap offsets into it.</summary>
    private readonly struct Plane
    {
        public readonly int Wq, Hq, Phases, Wide, Taps;
        public readonly long P, Length;

        public Plane(ConvShape s)
        {
            int hp = s.H + s.PadTop + s.PadBottom, wp = s.W + s.PadLeft + s.PadRight;
            Hq = (hp + s.StrideH - 1) / s.StrideH;
            Wq = (wp + s.StrideW - 1) / s.StrideW;
            P = (long)Hq * Wq;
            Phases = s.StrideH * s.StrideW;
            Wide = s.OH * Wq;
            Taps = s.KH * s.KW;
            // Slack past the last phase: the wide index runs up to a whole 64-float block past OH*Wq, and a tap's
            // offset is at most (Phases-1)*P + (Hq-OH)*Wq + Wq-1, so reads stay below Phases*P + Wq + 64.
            Length = Phases * P + Wq + 128;
            if (Length > Array.MaxLength / 2)
                throw new CamEngineException($"cpu depthwise conv: padded plane of {Length} floats is too large");
        }

        /// <summary>The buffer index of padded pixel (hp, wp): its phase's plane, then row and column in the phase.</summary>
        public long At(ConvShape s, int hp, int wp) =>
            (hp % s.StrideH * s.StrideW + wp % s.StrideW) * P + (long)(hp / s.StrideH) * Wq + wp / s.StrideW;

        public void Offsets(ConvShape s, int* off)
        {
            for (int kh = 0; kh < s.KH; kh++)
            for (int kw = 0; kw < s.KW; kw++)
                off[kh * s.KW + kw] = (int)At(s, kh * s.DilationH, kw * s.DilationW);
        }

        /// <summary>The wide length rounded up to whole 64-float blocks (what the vector loops run over).</summary>
        public int WideRounded => (Wide + 63) & ~63;
    }

    private static float* Buffer(ref float[]? a, long length)
    {
        if (a == null || a.Length < length + 16)
            a = GC.AllocateUninitializedArray<float>((int)(length + 16), pinned: true);
        return Scratch.Aligned(a);
    }

    /// <summary>Runs <paramref name="body"/> for every (image, channel) plane task.</summary>
    private static void ForPlanes(ConvShape s, Action<int, int> body) =>
        CpuConv.For(s.N * s.C, (long)s.N * s.K * s.OH * s.OW * s.KH * s.KW, i => body(i / s.C, i % s.C));

    // ---- forward ----

    /// <summary>
    /// <c>y = act(conv(x, w) + b + residual)</c>, w in its own (K, 1, KH, KW) layout, b and residual optional.
    /// The activation follows <see cref="EpilogueActivation"/> (ReLU as <see cref="ReluOp"/>, clip exactly as
    /// <see cref="Clip"/>, SiLU as <c>v * sigmoid(v)</c>).
    /// </summary>
    public static void Forward(float* x, float* w, float* bias, float* residual, float* y, ConvShape s, CpuSimd simd,
        EpilogueActivation act = EpilogueActivation.None, float lo = 0f, float hi = 0f, float* channelsLastWeights = null)
    {
        if (Flat(s, simd))
        {
            ForwardFlat(x, w, bias, residual, y, s, act, lo, hi);
            return;
        }
        if (TakesChannelsLast(s, simd, residual != null))
        {
            ForwardChannelsLast(x, w, bias, y, s, act, lo, hi, channelsLastWeights);
            return;
        }
        if (Rows(s, simd))
        {
            ForwardRows(x, w, bias, residual, y, s, act, lo, hi);
            return;
        }
        var pl = new Plane(s);
        int m = s.KPerGroup, ohw = s.OH * s.OW;
        long hw = (long)s.H * s.W;
        bool prefetch = PrefetchPlanes && 4L * s.N * s.C * hw >= PrefetchInputBytes && Sse.IsSupported;
        void Run(int n, int g)
        {
            float* buf = FillBuffer(s, pl, out bool zeroed);
            float* wide = Buffer(ref t_wide, pl.WideRounded + 64);
            int* off = stackalloc int[pl.Taps];
            pl.Offsets(s, off);
            long index = (long)n * s.C + g;
            Fill(x + index * hw, buf, s, pl, simd, zeroed);
            for (int j = 0; j < m; j++)
            {
                int k = g * m + j;
                long plane = ((long)n * s.K + k) * ohw;
                // Under the taps: this plane's output (and residual) lines, then the next input plane's, once.
                var ahead = prefetch
                    ? new LinePrefetch(y + plane, ohw, residual == null ? null : residual + plane,
                        j == m - 1 && index + 1 < (long)s.N * s.C ? x + (index + 1) * hw : null, hw, (pl.Wide + 63) / 64)
                    : default;
                Taps(buf, off, w + (long)k * pl.Taps, pl.Taps, wide, pl.Wide, simd, ref ahead);
                Store(wide, pl.Wq, bias == null ? 0f : bias[k], residual == null ? null : residual + plane, y + plane,
                    s.OH, s.OW, simd, act, lo, hi);
            }
        }
        ForPlanes(s, Run);
    }

    /// <summary>
    /// Whether <see cref="ForwardRows"/> runs the layer: AVX-512, a column table (vectors per output row x kernel
    /// columns) of at most <see cref="MaxColumns"/> entries, and where it measured faster: kernels of up to 9 taps at
    /// column stride 2, or stride 1 on output planes of at most 28x28; larger kernels (5x5, 7x7) on output planes of
    /// 128-400 pixels (14x14). On larger stride-1 planes the per-plane path's copy is a small part of the work and its
    /// wide sums need no masks; with 25-49 taps that holds from 28x28 up, and on 7x7 planes, where a row fills 7 of 16
    /// lanes, the channels-last form fills all 16. Measured in cache (bench `depthwise`, MobileNetV2's 3x3 shapes at
    /// batch 1, alternating call by call, medians of 180, three runs, us rows / before): stride 1 at 112x112 124-169 /
    /// 124-169 (before: per-plane), 56x56 163-259 / 163-258, 28x28 85-104 / 80-133, 14x14 54-61 / 109-303 and 77-87 /
    /// 126-330, 7x7 70-84 / 90-255; stride 2 to 56x56 236-243 / 251-289, to 28x28 91-116 / 136-196, to 14x14 40-48 /
    /// 61-194, to 7x7 59-68 / 61-166. Inside the forward (bench profile, PROFILE_LEAN=1 PROFILE_DW_ROWS=1, alternating,
    /// batch 1, ms): MobileNetV2's 3x3 layers 0.057-0.247 / 0.091-0.325 (sum of all nodes 7.09 / 7.67);
    /// EfficientNet-B0's 5x5 at 14x14 0.19-0.26 / 0.23-0.36, at 28x28 0.28-0.32 / 0.25-0.30, at 7x7 0.20-0.23 /
    /// 0.15-0.21; ConvNeXt-T's 7x7 at 14x14 0.220-0.226 / 0.240-0.268, at 28x28 0.352-0.357 / 0.253-0.254.
    /// <see cref="RowsForm"/> off leaves the per-plane and channels-last paths (tests and the bench).
    /// </summary>
    internal static bool Rows(ConvShape s, CpuSimd simd)
    {
        if (!RowsForm || simd != CpuSimd.Vector512 || !Avx512F.IsSupported || s.StrideW is not (1 or 2)
            || (long)(s.OW + VL - 1) / VL * s.KW > MaxColumns)
            return false;
        long pixels = (long)s.OH * s.OW;
        return s.KH * s.KW <= 9 ? s.StrideW == 2 || pixels <= 28 * 28 : pixels is >= 128 and <= 400;
    }

    /// <summary>
    /// Where both could run, the channels-last form before the row form: kernels of more than 9 taps (5x5, 7x7) and
    /// planes of at most 64 output pixels (7x7). Inside the forward (bench profile, PROFILE_LEAN=1, the two orders
    /// alternating call by call, batch 1, ms channels-last / rows): ConvNeXt-T's 7x7 kernels at 14x14 0.141-0.156 /
    /// 0.191-0.198; EfficientNet-B0's 5x5 at 14x14 0.133-0.193 / 0.174-0.238, its 7x7 planes 0.100-0.114 /
    /// 0.129-0.133; MobileNetV2's 3x3 on 7x7 planes 0.083-0.104 / 0.109-0.124; but 3x3 kernels on 14x14 planes
    /// 0.116-0.166 / 0.074-0.139, so those keep the row form.
    /// </summary>
    internal static bool ChannelsLastFirst(ConvShape s) => s.KH * s.KW > 9 || (long)s.OH * s.OW <= 64;

    /// <summary>Whether <see cref="Forward"/> runs the layer channels-last (<see cref="ForwardChannelsLast"/>): where it
    /// may, unless the flat form takes it, or the row form may too and goes first.</summary>
    internal static bool TakesChannelsLast(ConvShape s, CpuSimd simd, bool residual) =>
        !Flat(s, simd) && ChannelsLast(s, simd, residual) && (!Rows(s, simd) || ChannelsLastFirst(s));

    /// <summary>The weights as the channels-last form reads them, tap-major: <c>wt[t*C + c] = w[c*taps + t]</c> (a
    /// backend caches it per weight version; else the form builds it per call).</summary>
    internal static float[] ChannelsLastWeights(float* w, ConvShape s)
    {
        var wt = GC.AllocateUninitializedArray<float>(s.KH * s.KW * s.C, pinned: true);
        fixed (float* p = wt)
            TapMajor(w, s, p);
        return wt;
    }

    /// <summary><c>dst[t*C + c] = w[c*taps + t]</c>.</summary>
    private static void TapMajor(float* w, ConvShape s, float* dst)
    {
        int taps = s.KH * s.KW, c = s.C;
        for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < taps; t++)
            dst[(long)t * c + ch] = w[(long)ch * taps + t];
    }

    /// <summary>Whether the flat form runs where <see cref="Flat"/> allows it.</summary>
    internal static bool FlatForm { get; set; } = true;

    /// <summary>Planes of at most this many output pixels may take the flat form.</summary>
    internal const int FlatMaxPixels = 256;

    /// <summary>Most (tap, vector) masks of the flat form's table (32 KB).</summary>
    private const int FlatMaxMasks = 512;

    /// <summary>Vectors of one plane that one group of <see cref="ForwardFlat"/> computes: eight where a plane has
    /// eight or more, else four (and two planes a group).</summary>
    private static int FlatVectors(ConvShape s) => (s.OH * s.OW + VL - 1) / VL >= 8 ? 8 : 4;

    /// <summary>
    /// Whether <see cref="ForwardFlat"/> runs the layer: AVX-512, multiplier 1, stride 1, "same" padding (the output
    /// plane is the input plane's size, so output pixel p and its taps lie at p + a fixed offset in x's plane), an
    /// output plane of at most <see cref="FlatMaxPixels"/> (of at most 64 for kernels of more than 9 taps), and a mask
    /// table of at most <see cref="FlatMaxMasks"/>. Measured in cache (bench `depthwise`, DW_FLAT=1, alternating call
    /// by call, medians of 180, us flat / before, 2026-12-07, 2 threads): 3x3 on 384x14x14 43 / 53-61 (rows), on
    /// 576x14x14 58 / 77-88, on 960x7x7 25-39 / 68-170 (channels-last); one thread 67 / 101-108, 97 / 151-163, 39 / 67;
    /// 5x5 on 1152x7x7 52 / 107, 7x7 on 768x7x7 63 / 168; but 5x5 and 7x7 kernels on 14x14 planes 139 / 134 and 161 /
    /// 125 (the channels-last form keeps those), and 3x3 on 28x28 planes 75 / 88 against the per-plane path's 68, so
    /// larger planes keep their forms. Inside the forward (bench profile, PROFILE_LEAN=1 PROFILE_DW_FLAT=1,
    /// alternating, batch 1, sums of node medians): MobileNetV2 0.946-0.973 of the time before (its 7x7 layers 0.037-0.042
    /// ms against 0.097-0.115), EfficientNet-B0 0.931-0.972, ConvNeXt-T 0.992-1.021.
    /// </summary>
    internal static bool Flat(ConvShape s, CpuSimd simd)
    {
        if (!FlatForm || simd != CpuSimd.Vector512 || !Avx512F.IsSupported || s.KPerGroup != 1 || s.StrideH != 1
            || s.StrideW != 1 || s.OH != s.H || s.OW != s.W || (long)s.OH * s.OW > FlatMaxPixels
            || s.KH * s.KW > 9 && (long)s.OH * s.OW > 64)
            return false;
        int q = FlatVectors(s), vpad = ((s.OH * s.OW + VL - 1) / VL + q - 1) / q * q;
        return (long)vpad * s.KH * s.KW <= FlatMaxMasks;
    }

    /// <summary>
    /// The forward of a small "same"-padded stride-1 layer with no copy of x: each plane is one run of OH*OW pixels,
    /// V = ceil(OH*OW / 16) vectors (a 7x7 plane is 4, a 14x14 one 13, where rows would fill 7 or 14 of 16 lanes),
    /// and tap (kh, kw) of vector v is one load of x's plane from <c>16v + dh*W + dw</c> under the mask of the lanes
    /// whose tap lies inside the plane (the others load zeros: the padding; no lane reads across a row's end), then
    /// one FMA. A group is eight vectors of one plane, or four of two planes, eight independent FMA chains that
    /// share each tap's masks or weight; vectors past V have all-zero masks (nothing loaded, nothing stored).
    /// Taps are summed in the per-plane order, from zero, then the bias, the residual and the activation: the same
    /// bits as the other forms.
    /// <code>masks: [tap][vector &lt; Vpad][16 lanes]   group: (planes p0, p0+1 if four vectors; vectors v0..v0+7 or +3)</code>
    /// </summary>
    private static void ForwardFlat(float* x, float* w, float* bias, float* residual, float* y, ConvShape s,
        EpilogueActivation act, float lo, float hi)
    {
        int ohw = s.OH * s.OW, vectors = (ohw + VL - 1) / VL, taps = s.KH * s.KW, q = FlatVectors(s);
        int chunks = (vectors + q - 1) / q, vpad = chunks * q, perGroup = 8 / q;
        var maskArray = Scratch.Rent((long)vpad * taps * VL + VL);
        try
        {
            float* masks = Scratch.Aligned(maskArray);
            int* off = stackalloc int[taps];
            for (int kh = 0; kh < s.KH; kh++)
            for (int kw = 0; kw < s.KW; kw++)
            {
                int dh = kh * s.DilationH - s.PadTop, dw = kw * s.DilationW - s.PadLeft, t = kh * s.KW + kw;
                off[t] = dh * s.W + dw;
                for (int v = 0; v < vpad; v++)
                for (int lane = 0; lane < VL; lane++)
                {
                    int p = v * VL + lane, oh = p / s.OW, ow = p - oh * s.OW;
                    bool inside = p < ohw && (uint)(oh + dh) < (uint)s.H && (uint)(ow + dw) < (uint)s.W;
                    masks[((long)t * vpad + v) * VL + lane] = inside ? BitConverter.Int32BitsToSingle(-1) : 0f;
                }
            }
            // Multiplier 1: plane i of y (image i / K, channel i % K) reads plane i of x.
            long planes = (long)s.N * s.K, planeGroups = (planes + perGroup - 1) / perGroup, groups = planeGroups * chunks;
            // Groups per task: about 32k pixel-taps each, as the row form's tasks.
            long per = Math.Max(1, 32768 / (8L * VL * taps));
            int tasks = (int)((groups + per - 1) / per);
            var mp = (Vector512<float>*)masks;
            int* op = off;
            int k = s.K;
            CpuConv.For(tasks, groups * 8 * VL * taps, t =>
            {
                var acc = stackalloc Vector512<float>[8];
                long g = t * per, g1 = Math.Min(groups, g + per);
                long pg = g / chunks;
                int c = (int)(g - pg * chunks);
                for (; g < g1; g++)
                {
                    long p0 = pg * perGroup;
                    bool second = perGroup == 2 && p0 + 1 < planes;
                    float* xa = x + p0 * ohw + c * q * VL, wa = w + p0 % k * taps;
                    float* xb = second ? xa + ohw : xa, wb = second ? w + (p0 + 1) % k * taps : wa;
                    if (q == 8)
                        FlatGroup<Flat8>(xa, xb, wa, wb, mp + c * q, vpad, op, taps, acc);
                    else
                        FlatGroup<Flat4>(xa, xb, wa, wb, mp + c * q, vpad, op, taps, acc);
                    for (int i = 0; i < perGroup && p0 + i < planes; i++)
                    {
                        long plane = p0 + i;
                        float b = bias == null ? 0f : bias[plane % k];
                        var end = new StoreEpilogue(residual == null ? null : residual + plane * ohw, act, lo, hi);
                        for (int j = 0; j < q && c * q + j < vectors; j++)
                            FlatStore(acc[i * q + j], y + plane * ohw, end, b, (c * q + j) * VL, ohw);
                    }
                    if (++c == chunks)
                    {
                        c = 0;
                        pg++;
                    }
                }
            });
        }
        finally
        {
            Scratch.Return(maskArray);
        }
    }

    /// <summary>How many consecutive vectors of a plane one <see cref="FlatGroup{TQ}"/> computes (8, or 4 of each of
    /// two planes).</summary>
    private interface IFlatWidth
    {
        static abstract int Q { get; }
    }

    private struct Flat8 : IFlatWidth
    {
        public static int Q => 8;
    }

    private struct Flat4 : IFlatWidth
    {
        public static int Q => 4;
    }

    /// <summary>The tap sums of one group of <see cref="ForwardFlat"/> into <paramref name="acc"/>: eight vectors
    /// from <paramref name="xa"/> (kernel <paramref name="wa"/>), or four from each of <paramref name="xa"/> and
    /// <paramref name="xb"/> (kernels <paramref name="wa"/>, <paramref name="wb"/>); <paramref name="m"/> is the
    /// group's first vector's mask of tap 0, tap t's <c>t * vpad</c> further.</summary>
    private static void FlatGroup<TQ>(float* xa, float* xb, float* wa, float* wb, Vector512<float>* m, int vpad, int* off,
        int taps, Vector512<float>* acc)
        where TQ : struct, IFlatWidth
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> a4 = default, a5 = default, a6 = default, a7 = default;
        var zero = Vector512<float>.Zero;
        for (int t = 0; t < taps; t++, m += vpad)
        {
            int o = off[t];
            float* pa = xa + o;
            var va = Vector512.Create(wa[t]);
            a0 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa, m[0], zero), va, a0);
            a1 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + VL, m[1], zero), va, a1);
            a2 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 2 * VL, m[2], zero), va, a2);
            a3 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 3 * VL, m[3], zero), va, a3);
            if (TQ.Q == 8)
            {
                a4 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 4 * VL, m[4], zero), va, a4);
                a5 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 5 * VL, m[5], zero), va, a5);
                a6 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 6 * VL, m[6], zero), va, a6);
                a7 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pa + 7 * VL, m[7], zero), va, a7);
            }
            else
            {
                float* pb = xb + o;
                var vb = Vector512.Create(wb[t]);
                a4 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pb, m[0], zero), vb, a4);
                a5 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pb + VL, m[1], zero), vb, a5);
                a6 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pb + 2 * VL, m[2], zero), vb, a6);
                a7 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(pb + 3 * VL, m[3], zero), vb, a7);
            }
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
        acc[4] = a4;
        acc[5] = a5;
        acc[6] = a6;
        acc[7] = a7;
    }

    /// <summary>One vector's sums plus the bias, then the epilogue, stored at <paramref name="at"/> of its plane under
    /// the mask of the lanes that are output pixels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FlatStore(Vector512<float> acc, float* yp, in StoreEpilogue end, float b, int at, int ohw)
    {
        var sum = acc + Vector512.Create(b);
        int lanes = ohw - at;
        if (lanes >= VL)
        {
            end.Apply(sum, at).Store(yp + at);
            return;
        }
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();
        Avx512F.MaskStore(yp + at, mask, end.ApplyMasked(sum, at, mask));
    }

    /// <summary>Whether the per-plane path stores the last outputs of a row (fewer than 16) as one masked vector
    /// (AVX-512) rather than eight, four and one at a time. Tests and the bench switch it.</summary>
    internal static bool MaskedRowTail { get; set; } = true;

    /// <summary>Whether the per-plane path asks for the lines of the plane it will store and of the next input plane
    /// while it computes (<see cref="LinePrefetch"/>), on inputs of at least <see cref="PrefetchInputBytes"/>. Tests
    /// and the bench switch it.</summary>
    internal static bool PrefetchPlanes { get; set; } = true;

    /// <summary>
    /// The smallest input (all images) whose planes the per-plane path prefetches: 8 MB, more than the two cores' L2
    /// and a fair share of the L3 hold, so the planes come from memory. Below it the input is still in cache from the
    /// 1x1 that wrote it, and the prefetches only cost: inside the forward (bench profile, PROFILE_LEAN=1
    /// PROFILE_DW_PREFETCH=1, 100 ms sleep and a 64 MB sweep, alternating, node medians, ms prefetched / not; 2-vCPU
    /// EPYC VM, 2026-12-07) EfficientNet-B0 at batch 1 (inputs up to 1.6 MB) 0.308-0.313 / 0.282-0.284 on its
    /// 32x112x112 layer and node sums 0.997-1.046, while MobileNetV2 at batch 8 (inputs 12.8-38 MB) took 1.76 / 2.14 on
    /// its 32x112x112 layer, 2.43 / 2.77 on 144x56x56 and 1.90 / 2.43 on 144x56x56 stride 2 (node sums 0.960).
    /// </summary>
    internal const long PrefetchInputBytes = 8L << 20;

    /// <summary>
    /// The cache lines a plane task of the per-plane path will touch next, asked for into L2 a few at a time under its
    /// FMAs (<see cref="Step"/> once per group of vectors): the output plane it is about to store (and its residual),
    /// then the next input plane. Its tasks read a plane, then compute, then store, so where the planes come from
    /// memory the misses of each phase wait with nothing overlapping them: in the bench `depthwise` after a 64 MB sweep
    /// (DW_COLD=1 DW_PREFETCH=1, one thread, us prefetched / not) 32x112x112 3x3 565 / 585, 144x56x56 3x3 722 / 782,
    /// 144x56x56 5x5 stride 2 459 / 562, but 240x28x28 5x5 545 / 514. The row form, which reads its rows as it goes,
    /// lost 5-15% with it and does not take it. Lines past the end are never asked for; a default value asks for none.
    /// </summary>
    private struct LinePrefetch
    {
        private float* _a, _b, _c;
        private readonly float* _aEnd, _bEnd, _cEnd;
        private readonly int _perStep;

        /// <summary>The output's <paramref name="outFloats"/> floats (and the residual's) and the next input plane's
        /// <paramref name="nextFloats"/>, spread over <paramref name="steps"/> steps; null pointers are skipped. The
        /// caller has checked <see cref="PrefetchPlanes"/> and SSE.</summary>
        public LinePrefetch(float* output, long outFloats, float* residual, float* next, long nextFloats, int steps)
        {
            _a = output;
            _aEnd = output != null ? output + outFloats : output;
            _b = residual;
            _bEnd = residual != null ? residual + outFloats : residual;
            _c = next;
            _cEnd = next != null ? next + nextFloats : next;
            long lines = (_aEnd - _a + _bEnd - _b + _cEnd - _c) / 16 + 3;
            _perStep = (int)Math.Min(64, lines / Math.Max(1, steps) + 1);
        }

        /// <summary>Asks for the next few lines.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step()
        {
            for (int i = 0; i < _perStep; i++)
            {
                if (_a < _aEnd)
                {
                    Sse.Prefetch1(_a);
                    _a += 16;
                }
                else if (_b < _bEnd)
                {
                    Sse.Prefetch1(_b);
                    _b += 16;
                }
                else if (_c < _cEnd)
                {
                    Sse.Prefetch1(_c);
                    _c += 16;
                }
                else
                {
                    return;
                }
            }
        }
    }

    /// <summary>Whether the row form runs where <see cref="Rows"/> allows it.</summary>
    internal static bool RowsForm { get; set; } = true;

    /// <summary>Floats per vector of the row form.</summary>
    private const int VL = 16;

    /// <summary>Most (vector, kernel column) entries of the row form's column table (kept on the stack).</summary>
    private const int MaxColumns = 256;

    /// <summary>
    /// One (output vector, kernel column) of the row form: the offset of the first input float it loads from the
    /// start of an input row, which of the 16 (stride 1) or 32 (stride 2) floats loaded from there lie inside the row
    /// (the others load as zeros: the padding), and whether all do (plain loads).
    /// </summary>
    private struct RowColumn
    {
        public Vector512<float> First, Second;
        public int Offset;
        public bool Full;
    }

    /// <summary>The 16 inputs one tap reads for a vector of 16 output pixels of a row, by column stride.</summary>
    private interface IColumnStride
    {
        static abstract Vector512<float> Load(float* row, RowColumn* c);
    }

    private struct Stride1 : IColumnStride
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(float* row, RowColumn* c) =>
            c->Full ? Vector512.Load(row + c->Offset) : Avx512F.MaskLoad(row + c->Offset, c->First, Vector512<float>.Zero);
    }

    private struct Stride2 : IColumnStride
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(float* row, RowColumn* c)
        {
            float* p = row + c->Offset;
            Vector512<float> a, b;
            if (c->Full)
            {
                a = Vector512.Load(p);
                b = Vector512.Load(p + VL);
            }
            else
            {
                a = Avx512F.MaskLoad(p, c->First, Vector512<float>.Zero);
                b = Avx512F.MaskLoad(p + VL, c->Second, Vector512<float>.Zero);
            }
            return Avx512F.PermuteVar16x32x2(a, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
        }
    }

    /// <summary>
    /// The forward with no copy of the input: each output row is a run of 16-pixel vectors, four (row, vector) units
    /// at a time, each tap one load of x's row under the vector's column mask (lanes in the left or right padding
    /// load zeros; rows in the top or bottom padding read a row of zeros) and one FMA. Taps are summed in the per-plane
    /// order, from zero, then the bias, the residual and the activation, so the outputs are those of the per-plane
    /// path (the same products of the same values in the same order), stored once under the row's tail mask. The
    /// per-plane path copies every plane into a padded buffer, sums a wide plane and copies its valid columns out:
    /// three passes where this makes one.
    /// <code>output plane: OH rows x ceil(OW/16) vectors; unit u = (u / vectors, u % vectors)</code>
    /// </summary>
    private static void ForwardRows(float* x, float* w, float* bias, float* residual, float* y, ConvShape s,
        EpilogueActivation act, float lo, float hi)
    {
        int vectors = (s.OW + VL - 1) / VL, entries = vectors * s.KW;
        var cols = stackalloc RowColumn[entries];
        for (int v = 0; v < vectors; v++)
        for (int kw = 0; kw < s.KW; kw++)
        {
            int offset = v * VL * s.StrideW - s.PadLeft + kw * s.DilationW, span = VL * s.StrideW;
            var index = Vector512<int>.Indices + Vector512.Create(offset);
            var inside = Vector512.GreaterThanOrEqual(index, Vector512<int>.Zero) & Vector512.LessThan(index, Vector512.Create(s.W));
            var next = index + Vector512.Create(VL);
            var insideNext = Vector512.GreaterThanOrEqual(next, Vector512<int>.Zero) & Vector512.LessThan(next, Vector512.Create(s.W));
            cols[v * s.KW + kw] = new RowColumn
            {
                First = inside.AsSingle(),
                Second = insideNext.AsSingle(),
                Offset = offset,
                Full = offset >= 0 && offset + span <= s.W,
            };
        }
        var zeroArray = Scratch.Rent(s.W + VL);
        try
        {
            float* zero = Scratch.Aligned(zeroArray);
            new Span<float>(zero, s.W).Clear();
            int ohw = s.OH * s.OW, m = s.KPerGroup, taps = s.KH * s.KW;
            long hw = (long)s.H * s.W, planes = (long)s.N * s.K;
            // Planes per task: about 32k tap-FMAs each, so 7x7 and 14x14 planes are not a task apiece.
            int per = (int)Math.Max(1, 32768 / ((long)ohw * taps));
            int tasks = (int)((planes + per - 1) / per);
            RowColumn* cp = cols;
            CpuConv.For(tasks, planes * ohw * taps, t =>
            {
                long p1 = Math.Min(planes, (long)(t + 1) * per);
                for (long p = (long)t * per; p < p1; p++)
                {
                    int n = (int)(p / s.K), k = (int)(p % s.K), g = k / m;
                    float* yp = y + p * ohw;
                    float* xp = x + ((long)n * s.C + g) * hw;
                    var end = new StoreEpilogue(residual == null ? null : residual + p * ohw, act, lo, hi);
                    float b = bias == null ? 0f : bias[k];
                    if (s.StrideW == 1)
                        RowsPlane<Stride1>(xp, w + (long)k * taps, b, end, yp, zero, cp, s);
                    else
                        RowsPlane<Stride2>(xp, w + (long)k * taps, b, end, yp, zero, cp, s);
                }
            });
        }
        finally
        {
            Scratch.Return(zeroArray);
        }
    }

    /// <summary>Input row <paramref name="ih"/> of the plane, or the row of zeros where it lies in the padding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* InputRow(float* xp, float* zero, int ih, ConvShape s) =>
        (uint)ih < (uint)s.H ? xp + (long)ih * s.W : zero;

    /// <summary>One output plane of <see cref="ForwardRows"/>: units of (row, vector) four at a time (a last group
    /// short of four repeats its last unit, computed and not stored).</summary>
    private static void RowsPlane<TS>(float* xp, float* wk, float b, StoreEpilogue end, float* yp, float* zero, RowColumn* cols,
        ConvShape s)
        where TS : struct, IColumnStride
    {
        int vectors = (s.OW + VL - 1) / VL, units = s.OH * vectors, kwCount = s.KW;
        for (int u0 = 0; u0 < units; u0 += 4)
        {
            int last = units - 1;
            int u1 = Math.Min(u0 + 1, last), u2 = Math.Min(u0 + 2, last), u3 = Math.Min(u0 + 3, last);
            int o0 = u0 / vectors, o1 = u1 / vectors, o2 = u2 / vectors, o3 = u3 / vectors;
            RowColumn* c0 = cols + (u0 - o0 * vectors) * kwCount, c1 = cols + (u1 - o1 * vectors) * kwCount;
            RowColumn* c2 = cols + (u2 - o2 * vectors) * kwCount, c3 = cols + (u3 - o3 * vectors) * kwCount;
            int h0 = o0 * s.StrideH - s.PadTop, h1 = o1 * s.StrideH - s.PadTop;
            int h2 = o2 * s.StrideH - s.PadTop, h3 = o3 * s.StrideH - s.PadTop;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int kh = 0; kh < s.KH; kh++)
            {
                int dh = kh * s.DilationH;
                float* r0 = InputRow(xp, zero, h0 + dh, s), r1 = InputRow(xp, zero, h1 + dh, s);
                float* r2 = InputRow(xp, zero, h2 + dh, s), r3 = InputRow(xp, zero, h3 + dh, s);
                float* wr = wk + kh * kwCount;
                for (int j = 0; j < kwCount; j++)
                {
                    var wv = Vector512.Create(wr[j]);
                    a0 = Vector512.FusedMultiplyAdd(TS.Load(r0, c0 + j), wv, a0);
                    a1 = Vector512.FusedMultiplyAdd(TS.Load(r1, c1 + j), wv, a1);
                    a2 = Vector512.FusedMultiplyAdd(TS.Load(r2, c2 + j), wv, a2);
                    a3 = Vector512.FusedMultiplyAdd(TS.Load(r3, c3 + j), wv, a3);
                }
            }
            StoreUnit(a0, u0, vectors, yp, end, b, s.OW);
            if (u0 + 1 <= last)
                StoreUnit(a1, u1, vectors, yp, end, b, s.OW);
            if (u0 + 2 <= last)
                StoreUnit(a2, u2, vectors, yp, end, b, s.OW);
            if (u0 + 3 <= last)
                StoreUnit(a3, u3, vectors, yp, end, b, s.OW);
        }
    }

    /// <summary>Unit <paramref name="u"/>'s outputs: sums plus the bias, then the plane's epilogue (residual,
    /// activation), stored under the row's tail mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreUnit(Vector512<float> acc, int u, int vectors, float* yp, in StoreEpilogue end, float b, int ow)
    {
        int oh = u / vectors, col = (u - oh * vectors) * VL, lanes = ow - col;
        long at = (long)oh * ow + col;
        var sum = acc + Vector512.Create(b);
        if (lanes >= VL)
        {
            end.Apply(sum, at).Store(yp + at);
            return;
        }
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();
        Avx512F.MaskStore(yp + at, mask, end.ApplyMasked(sum, at, mask));
    }

    /// <summary>Planes of at most this many output pixels go channels-last (<see cref="ForwardChannelsLast"/>): 14x14
    /// and 7x7. Measured on MobileNetV2 at batch 1 (bench profile, PROFILE_LEAN=1 PROFILE_DW_CHANNELS_LAST=1, the two
    /// forms alternating call by call): 14x14 layers 0.10-0.22 ms against 0.18-0.27 per plane, 7x7 0.09-0.11 against
    /// 0.27-0.29; 28x28 0.21-0.29 against 0.13-0.28 and 56x56 0.8-2.1 against 0.4-0.7 (the NHWC copy of a large plane
    /// and the transposes cost more than the per-plane tasks save). The bench switches it (0: never).</summary>
    internal static int ChannelsLastMaxPixels { get; set; } = DefaultChannelsLastMaxPixels;

    /// <summary>The default of <see cref="ChannelsLastMaxPixels"/>.</summary>
    internal const int DefaultChannelsLastMaxPixels = 14 * 14;

    /// <summary>Whether <see cref="ForwardChannelsLast"/> runs the layer: AVX-512, multiplier 1, channels in whole
    /// 16-lane vectors, no residual, and a plane small enough that per-plane tasks would be mostly overhead.</summary>
    internal static bool ChannelsLast(ConvShape s, CpuSimd simd, bool residual) =>
        simd == CpuSimd.Vector512 && Avx512F.IsSupported && s.KPerGroup == 1 && s.C % 16 == 0 && !residual
        && (long)s.OH * s.OW <= ChannelsLastMaxPixels;

    /// <summary>
    /// The forward with channels as the vector lanes, as ONNX Runtime's blocked layout runs depthwise layers: each
    /// image is copied once into a zero-padded NHWC buffer (<see cref="DirectConv.ToPaddedNhwc"/>), every output
    /// pixel is <c>sum_t w[t, c] x[pixel + tap t, c]</c> for 16 channels at a time (taps in the per-plane order,
    /// from zero, then the bias and the activation: the same bits as <see cref="Forward"/>'s per-plane path), and
    /// the (pixels, C) result is transposed into y. On a 7x7 or 14x14 plane the per-plane path spends most of a
    /// task on filling and storing a few dozen floats.
    /// </summary>
    private static void ForwardChannelsLast(float* x, float* w, float* bias, float* y, ConvShape s,
        EpilogueActivation act, float lo, float hi, float* cachedWeights)
    {
        int taps = s.KH * s.KW, c = s.C, cs = DirectConv.PixelStride(c), ohw = s.OH * s.OW;
        int hp = s.H + s.PadTop + s.PadBottom, wp = s.W + s.PadLeft + s.PadRight;
        var bufArray = Scratch.Rent((long)hp * wp * cs);
        var outArray = Scratch.Rent((long)ohw * c);
        var wArray = Scratch.Rent((long)taps * c + c);
        try
        {
            float* buf = Scratch.Aligned(bufArray), yt = Scratch.Aligned(outArray), wt = Scratch.Aligned(wArray);
            // wt[t][c] = w[c][t] (cached by the backend, else made here); the bias (or zeros) after the taps.
            if (cachedWeights == null)
                TapMajor(w, s, wt);
            float* biasRow = wt + (long)taps * c;
            for (int ch = 0; ch < c; ch++)
                biasRow[ch] = bias == null ? 0f : bias[ch];
            if (cachedWeights != null)
                wt = cachedWeights;
            int* off = stackalloc int[taps];
            for (int kh = 0; kh < s.KH; kh++)
            for (int kw = 0; kw < s.KW; kw++)
                off[kh * s.KW + kw] = (kh * s.DilationH * wp + kw * s.DilationW) * cs;
            float* wtp = wt, biasp = biasRow;
            int* offp = off;
            for (int n = 0; n < s.N; n++)
            {
                DirectConv.ToPaddedNhwc(x, n, 1, s, s.H, s.W, 1, 1, hp, wp, buf);
                float* bp = buf, ytp = yt;
                CpuConv.For(s.OH, (long)ohw * c * taps, oh =>
                {
                    // Eight output pixels of a row at a time, each its own accumulator (the last group repeats the
                    // row's last pixel where fewer are left, and stores only the real ones): eight independent FMA
                    // chains share each weight load, where one pixel at a time waited out every FMA's latency.
                    long step = (long)s.StrideW * cs;
                    for (int c0 = 0; c0 < c; c0 += 16)
                    {
                        var b = Vector512.Load(biasp + c0);
                        for (int ow = 0; ow < s.OW; ow += 8)
                        {
                            int count = Math.Min(8, s.OW - ow);
                            float* p0 = bp + ((long)oh * s.StrideH * wp + (long)ow * s.StrideW) * cs + c0;
                            long d1 = Math.Min(1, count - 1) * step, d2 = Math.Min(2, count - 1) * step, d3 = Math.Min(3, count - 1) * step;
                            long d4 = Math.Min(4, count - 1) * step, d5 = Math.Min(5, count - 1) * step, d6 = Math.Min(6, count - 1) * step;
                            long d7 = Math.Min(7, count - 1) * step;
                            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                            Vector512<float> a4 = default, a5 = default, a6 = default, a7 = default;
                            for (int t = 0; t < taps; t++)
                            {
                                var wv = Vector512.Load(wtp + (long)t * c + c0);
                                float* q = p0 + offp[t];
                                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q), wv, a0);
                                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d1), wv, a1);
                                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d2), wv, a2);
                                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d3), wv, a3);
                                a4 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d4), wv, a4);
                                a5 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d5), wv, a5);
                                a6 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d6), wv, a6);
                                a7 = Vector512.FusedMultiplyAdd(Vector512.Load(q + d7), wv, a7);
                            }
                            float* o = ytp + ((long)oh * s.OW + ow) * c + c0;
                            Activate(a0 + b, act, lo, hi).Store(o);
                            if (count > 1) Activate(a1 + b, act, lo, hi).Store(o + c);
                            if (count > 2) Activate(a2 + b, act, lo, hi).Store(o + 2 * c);
                            if (count > 3) Activate(a3 + b, act, lo, hi).Store(o + 3 * c);
                            if (count > 4) Activate(a4 + b, act, lo, hi).Store(o + 4 * c);
                            if (count > 5) Activate(a5 + b, act, lo, hi).Store(o + 5 * c);
                            if (count > 6) Activate(a6 + b, act, lo, hi).Store(o + 6 * c);
                            if (count > 7) Activate(a7 + b, act, lo, hi).Store(o + 7 * c);
                        }
                    }
                });
                // y[n][ch][p] = yt[p][ch], 64 channels a task.
                float* yn = y + (long)n * c * ohw;
                CpuConv.For((c + 63) / 64, (long)ohw * c, blk =>
                {
                    int c0 = blk * 64, cn = Math.Min(64, c - c0);
                    DirectConv.Transpose(ytp + c0, c, yn + (long)c0 * ohw, ohw, cn, ohw);
                });
            }
        }
        finally
        {
            Scratch.Return(bufArray);
            Scratch.Return(outArray);
            Scratch.Return(wArray);
        }
    }

    /// <summary>buf = the zero-padded, phase-split copy of one (H, W) plane, phase row by phase row (zeros left of the
    /// data, the data, zeros right of it; rows outside x all zero); where <paramref name="zeroed"/> (the buffer's last
    /// fill had this geometry, <see cref="FillBuffer"/>), only the data is written over the zeros already there.</summary>
    private static void Fill(float* src, float* buf, ConvShape s, Plane pl, CpuSimd simd, bool zeroed)
    {
        int sh = s.StrideH, sw = s.StrideW, wq = pl.Wq;
        bool clear = !zeroed;
        if (clear && pl.Length <= 4096)
            new Span<float>(buf, (int)pl.Length).Clear(); // small planes: one clear beats many short ones
        for (int a = 0; a < sh; a++)
        for (int b = 0; b < sw; b++)
        {
            // Phase columns c hold padded columns c*SW + b; those in [PL, PL+W) hold data, consecutively.
            int last = s.PadLeft + s.W - 1 - b; // the last data column's padded index in this phase, if any
            int c0 = (s.PadLeft - b + sw - 1) / sw, c1 = last < 0 ? 0 : Math.Min(wq, last / sw + 1);
            int count = Math.Max(0, c1 - c0), iw0 = c0 * sw + b - s.PadLeft;
            float* row = buf + (a * sw + b) * pl.P;
            for (int r = 0; r < pl.Hq; r++, row += wq)
            {
                int ih = r * sh + a - s.PadTop;
                if (ih < 0 || ih >= s.H || count == 0)
                {
                    if (clear && pl.Length > 4096)
                        new Span<float>(row, wq).Clear();
                    continue;
                }
                if (clear && pl.Length > 4096)
                {
                    new Span<float>(row, c0).Clear();
                    new Span<float>(row + c0 + count, wq - c0 - count).Clear();
                }
                float* from = src + (long)ih * s.W + iw0;
                if (sw == 1)
                    CopyRow(from, row + c0, count, simd);
                else
                    Gather(from, sw, row + c0, count, s.W - iw0, simd);
            }
        }
        if (clear && pl.Length > 4096)
        {
            long used = pl.Phases * pl.P;
            new Span<float>(buf + used, (int)(pl.Length - used)).Clear();
        }
    }

    /// <summary>dst[i] = src[i] for i &lt; count: sixteen at a time and the rest under a mask (AVX-512; a row of 56
    /// floats through <see cref="Span{T}.CopyTo"/> cost a call per row), else as a span copy.</summary>
    private static void CopyRow(float* src, float* dst, int count, CpuSimd simd)
    {
        if (simd != CpuSimd.Vector512 || !Avx512F.IsSupported)
        {
            new ReadOnlySpan<float>(src, count).CopyTo(new Span<float>(dst, count));
            return;
        }
        int i = 0;
        for (; i + 16 <= count; i += 16)
            Vector512.Load(src + i).Store(dst + i);
        if (i < count)
        {
            var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count - i)).AsSingle();
            Avx512F.MaskStore(dst + i, mask, Avx512F.MaskLoad(src + i, mask, Vector512<float>.Zero));
        }
    }

    /// <summary>Whether <see cref="Gather"/> deinterleaves the last outputs of a stride-2 row under masks (AVX-512)
    /// rather than one by one. Tests and the bench switch it.</summary>
    internal static bool MaskedGatherTail { get; set; } = true;

    /// <summary>dst[i] = src[i*step] for i &lt; count, never reading src[avail] or beyond; step 2 deinterleaves 32
    /// floats into 16 with one permute (AVX-512) or 16 into 8 (AVX2).</summary>
    internal static void Gather(float* src, int step, float* dst, int count, int avail, CpuSimd simd)
    {
        int i = 0;
        if (step == 2)
        {
            if (simd == CpuSimd.Vector512 && Avx512F.IsSupported)
            {
                var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                for (; i + 16 <= count && 2 * i + 32 <= avail; i += 16)
                    Avx512F.PermuteVar16x32x2(Vector512.Load(src + 2 * i), even, Vector512.Load(src + 2 * i + 16)).Store(dst + i);
                // The rest (fewer than 16 outputs, or the row's end closer than 32 floats) under masks: lanes past
                // the last float it may read load as zeros, lanes past count are not stored.
                for (; MaskedGatherTail && i < count; i += 16)
                {
                    int outputs = Math.Min(16, count - i), reads = Math.Min(2 * outputs - 1, avail - 2 * i);
                    var lanes = Vector512<int>.Indices;
                    var low = Avx512F.MaskLoad(src + 2 * i, Vector512.LessThan(lanes, Vector512.Create(reads)).AsSingle(), Vector512<float>.Zero);
                    var high = Avx512F.MaskLoad(src + 2 * i + 16, Vector512.LessThan(lanes, Vector512.Create(reads - 16)).AsSingle(), Vector512<float>.Zero);
                    Avx512F.MaskStore(dst + i, Vector512.LessThan(lanes, Vector512.Create(outputs)).AsSingle(),
                        Avx512F.PermuteVar16x32x2(low, even, high));
                }
            }
            else if (simd == CpuSimd.Vector256 && Avx2.IsSupported)
            {
                for (; i + 8 <= count && 2 * i + 16 <= avail; i += 8)
                {
                    // Within 128-bit lanes [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit pairs reordered.
                    var p = Avx.Shuffle(Vector256.Load(src + 2 * i), Vector256.Load(src + 2 * i + 8), 0b10_00_10_00);
                    Avx2.Permute4x64(p.AsDouble(), 0b11_01_10_00).AsSingle().Store(dst + i);
                }
            }
        }
        for (; i < count; i++)
            dst[i] = src[i * step];
    }

    /// <summary>wide[q] = sum_t w[t] buf[q + off[t]] for q in [0, count) (vector paths run to whole vectors past
    /// count, into the slack).</summary>
    private static void Taps(float* buf, int* off, float* w, int taps, float* wide, int count, CpuSimd simd, ref LinePrefetch ahead)
    {
        if (simd == CpuSimd.Vector512)
        {
            for (int q = 0; q < count; q += 64)
            {
                ahead.Step();
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = 0; t < taps; t++)
                {
                    float* p = buf + q + off[t];
                    var c = Vector512.Create(w[t]);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), c, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), c, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), c, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), c, a3);
                }
                a0.Store(wide + q);
                a1.Store(wide + q + 16);
                a2.Store(wide + q + 32);
                a3.Store(wide + q + 48);
            }
            return;
        }
        if (simd == CpuSimd.Vector256)
        {
            for (int q = 0; q < count; q += 32)
            {
                ahead.Step();
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = 0; t < taps; t++)
                {
                    float* p = buf + q + off[t];
                    var c = Vector256.Create(w[t]);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Load(p), c, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), c, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 16), c, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 24), c, a3);
                }
                a0.Store(wide + q);
                a1.Store(wide + q + 8);
                a2.Store(wide + q + 16);
                a3.Store(wide + q + 24);
            }
            return;
        }
        for (int q = 0; q < count; q++)
        {
            float a = 0f;
            for (int t = 0; t < taps; t++)
                a += w[t] * buf[q + off[t]];
            wide[q] = a;
        }
    }

    /// <summary>y[oh, ow] = act(wide[oh*Wq + ow] + b + residual[oh, ow]) for the OW valid columns of each row.</summary>
    private static void Store(float* wide, int wq, float b, float* residual, float* y, int oh, int ow, CpuSimd simd,
        EpilogueActivation act, float lo, float hi)
    {
        for (int r = 0; r < oh; r++, wide += wq, y += ow)
        {
            float* res = residual == null ? null : residual + (long)r * ow;
            int i = 0;
            if (simd == CpuSimd.Vector512)
            {
                var bv = Vector512.Create(b);
                for (; i + 16 <= ow; i += 16)
                {
                    var v = Vector512.Load(wide + i) + bv;
                    if (res != null)
                        v += Vector512.Load(res + i);
                    Activate(v, act, lo, hi).Store(y + i);
                }
                if (i < ow && MaskedRowTail && Avx512F.IsSupported)
                {
                    // The row's last outputs as one vector under a mask (wide has slack past every row; the residual
                    // is read and y written only in the row): a 28-wide row's last 12 SiLUs one by one took more than
                    // the rest of the store (EfficientNet-B0's 240x28x28 5x5 layer with SiLU fused 0.81 ms against
                    // 0.56 unfused, one thread).
                    var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(ow - i)).AsSingle();
                    var v = Vector512.Load(wide + i) + bv;
                    if (res != null)
                        v += Avx512F.MaskLoad(res + i, mask, Vector512<float>.Zero);
                    Avx512F.MaskStore(y + i, mask, Activate(v, act, lo, hi));
                    i = ow;
                }
            }
            if (simd != CpuSimd.Scalar)
            {
                var bv = Vector256.Create(b);
                for (; i + 8 <= ow; i += 8)
                {
                    var v = Vector256.Load(wide + i) + bv;
                    if (res != null)
                        v += Vector256.Load(res + i);
                    if (act == EpilogueActivation.Relu)
                        v = Vector256.Max(v, Vector256<float>.Zero);
                    else if (act == EpilogueActivation.Clip)
                        v = new ClipOp(lo, hi).Apply(v);
                    else if (act == EpilogueActivation.Silu)
                        v *= new SigmoidOp().Apply(v);
                    v.Store(y + i);
                }
                // Rows shorter than a vector (14 and 7 wide) and the tails of longer ones (SiLU: one by one below).
                for (; act != EpilogueActivation.Silu && i + 4 <= ow; i += 4)
                {
                    var v = Vector128.Load(wide + i) + Vector128.Create(b);
                    if (res != null)
                        v += Vector128.Load(res + i);
                    if (act == EpilogueActivation.Relu)
                        v = Vector128.Max(v, Vector128<float>.Zero);
                    else if (act == EpilogueActivation.Clip)
                        v = Vector128.ConditionalSelect(Vector128.LessThan(v, Vector128.Create(lo)), Vector128.Create(lo),
                            Vector128.ConditionalSelect(Vector128.GreaterThan(v, Vector128.Create(hi)), Vector128.Create(hi), v));
                    v.Store(y + i);
                }
            }
            for (; i < ow; i++)
            {
                float v = wide[i] + b;
                if (res != null)
                    v += res[i];
                y[i] = Activate(v, act, lo, hi);
            }
        }
    }

    /// <summary>The fused activation of 16 outputs (ReLU, clip, SiLU as the unfused ops compute them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Activate(Vector512<float> v, EpilogueActivation act, float lo, float hi) => act switch
    {
        EpilogueActivation.Relu => Vector512.Max(v, Vector512<float>.Zero),
        EpilogueActivation.Clip => new ClipOp(lo, hi).Apply(v),
        EpilogueActivation.Silu => v * new SigmoidOp().Apply(v),
        _ => v,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Activate(float v, EpilogueActivation act, float lo, float hi) => act switch
    {
        EpilogueActivation.Relu => MathF.Max(v, 0f),
        EpilogueActivation.Clip => new Clip(lo, hi).Value(v),
        EpilogueActivation.Silu => v * new SigmoidOp().Apply(v),
        _ => v,
    };

    // ---- backward data ----

    /// <summary>w'[k, 0, kh, kw] = w[k, 0, KH-1-kh, KW-1-kw]: the kernel of the stride-1 backward-data conv
    /// (multiplier 1, so the channel transpose is the identity).</summary>
    public static float[] FlipWeights(float* w, ConvShape s)
    {
        int taps = s.KH * s.KW;
        var f = GC.AllocateUninitializedArray<float>(checked((int)s.WeightLength), pinned: true);
        for (int k = 0; k < s.K; k++)
        for (int t = 0; t < taps; t++)
            f[k * taps + t] = w[(long)k * taps + taps - 1 - t];
        return f;
    }

    /// <summary>The stride-1 multiplier-1 backward-data conv's shape (<see cref="CpuConv.FlippedShape"/>), or null
    /// where <see cref="BackwardData"/> must scatter (strides, multipliers, padding past the kernel's reach).</summary>
    public static ConvShape? FlippedShape(ConvShape s) => s.KPerGroup == 1 ? CpuConv.FlippedShape(s) : null;

    /// <summary>
    /// dx[n, g, ih, iw] = sum over m, taps and output pixels reaching (ih, iw) of w[g*M+m, t] dy[n, g*M+m, oh, ow]:
    /// per plane, each tap adds w[t] * dy_wide into the phase plane at its offset (the forward's gather run
    /// backwards), then the unpadded pixels are read out. Any stride, padding, dilation and multiplier.
    /// </summary>
    public static void BackwardData(float* dy, float* w, float* dx, ConvShape s, CpuSimd simd)
    {
        var pl = new Plane(s);
        int m = s.KPerGroup, ohw = s.OH * s.OW;
        long hw = (long)s.H * s.W;
        void Run(int n, int g)
        {
            float* buf = Buffer(ref t_buf, pl.Length);
            t_filledArray = null; // scattered into everywhere: its padding is no longer known to be zero
            float* wide = Buffer(ref t_wide, pl.WideRounded + 64);
            int* off = stackalloc int[pl.Taps];
            pl.Offsets(s, off);
            new Span<float>(buf, checked((int)pl.Length)).Clear();
            for (int j = 0; j < m; j++)
            {
                int k = g * m + j;
                Widen(dy + ((long)n * s.K + k) * ohw, wide, s.OH, s.OW, pl);
                Scatter(wide, off, w + (long)k * pl.Taps, pl.Taps, buf, pl.WideRounded, simd);
            }
            Unpad(buf, dx + ((long)n * s.C + g) * hw, s, pl);
        }
        ForPlanes(s, Run);
    }

    /// <summary>wide[oh*Wq + ow] = src[oh, ow], zero in the Wq - OW extra columns and up to the rounded length.</summary>
    private static void Widen(float* src, float* wide, int oh, int ow, Plane pl)
    {
        float* d = wide;
        for (int r = 0; r < oh; r++, src += ow, d += pl.Wq)
        {
            new ReadOnlySpan<float>(src, ow).CopyTo(new Span<float>(d, ow));
            new Span<float>(d + ow, pl.Wq - ow).Clear();
        }
        new Span<float>(wide + pl.Wide, pl.WideRounded - pl.Wide).Clear();
    }

    /// <summary>buf[q + off[t]] += w[t] wide[q] for q in [0, count), count a multiple of 64, in blocks of 1024
    /// pixels so the block's taps stay in L1. Extra columns of wide are zero, so what they add is zero.</summary>
    private static void Scatter(float* wide, int* off, float* w, int taps, float* buf, int count, CpuSimd simd)
    {
        const int Block = 1024;
        for (int q0 = 0; q0 < count; q0 += Block)
        {
            int q1 = Math.Min(count, q0 + Block);
            for (int t = 0; t < taps; t++)
            {
                float* d = buf + off[t];
                float c = w[t];
                int q = q0;
                if (simd == CpuSimd.Vector512)
                {
                    var cv = Vector512.Create(c);
                    for (; q < q1; q += 16)
                        Vector512.FusedMultiplyAdd(Vector512.Load(wide + q), cv, Vector512.Load(d + q)).Store(d + q);
                }
                else if (simd == CpuSimd.Vector256)
                {
                    var cv = Vector256.Create(c);
                    for (; q < q1; q += 8)
                        Vector256.FusedMultiplyAdd(Vector256.Load(wide + q), cv, Vector256.Load(d + q)).Store(d + q);
                }
                for (; q < q1; q++)
                    d[q] += c * wide[q];
            }
        }
    }

    /// <summary>dst[ih, iw] = buf at padded (ih + PT, iw + PL).</summary>
    private static void Unpad(float* buf, float* dst, ConvShape s, Plane pl)
    {
        for (int ih = 0; ih < s.H; ih++, dst += s.W)
        {
            int hp = ih + s.PadTop;
            if (s.StrideW == 1)
            {
                new ReadOnlySpan<float>(buf + pl.At(s, hp, s.PadLeft), s.W).CopyTo(new Span<float>(dst, s.W));
                continue;
            }
            for (int b = 0; b < s.StrideW && b < s.W; b++)
            {
                float* src = buf + pl.At(s, hp, b + s.PadLeft);
                int count = (s.W - b + s.StrideW - 1) / s.StrideW;
                for (int i = 0; i < count; i++)
                    dst[b + i * s.StrideW] = src[i];
            }
        }
    }

    // ---- backward weights ----

    /// <summary>
    /// dw[g*M+m, 0, kh, kw] = sum over n, oh, ow of dy[n, g*M+m, oh, ow] x[n, g, oh*SH - PT + kh*DH, ow*SW - PL + kw*DW]
    /// (zero outside x): per (image, channel) plane one dot product per tap between dy_wide and the phase plane at
    /// the tap's offset, stored per image; then summed over images in double, in image order.
    /// </summary>
    public static void BackwardWeights(float* x, float* dy, float* dw, ConvShape s, CpuSimd simd)
    {
        var pl = new Plane(s);
        int m = s.KPerGroup, ohw = s.OH * s.OW, taps = pl.Taps;
        long hw = (long)s.H * s.W;
        var partial = new double[(long)s.N * s.K * taps];
        fixed (double* part = partial)
        {
            double* pp = part;
            void Run(int n, int g)
            {
                float* buf = FillBuffer(s, pl, out bool zeroed);
                float* wide = Buffer(ref t_wide, pl.WideRounded + 64);
                int* off = stackalloc int[taps];
                pl.Offsets(s, off);
                Fill(x + ((long)n * s.C + g) * hw, buf, s, pl, simd, zeroed);
                for (int j = 0; j < m; j++)
                {
                    int k = g * m + j;
                    Widen(dy + ((long)n * s.K + k) * ohw, wide, s.OH, s.OW, pl);
                    double* dst = pp + ((long)n * s.K + k) * taps;
                    for (int t = 0; t < taps; t++)
                        dst[t] = Dot(wide, buf + off[t], pl.WideRounded, simd);
                }
            }
            ForPlanes(s, Run);
            for (int k = 0; k < s.K; k++)
            for (int t = 0; t < taps; t++)
            {
                double acc = 0;
                for (int n = 0; n < s.N; n++)
                    acc += pp[((long)n * s.K + k) * taps + t];
                dw[(long)k * taps + t] = (float)acc;
            }
        }
    }

    /// <summary>sum_i a[i] b[i] over count floats, count a multiple of 64.</summary>
    private static double Dot(float* a, float* b, int count, CpuSimd simd)
    {
        int i = 0;
        double sum = 0;
        if (simd == CpuSimd.Vector512)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i < count; i += 64)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 32), Vector512.Load(b + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 48), Vector512.Load(b + i + 48), s3);
            }
            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (simd == CpuSimd.Vector256)
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i < count; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), s3);
            }
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < count; i++)
            sum += a[i] * b[i];
        return sum;
    }
}
