using System.Runtime.Intrinsics;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// The managed CPU backend (DESIGN.md section 7): plain C# with <c>Vector512</c>/<c>Vector256</c> FMA
/// micro-kernels, packing, cache blocking and <see cref="Parallel"/> over tiles; no native code. Tensors are
/// pinned float arrays in logical row-major NCHW order (reshaped views and flatten need no conversion).
/// Convolutions take one of five forms per layer (<see cref="CpuConv.ChooseForm"/>): the planar form
/// (<see cref="PlanarConv"/>, NCHW output rows as vectors) for layers of at most 4 input channels, expanding 1x1
/// layers on 14x14 planes and narrow ones on 14x14 and 28x28 planes, Winograd F(4x4, 3x3)
/// (<see cref="WinogradConv"/>) for 3x3 stride-1 layers where its cost model says it pays, the direct NHWC form
/// (<see cref="DirectConv"/>, no im2col) for one-group layers with 16+ input channels, else implicit-im2col GEMMs
/// over a phase-split padded input (<see cref="CpuConv"/>); depthwise layers (one input channel per group) run
/// <see cref="DepthwiseConv"/> instead (CpuBackend.Depthwise.cs); the packed forms of weights are cached per storage and
/// rebuilt only after the weights are written. Element-wise ops
/// are <c>CpuElementwise.Map</c> over operator structs, so a new one is a struct and one line.
/// </summary>
internal sealed unsafe partial class CpuBackend : Backend
{
    private readonly CpuSimd _simd;

    /// <summary>A backend at the widest vector width this machine accelerates.</summary>
    public CpuBackend()
        : this(CpuSimdDetect.Best)
    {
    }

    /// <summary>A backend at a chosen vector width (tests keep the narrower fallbacks correct with this).</summary>
    public CpuBackend(CpuSimd simd)
    {
        CpuParallel.ReadSpinSetting();
        _simd = simd;
        DeviceDescription = $"managed CPU, {simd} kernels ({Environment.ProcessorCount} cores)";
    }

    /// <summary>The vector width the kernels run at.</summary>
    public CpuSimd Simd => _simd;

    /// <inheritdoc/>
    public override string Name => "cpu";

    /// <inheritdoc/>
    public override string DeviceDescription { get; }

    private static CpuStorage S(Tensor t) => (CpuStorage)t.Storage;

    /// <summary>Input pointer.</summary>
    private static float* In(Tensor t) => S(t).FloatPtr;

    /// <summary>Output pointer; marks the storage written (invalidates cached packed forms).</summary>
    private static float* Out(Tensor t)
    {
        var s = S(t);
        s.Touch();
        return s.FloatPtr;
    }

    /// <summary>Output pointer for an operation that writes every element of <paramref name="t"/> (no zeroing of a
    /// fresh tensor first); marks the storage written.</summary>
    private static float* Over(Tensor t)
    {
        var s = S(t);
        s.Touch();
        return s.OverwritePtr;
    }

    private static float* InOrNull(Tensor? t) => t == null ? null : In(t);

