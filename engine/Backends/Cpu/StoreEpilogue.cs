using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>
/// What a convolution's store applies to each output after its bias (<see cref="DirectConv"/>,
/// <see cref="WinogradConv"/>, and the column form of <see cref="CpuConv"/> once a block of its GEMM is final): a residual tensor of the output's layout added (none when null), then an activation
/// (none, ReLU, clip to [<see cref="Lo"/>, <see cref="Hi"/>], or SiLU <c>v * sigmoid(v)</c>). The operations and their
/// order are those of the unfused passes (conv with bias, then the backend's add, then its ReLU, clip, or sigmoid
/// and multiplication, <see cref="SigmoidOp"/> giving the same bits at every width), so the values are the same bits.
/// </summary>
internal readonly unsafe struct StoreEpilogue
{
    /// <summary>The residual, indexed like the output, or null.</summary>
    public readonly float* Residual;

    /// <summary>None, <see cref="EpilogueActivation.Relu"/>, <see cref="EpilogueActivation.Clip"/> or <see cref="EpilogueActivation.Silu"/>.</summary>
    public readonly EpilogueActivation Activation;

    /// <summary>The clip bounds.</summary>
    public readonly float Lo, Hi;

    /// <summary>An epilogue.</summary>
    public StoreEpilogue(float* residual, EpilogueActivation activation, float lo = 0f, float hi = 0f)
    {
        if (activation is not (EpilogueActivation.None or EpilogueActivation.Relu or EpilogueActivation.Clip or EpilogueActivation.Silu))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "a conv store applies none, ReLU, clip or SiLU");
        Residual = residual;
        Activation = activation;
        Lo = lo;
        Hi = hi;
    }

    /// <summary>The same epilogue for an output <paramref name="offset"/> floats further on: its residual read
    /// at the same offset (a GEMM whose C starts there in the output).</summary>
    public StoreEpilogue Shifted(long offset) =>
        Residual == null ? this : new StoreEpilogue(Residual + offset, Activation, Lo, Hi);

    /// <summary>
    /// <c>y[i] = Apply(y[i], i)</c> for i in [<paramref name="at"/>, at + <paramref name="count"/>): the epilogue
    /// of outputs already holding their conv-plus-bias values (eight at a time, then one by one).
    /// </summary>
    public void ApplyRange(float* y, long at, long count)
    {
        long i = at, end = at + count;
        for (; i <= end - 8; i += 8)
            Apply(Vector256.Load(y + i), i).Store(y + i);
        for (; i < end; i++)
            y[i] = Apply(y[i], i);
    }

    /// <summary><c>y[i] = Apply(y[i] + bias, i)</c> for i in [<paramref name="at"/>, at + <paramref name="count"/>):
    /// the bias and the epilogue of outputs holding their conv sums.</summary>
    public void ApplyRange(float* y, long at, long count, float bias)
    {
        var b = Vector256.Create(bias);
        long i = at, end = at + count;
        for (; i <= end - 8; i += 8)
            Apply(Vector256.Load(y + i) + b, i).Store(y + i);
        for (; i < end; i++)
            y[i] = Apply(y[i] + bias, i);
    }

    /// <summary>Nothing after the bias.</summary>
    public static StoreEpilogue None => default;

    /// <summary>ReLU after the bias, or nothing.</summary>
    public static StoreEpilogue ReluIf(bool relu) => new(null, relu ? EpilogueActivation.Relu : EpilogueActivation.None);

    /// <summary>Whether the store only adds the bias.</summary>
    public bool IsNone => Residual == null && Activation == EpilogueActivation.None;

    /// <summary>The output at <paramref name="at"/> from its conv-plus-bias value <paramref name="v"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float v, long at)
    {
        if (Residual != null)
            v += Residual[at];
        return Activation switch
        {
            EpilogueActivation.Relu => MathF.Max(v, 0f),
            EpilogueActivation.Clip => v < Lo ? Lo : v > Hi ? Hi : v,
            EpilogueActivation.Silu => v * new SigmoidOp().Apply(v),
            _ => v,
        };
    }

    /// <summary>Eight consecutive outputs from <paramref name="at"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Apply(Vector256<float> v, long at) =>
        Activate(Residual != null ? v + Vector256.Load(Residual + at) : v);

    /// <summary>The first lanes of eight consecutive outputs from <paramref name="at"/> on, those set in
    /// <paramref name="mask"/> (AVX-512VL: the residual is read only there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> ApplyMasked(Vector256<float> v, long at, Vector256<float> mask) =>
        Activate(Residual != null ? v + Avx512F.VL.MaskLoad(Residual + at, mask, Vector256<float>.Zero) : v);

    /// <summary>Sixteen consecutive outputs from <paramref name="at"/> on (<see cref="PlanarConv"/>'s rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Apply(Vector512<float> v, long at) =>
        Activate(Residual != null ? v + Vector512.Load(Residual + at) : v);

    /// <summary>The first lanes of sixteen consecutive outputs from <paramref name="at"/> on, those set in
    /// <paramref name="mask"/> (the residual is read only there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> ApplyMasked(Vector512<float> v, long at, Vector512<float> mask) =>
        Activate(Residual != null ? v + Avx512F.MaskLoad(Residual + at, mask, Vector512<float>.Zero) : v);

    /// <summary>The activation alone, sixteen lanes (<see cref="PackedGemm"/>'s register store).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Activate(Vector512<float> v)
    {
        switch (Activation)
        {
            case EpilogueActivation.Relu:
                return Vector512.Max(v, Vector512<float>.Zero);
            case EpilogueActivation.Clip:
                return new ClipOp(Lo, Hi).Apply(v);
            case EpilogueActivation.Silu:
                return v * new SigmoidOp().Apply(v);
            default:
                return v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector256<float> Activate(Vector256<float> v)
    {
        switch (Activation)
        {
            case EpilogueActivation.Relu:
                return Vector256.Max(v, Vector256<float>.Zero);
            case EpilogueActivation.Clip:
                return new ClipOp(Lo, Hi).Apply(v);
            case EpilogueActivation.Silu:
                return v * new SigmoidOp().Apply(v);
            default:
                return v;
        }
    }
}