    /// <inheritdoc/>
    public override Memory<float>? HostMemory(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t.Type != ElementType.Float32 || t.IsDisposed)
            throw new ArgumentException($"cpu backend: HostMemory needs a live float tensor, got {t.Type} {t.ShapeText}", nameof(t));
        var s = S(t);
        s.Touch(); // the caller may write: packed forms of this storage are stale
        return s.FloatMemory(t.Length);
    }

    /// <inheritdoc/>
    public override long CacheMark => CpuStorage.DerivedClock;

    /// <inheritdoc/>
    public override void TrimCaches(long mark)
    {
        CpuStorage.TrimDerived(mark);
        CpuStorage.TrimPool();
        Scratch.Trim();
    }

    /// <inheritdoc/>
    public override long WeightFormCacheBytes
    {
        get => CpuStorage.DerivedCapBytes;
        set => CpuStorage.DerivedCapBytes = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be positive");
    }

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(int length, ElementType type) => new CpuStorage(length, type);

    /// <inheritdoc/>
    protected override void Write(TensorStorage storage, ReadOnlySpan<float> data)
    {
        var s = (CpuStorage)storage;
        s.Touch();
        s.Write(data);
    }

    /// <inheritdoc/>
    protected override float[] Read(TensorStorage storage, int length) => ((CpuStorage)storage).FloatMemory(length).Span.ToArray();

    // ---- convolution ----

    private static string WeightKey(string kind, ConvShape s) => $"{kind}:{s.K}:{s.C}:{s.KH}:{s.KW}:{s.Groups}";

    /// <inheritdoc/>
    protected override void Conv2dCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s) => Conv(x, w, b, y, s, StoreEpilogue.None);

    /// <inheritdoc/>
    protected override void Conv2dReluCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s) =>
        Conv(x, w, b, y, s, StoreEpilogue.ReluIf(true));

    /// <summary>False runs <see cref="Conv2dFusedCore"/> as separate passes (the base class's), for benchmarks that
    /// compare the two.</summary>
    internal static bool FuseEpilogues { get; set; } = true;

    /// <summary>The depthwise, Winograd, direct and column forms add the residual and apply the activation as they
    /// store the output (<see cref="DepthwiseConv"/> itself, the others through <see cref="StoreEpilogue"/>); the
    /// pixel-row form takes the separate passes of the base class.</summary>
    protected override void Conv2dFusedCore(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        if (FuseEpilogues && TryDepthwise(x, w, b, residual, y, s, activation, lo, hi))
            return;
        if (!FuseEpilogues || CpuConv.ChooseForm(s, _simd) is not (ConvForm.Winograd or ConvForm.Direct or ConvForm.Column or ConvForm.Planar))
        {
            base.Conv2dFusedCore(x, w, b, residual, y, s, activation, lo, hi);
            return;
        }
        Conv(x, w, b, y, s, new StoreEpilogue(InOrNull(residual), activation, lo, hi));
    }

    /// <summary>The planar form (a stem) pools its rows as it makes them (<see cref="PlanarConv.ForwardMaxPool"/>) where
    /// the pool is one <see cref="CpuPooling.MaxValues"/> takes; any other pair runs as the base class's two passes.</summary>
    protected override void Conv2dMaxPoolCore(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s, EpilogueActivation activation,
        float lo, float hi, PoolShape p)
    {
        if (!FuseEpilogues || DepthwiseConv.Supports(s) || CpuConv.ChooseForm(s, _simd) != ConvForm.Planar || !PlanarConv.PoolFuses(s, p))
        {
            base.Conv2dMaxPoolCore(x, w, b, y, s, activation, lo, hi, p);
            return;
        }
        float* wp = In(w);
        var packedP = S(w).Derived(WeightKey("fwdP", s), () => PlanarConv.PackWeights(wp, s));
        fixed (float* pw = packedP)
            PlanarConv.ForwardMaxPool(In(x), pw, InOrNull(b), Over(y), s, new StoreEpilogue(null, activation, lo, hi), p);
    }

    /// <summary>The forward conv in the layer's form; the Winograd, direct and column forms apply the
    /// <paramref name="epilogue"/> as they store the output, the pixel-row form its ReLU in a pass after (it takes no
    /// other epilogue).</summary>
    private void Conv(Tensor x, Tensor w, Tensor? b, Tensor y, ConvShape s, StoreEpilogue epilogue)
    {
        if (DepthwiseConv.Supports(s))
        {
            DepthwiseForward(x, w, b, epilogue.Residual, y, s, epilogue.Activation, epilogue.Lo, epilogue.Hi);
            return;
        }
        float* wp = In(w);
        var form = CpuConv.ChooseForm(s, _simd);
        if (form == ConvForm.Winograd)
        {
            var packedW = S(w).Derived(WeightKey("fwdW", s), () => WinogradConv.PackWeights(wp, s));
            fixed (float* pw = packedW)
                WinogradConv.Forward(In(x), pw, InOrNull(b), Over(y), s, _simd, epilogue);
            return;
        }
        if (form == ConvForm.Planar)
        {
            var packedP = S(w).Derived(WeightKey("fwdP", s), () => PlanarConv.PackWeights(wp, s));
            fixed (float* pw = packedP)
                PlanarConv.Forward(In(x), pw, InOrNull(b), Over(y), s, epilogue);
            return;
        }
        if (form == ConvForm.Direct)
        {
            var packedD = S(w).Derived(WeightKey("fwdD", s), () => DirectConv.PackWeights(wp, s));
            fixed (float* pw = packedD)
                DirectConv.Forward(In(x), pw, InOrNull(b), Over(y), s, _simd, epilogue);
            return;
        }
        if (form == ConvForm.PixelRow)
        {
            if (epilogue.Residual != null || epilogue.Activation is not (EpilogueActivation.None or EpilogueActivation.Relu))
                throw new InvalidOperationException("cpu backend: the pixel-row conv form takes a ReLU epilogue only");
            var packedT = S(w).Derived(WeightKey("fwdT", s), () => CpuConv.PackForwardWeightsTransposed(wp, s));
            fixed (float* pw = packedT)
                CpuConv.ForwardTransposed(In(x), pw, InOrNull(b), Over(y), s, _simd);
            if (epilogue.Activation == EpilogueActivation.Relu)
                ReluCore(y, y);
            return;
        }
        var packed = S(w).Derived(WeightKey("fwd", s), () => CpuConv.PackForwardWeights(wp, s));
        fixed (float* pw = packed)
            CpuConv.Forward(In(x), pw, InOrNull(b), Over(y), s, _simd, epilogue);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardDataCore(Tensor dy, Tensor w, Tensor dx, ConvShape s)
    {
        if (TryDepthwiseBackwardData(dy, w, dx, s))
            return;
        float* wp = In(w);
        if (CpuConv.FlippedShape(s) is { } flipped)
        {
            // Stride 1: backward-data is a forward convolution of dy with the flipped, transposed kernel.
            var form = CpuConv.ChooseForm(flipped, _simd);
            if (form == ConvForm.Winograd)
            {
                var packedFW = S(w).Derived(WeightKey("flipW", s), () => CpuConv.PackFlipped(wp, s, flipped, ConvForm.Winograd));
                fixed (float* pw = packedFW)
                    WinogradConv.Forward(In(dy), pw, null, Over(dx), flipped, _simd);
                return;
            }
            if (form == ConvForm.Planar)
            {
                var packedFP = S(w).Derived(WeightKey("flipP", s), () => CpuConv.PackFlipped(wp, s, flipped, ConvForm.Planar));
                fixed (float* pw = packedFP)
                    PlanarConv.Forward(In(dy), pw, null, Over(dx), flipped, StoreEpilogue.None);
                return;
            }
            if (form == ConvForm.Direct)
            {
                var packedFD = S(w).Derived(WeightKey("flipD", s), () => CpuConv.PackFlipped(wp, s, flipped, ConvForm.Direct));
                fixed (float* pw = packedFD)
                    DirectConv.Forward(In(dy), pw, null, Over(dx), flipped, _simd);
                return;
            }
            if (form == ConvForm.PixelRow)
            {
                var packedFT = S(w).Derived(WeightKey("flipT", s), () => CpuConv.PackFlipped(wp, s, flipped, ConvForm.PixelRow));
                fixed (float* pw = packedFT)
                    CpuConv.ForwardTransposed(In(dy), pw, null, Over(dx), flipped, _simd);
                return;
            }
            var packed = S(w).Derived(WeightKey("flip", s), () => CpuConv.PackFlippedWeights(wp, s, flipped));
            fixed (float* pw = packed)
                CpuConv.Forward(In(dy), pw, null, Over(dx), flipped, _simd);
            return;
        }
        if ((CpuConv.FormOverride is null or ConvForm.Direct or ConvForm.Winograd) && DirectConv.SupportsBackwardData(s, _simd))
        {
            // Strided (or over-padded): one direct conv per phase of dx, no col2im. The phases, and so the packing,
            // depend on the whole geometry.
            string key = WeightKey("bwdD", s) + $":{s.H}:{s.W}:{s.StrideH}:{s.StrideW}:{s.PadTop}:{s.PadLeft}:{s.DilationH}:{s.DilationW}";
            var packedB = S(w).Derived(key, () => DirectConv.PackBackwardWeights(wp, s));
            fixed (float* pw = packedB)
                DirectConv.BackwardData(In(dy), pw, Over(dx), s, _simd);
            return;
        }
        var packedT = S(w).Derived(WeightKey("wT", s), () => CpuConv.PackTransposedWeights(wp, s));
        fixed (float* pw = packedT)
            CpuConv.BackwardDataGeneral(In(dy), pw, Over(dx), s, _simd);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        if (!TryDepthwiseBackwardWeights(x, dy, dw, s))
            CpuConv.BackwardWeights(In(x), In(dy), Out(dw), s, _simd);
    }

    /// <inheritdoc/>
    protected override void Conv2dBackwardBiasCore(Tensor dy, Tensor db, ConvShape s) =>
        CpuConv.BackwardBias(In(dy), Out(db), s);

    // ---- ReLU and element-wise ----

    /// <inheritdoc/>
    protected override void ReluCore(Tensor x, Tensor y) =>
        CpuElementwise.Map(In(x), Over(y), y.Length, new ReluOp(), _simd);

    /// <inheritdoc/>
    protected override void ReluBackwardCore(Tensor x, Tensor dy, Tensor dx, ReluRule rule)
    {
        float* xp = In(x), g = In(dy), d = Over(dx);
        switch (rule)
        {
            case ReluRule.Standard:
                CpuElementwise.Map(xp, g, d, dx.Length, new ReluGradOp(), _simd);
                break;
            case ReluRule.Guided:
                CpuElementwise.Map(xp, g, d, dx.Length, new GuidedReluGradOp(), _simd);
                break;
            default:
                CpuElementwise.Map(xp, g, d, dx.Length, new DeconvReluGradOp(), _simd);
                break;
        }
    }

    /// <inheritdoc/>
    protected override void AddCore(Tensor a, Tensor b, Tensor y) =>
        CpuElementwise.Map(In(a), In(b), Over(y), y.Length, new AddOp(), _simd);

    /// <inheritdoc/>
    protected override void AddReluCore(Tensor a, Tensor b, Tensor y) =>
        CpuElementwise.Map(In(a), In(b), Over(y), y.Length, new AddReluOp(), _simd);

    /// <inheritdoc/>
    protected override void ScaleCore(Tensor x, Tensor y, float scale) =>
        CpuElementwise.Map(In(x), Over(y), y.Length, new ScaleOp(scale), _simd);

    // ---- element-wise maps, broadcasting, structural ops (CpuMisc) ----

    /// <inheritdoc/>
    protected override void UnaryCore<TOp>(TOp op, Tensor x, Tensor y) => CpuMisc.Unary(In(x), Over(y), y.Length, op);

    /// <inheritdoc/>
    protected override void UnaryBackwardCore<TOp>(TOp op, Tensor x, Tensor dy, Tensor dx) =>
        CpuMisc.UnaryBackward(In(x), In(dy), Out(dx), dx.Length, op);

    /// <inheritdoc/>
    protected override void UnaryJetCore<TOp>(TOp op, Tensor x0, Tensor xs, Tensor ys) =>
        CpuMisc.UnaryJet(In(x0), In(xs), Out(ys), x0.Length, op);

    /// <inheritdoc/>
    protected override void BinaryCore(Tensor a, Tensor b, Tensor y, BroadcastShape s) => CpuMisc.Binary(In(a), In(b), Over(y), s);

    /// <inheritdoc/>
    protected override void BinaryBackwardCore(Tensor a, Tensor b, Tensor dy, Tensor grad, BroadcastShape s, int operand) =>
        CpuMisc.BinaryBackward(In(a), In(b), In(dy), Out(grad), s, operand);

    /// <inheritdoc/>
    protected override void ChannelAffineCore(Tensor x, Tensor scale, Tensor shift, Tensor y, int channels, int inner) =>
        CpuMisc.ChannelAffine(In(x), In(scale), In(shift), Out(y), y.Length, channels, inner);

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardDataCore(Tensor dy, Tensor scale, Tensor dx, int channels, int inner) =>
        CpuMisc.ChannelAffine(In(dy), In(scale), null, Out(dx), dx.Length, channels, inner);

    /// <inheritdoc/>
    protected override void ChannelAffineBackwardParamsCore(Tensor x, Tensor dy, Tensor dscale, Tensor dshift, int channels, int inner) =>
        CpuMisc.ChannelAffineBackwardParams(In(x), In(dy), Out(dscale), Out(dshift), x.Length / (channels * inner), channels, inner);

    /// <inheritdoc/>
    protected override void ConcatCopyInCore(Tensor part, Tensor whole, ChannelSlice s) => CpuMisc.Concat(In(part), Out(whole), s, copyIn: true);

    /// <inheritdoc/>
    protected override void ConcatCopyOutCore(Tensor whole, Tensor part, ChannelSlice s) => CpuMisc.Concat(Out(part), In(whole), s, copyIn: false);

    /// <inheritdoc/>
    protected override void PadCore(Tensor x, Tensor y, PadShape s, float value) => CpuMisc.Pad(In(x), Out(y), s, value);

    /// <inheritdoc/>
    protected override void PadBackwardCore(Tensor dy, Tensor dx, PadShape s) => CpuMisc.PadBackward(In(dy), Out(dx), s);

    /// <inheritdoc/>
    protected override void SoftmaxCore(Tensor x, Tensor y, int rows, int cols) => CpuMisc.Softmax(In(x), Out(y), rows, cols);

    /// <inheritdoc/>
    protected override void SoftmaxBackwardCore(Tensor y, Tensor dy, Tensor dx, int rows, int cols) =>
        CpuMisc.SoftmaxBackward(In(y), In(dy), Out(dx), rows, cols);

    /// <inheritdoc/>
    protected override void MaxPoolRouteCore(Tensor x, Tensor argmax, Tensor y, PoolShape s) =>
        CpuMisc.MaxPoolRoute(In(x), S(argmax).IntPtr, Out(y), y.Length, s);

    /// <inheritdoc/>
    protected override void CopyRangeCore(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) =>
        Buffer.MemoryCopy(In(src) + srcOffset, Out(dst) + dstOffset, (long)length * 4, (long)length * 4);

    // ---- pooling ----

    /// <inheritdoc/>
    protected override void MaxPoolCore(Tensor x, Tensor y, Tensor argmax, PoolShape s)
    {
        var a = S(argmax);
        a.Touch();
        CpuPooling.MaxForward(In(x), Over(y), a.IntPtr, s);
    }

    /// <inheritdoc/>
    protected override void MaxPoolValuesCore(Tensor x, Tensor y, PoolShape s)
    {
        if (!CpuPooling.MaxValues(In(x), Over(y), s))
            base.MaxPoolValuesCore(x, y, s);
    }

    /// <inheritdoc/>
    protected override void MaxPoolBackwardCore(Tensor dy, Tensor argmax, Tensor dx, PoolShape s) =>
        CpuPooling.MaxBackward(In(dy), S(argmax).IntPtr, Over(dx), s);

    /// <inheritdoc/>
    protected override void AvgPoolCore(Tensor x, Tensor y, PoolShape s) => CpuPooling.AvgForward(In(x), Out(y), s);

    /// <inheritdoc/>
    protected override void AvgPoolBackwardCore(Tensor dy, Tensor dx, PoolShape s) =>
        CpuPooling.AvgBackward(In(dy), Out(dx), s);

    /// <inheritdoc/>
    protected override void GlobalAvgPoolCore(Tensor x, Tensor y, int plane) =>
        CpuPooling.GlobalAvgForward(In(x), Over(y), y.Length, plane);

    /// <inheritdoc/>
    protected override void GlobalAvgPoolBackwardCore(Tensor dy, Tensor dx, int plane) =>
        CpuPooling.GlobalAvgBackward(In(dy), Over(dx), dy.Length, plane);

    // ---- dense ----

    /// <summary>C[m,n] (+)= alpha A B with A(i,kk) = a[i*ars + kk*acs], B(kk,j) = b[kk*brs + j*bcs];
    /// <paramref name="serial"/> keeps the GEMM on the calling thread.</summary>
    private void Dense(int m, int n, int k, float* a, long ars, long acs, float alpha,
        float* b, long brs, long bcs, float* c, bool accumulate, bool serial = false) =>
        Dense(m, n, k, a, ars, acs, alpha, new StridedPanels(b, brs, bcs, n), c, accumulate, serial);

    /// <summary>Whether <see cref="Dense{TB}"/> reads a row-major A in place against prepacked weights (AVX-512,
    /// alpha 1) instead of packing it. Tests and the bench switch it.</summary>
    internal static bool ReadARows { get; set; } = true;

    /// <summary>C[m,n] (+)= alpha A B (+ <paramref name="columnBias"/>[n]) with A(i,kk) = a[i*ars + kk*acs] packed here
    /// (or read in place, <see cref="ReadARows"/>), B from <paramref name="b"/>.</summary>
    private void Dense<TB>(int m, int n, int k, float* a, long ars, long acs, float alpha, TB b, float* c, bool accumulate,
        bool serial = false, float* columnBias = null, bool gelu = false)
        where TB : struct, IPanelSource
    {
        if (ReadARows && _simd == CpuSimd.Vector512 && acs == 1 && alpha == 1f && m >= PackedGemm.MR && typeof(TB) == typeof(PrepackedPanels))
        {
            // A row-major activation times prepacked weights (a linear layer): A's rows read in place, no packed copy.
            PackedGemm.Run(m, n, k, a, b, c, n, accumulate, _simd, serial, columnBias: columnBias, gelu: gelu, lda: ars);
            return;
        }
        var packed = Scratch.Rent(PackedGemm.PackedALength(m, k));
        try
        {
            float* pa = Scratch.Aligned(packed);
            PackedGemm.PackA(a, ars, acs, m, k, alpha, pa);
            PackedGemm.Run(m, n, k, pa, b, c, n, accumulate, _simd, serial, columnBias: columnBias, gelu: gelu);
        }
        finally
        {
            Scratch.Return(packed);
        }
    }

    /// <inheritdoc/>
    protected override void GemmCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s) => Gemm(x, w, b, y, s, false);

    /// <inheritdoc/>
    /// <remarks>Here the GELU is applied to each tile of y as its sums are final (with its bias), while the tile is in
    /// L1 (<see cref="PackedGemm.Run"/>'s gelu), instead of a second pass over y.</remarks>
    protected override void GemmGeluCore(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s) => Gemm(x, w, b, y, s, true);

    private void Gemm(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s, bool gelu)
    {
        if (s.TransB && s.Alpha == 1f && s.M <= 4 * PackedGemm.NR)
        {
            GemmFewRows(x, w, b, y, s);
            if (gelu)
                CpuMisc.Unary(Over(y), Over(y), y.Length, new Gelu());
            return;
        }
        float* yp = Over(y);
        // The bias is added to each tile of y as its sums are final (beta b, scaled here when beta is not 1).
        float[]? scaled = b != null && s.Beta != 1f ? new float[s.N] : null;
        if (scaled != null)
        {
            float* bp = In(b!);
            for (int j = 0; j < s.N; j++)
                scaled[j] = s.Beta * bp[j];
        }
        // op(W)(kk, j): W stored (N, K) when TransB, else (K, N). W is the layer's weight: its packed B panels are
        // cached per weight version, as the conv forms' packed weights are, instead of packed by every task of every call.
        long brs = s.TransB ? 1 : s.N, bcs = s.TransB ? s.K : 1;
        float* wp = In(w);
        var packedB = S(w).Derived($"gemmB:{s.K}:{s.N}:{(s.TransB ? 1 : 0)}", () =>
        {
            var packed = GC.AllocateUninitializedArray<float>(checked((int)PackedGemm.PackedBLength(s.K, s.N)), pinned: true);
            fixed (float* p = packed)
                PackedGemm.PackB(new StridedPanels(wp, brs, bcs, s.N), s.K, s.N, p);
            return packed;
        });
        fixed (float* pb = packedB)
        fixed (float* sb = scaled)
        {
            float* columnBias = b == null ? null : scaled != null ? sb : In(b);
            Dense(s.M, s.N, s.K, In(x), s.K, 1, s.Alpha, new PrepackedPanels(pb, PackedGemm.RoundUp(s.N, PackedGemm.NR)), yp,
                false, columnBias: columnBias, gelu: gelu);
        }
    }

    /// <summary>
    /// A classifier layer on a few rows (W stored (N, K), alpha 1): y[m, j] = beta*b[j] + dot(x[m], W[j]), each
    /// W row read once for up to four rows of x. Memory-bound on W, so no packing and no tile waste; the sums
    /// of one row do not depend on how many rows there are.
    /// </summary>
    private void GemmFewRows(Tensor x, Tensor w, Tensor? b, Tensor y, GemmShape s)
    {
        float* wp = In(w), xp = In(x), yp = Over(y), bp = InOrNull(b);
        int m = s.M, k = s.K;
        float beta = s.Beta;
        void Rows(int jb)
        {
            int j0 = jb * 16, j1 = Math.Min(s.N, j0 + 16);
            for (int j = j0; j < j1; j++)
            {
                float* wr = wp + (long)j * k;
                float bj = bp == null ? 0f : beta * bp[j];
                int r = 0;
                for (; r <= m - 4; r += 4)
                {
                    float* x0 = xp + (long)r * k;
                    var (d0, d1, d2, d3) = CpuElementwise.Dot4(wr, x0, x0 + k, x0 + 2 * k, x0 + 3 * k, k);
                    yp[(long)r * s.N + j] = bj + d0;
                    yp[(long)(r + 1) * s.N + j] = bj + d1;
                    yp[(long)(r + 2) * s.N + j] = bj + d2;
                    yp[(long)(r + 3) * s.N + j] = bj + d3;
                }
                for (; r < m; r++)
                {
                    float* x0 = xp + (long)r * k;
                    yp[(long)r * s.N + j] = bj + CpuElementwise.Dot4(wr, x0, x0, x0, x0, k).D0;
                }
            }
        }
        CpuConv.For((s.N + 15) / 16, (long)s.N * k * m, Rows);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardDataCore(Tensor dy, Tensor w, Tensor dx, GemmShape s)
    {
        // dx(m, k) = alpha sum_n dy(m, n) op(W)(k, n).
        long brs = s.TransB ? s.K : 1, bcs = s.TransB ? 1 : s.N;
        if (SparseBackwardData && FewNonzeros(In(dy), (long)s.M * s.N, s.TransB ? 32 : 512))
        {
            GemmBackwardDataSparse(In(dy), In(w), Over(dx), s);
            return;
        }
        Dense(s.M, s.K, s.N, In(dy), s.N, 1, s.Alpha, In(w), brs, bcs, Over(dx), false);
    }

    /// <summary>
    /// Whether <see cref="GemmBackwardDataCore"/> reads only the rows of W that a nonzero of dy multiplies when dy is
    /// mostly zeros (<see cref="FewNonzeros"/>): a CAM's seed at the logits is one-hot, and the dense product read and
    /// packed all of the classifier's weights for it (ResNet-50's 2048 x 1000, 8 MB) to multiply them by zeros. Tests
    /// switch it to compare the two.
    /// </summary>
    internal static bool SparseBackwardData { get; set; } = true;

    /// <summary>At most one value in <paramref name="oneIn"/> of <paramref name="count"/> at <paramref name="p"/> is
    /// nonzero (NaN counts as nonzero). The sparse product runs on one thread, so it must be far less work than the
    /// dense one: one in 32 where W's rows are contiguous (W stored (N, K), as a classifier's), one in 512 where each
    /// nonzero reads a column, a cache line per element.</summary>
    private static bool FewNonzeros(float* p, long count, int oneIn)
    {
        long limit = count / oneIn, nonzero = 0;
        for (long i = 0; i < count; i++)
        {
            if (p[i] != 0f && ++nonzero > limit)
                return false;
        }
        return true;
    }

    /// <summary>
    /// dx(m, k) = the sum over the nonzero dy(m, n) of (alpha dy(m, n)) op(W)(k, n), formed as the dense product forms
    /// it: per block of <see cref="PackedGemm.KC"/> n, an FMA chain from 0 in ascending n, and the blocks' sums added in
    /// order, so the values are its values (up to the sign of a zero). A zero of dy contributes nothing, where the
    /// dense form adds 0 x W(k, n) (NaN for an infinite W; the loader refuses non-finite weights).
    /// </summary>
    private static void GemmBackwardDataSparse(float* dy, float* w, float* dx, GemmShape s)
    {
        var blockArray = Scratch.Rent(s.K);
        try
        {
            float* block = Scratch.Aligned(blockArray);
            for (int m = 0; m < s.M; m++)
            {
                float* row = dx + (long)m * s.K, g = dy + (long)m * s.N;
                new Span<float>(row, s.K).Clear();
                for (int n0 = 0; n0 < s.N; n0 += PackedGemm.KC)
                {
                    int n1 = Math.Min(s.N, n0 + PackedGemm.KC);
                    bool any = false;
                    for (int n = n0; n < n1; n++)
                    {
                        if (g[n] == 0f)
                            continue;
                        if (!any)
                            new Span<float>(block, s.K).Clear();
                        any = true;
                        float a = s.Alpha * g[n];
                        if (s.TransB)
                            MultiplyAdd(a, w + (long)n * s.K, block, s.K); // W stored (N, K): a contiguous row
                        else
                        {
                            for (int k = 0; k < s.K; k++)
                                block[k] = MathF.FusedMultiplyAdd(a, w[(long)k * s.N + n], block[k]); // W stored (K, N): a column
                        }
                    }
                    if (any)
                        CpuElementwise.AddInPlace(block, row, s.K);
                }
            }
        }
        finally
        {
            Scratch.Return(blockArray);
        }
    }

    /// <summary>y[i] = fma(a, x[i], y[i]) for i in [0, count): one rounding per product, as the GEMM kernels' FMAs
    /// (the batched MatMul's <c>Axpy</c> multiplies and adds separately, and so would not give the dense product's bits).</summary>
    private static void MultiplyAdd(float a, float* x, float* y, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var av = Vector512.Create(a);
            for (; i + 16 <= count; i += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd(av, Vector512.Load(x + i), Vector512.Load(y + i)), y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var av = Vector256.Create(a);
            for (; i + 8 <= count; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd(av, Vector256.Load(x + i), Vector256.Load(y + i)), y + i);
        }
        for (; i < count; i++)
            y[i] = MathF.FusedMultiplyAdd(a, x[i], y[i]);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardWeightsCore(Tensor x, Tensor dy, Tensor dw, GemmShape s)
    {
        if (s.TransB)
            // dw(n, k) = alpha sum_m dy(m, n) x(m, k).
            Dense(s.N, s.K, s.M, In(dy), 1, s.N, s.Alpha, In(x), s.K, 1, Out(dw), false);
        else
            // dw(k, n) = alpha sum_m x(m, k) dy(m, n).
            Dense(s.K, s.N, s.M, In(x), 1, s.K, s.Alpha, In(dy), s.N, 1, Out(dw), false);
    }

    /// <inheritdoc/>
    protected override void GemmBackwardBiasCore(Tensor dy, Tensor db, GemmShape s)
    {
        float* g = In(dy), d = Out(db);
        for (int j = 0; j < s.N; j++)
        {
            double acc = 0;
            for (int m = 0; m < s.M; m++)
                acc += g[(long)m * s.N + j];
            d[j] = (float)(s.Beta * acc);
        }
    }
}
