using CamEngine.Kernels;

namespace CamEngine.Backends.Cpu;

/// <summary>The CPU backend's routing of depthwise convolutions (one input channel per group) to
/// <see cref="DepthwiseConv"/>, forward with its fused output stage, backward-data and backward-weights.</summary>
internal sealed unsafe partial class CpuBackend
{
    /// <summary>The depthwise forward with bias, residual and activation in its store; false for other layers.</summary>
    private bool TryDepthwise(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        if (!DepthwiseConv.Supports(s))
            return false;
        DepthwiseForward(x, w, b, InOrNull(residual), y, s, activation, lo, hi);
        return true;
    }

    /// <summary>The depthwise forward, with the channels-last form's tap-major weights cached per weight version.</summary>
    private void DepthwiseForward(Tensor x, Tensor w, Tensor? b, float* residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        float* wp = In(w);
        if (!DepthwiseConv.TakesChannelsLast(s, _simd, residual != null))
        {
            DepthwiseConv.Forward(In(x), wp, InOrNull(b), residual, Over(y), s, _simd, activation, lo, hi);
            return;
        }
        var wt = S(w).Derived(WeightKey("dwCL", s), () => DepthwiseConv.ChannelsLastWeights(wp, s));
        fixed (float* pt = wt)
            DepthwiseConv.Forward(In(x), wp, InOrNull(b), residual, Over(y), s, _simd, activation, lo, hi, pt);
    }

    /// <summary>Depthwise backward-data: the flipped-kernel forward at stride 1 (multiplier 1), else the per-tap
    /// scatter; false for other layers.</summary>
    private bool TryDepthwiseBackwardData(Tensor dy, Tensor w, Tensor dx, ConvShape s)
    {
        if (!DepthwiseConv.Supports(s))
            return false;
        float* wp = In(w);
        if (DepthwiseConv.FlippedShape(s) is { } flipped)
        {
            var f = S(w).Derived(WeightKey("dwFlip", s), () => DepthwiseConv.FlipWeights(wp, s));
            fixed (float* pf = f)
                DepthwiseConv.Forward(In(dy), pf, null, null, Over(dx), flipped, _simd);
            return true;
        }
        DepthwiseConv.BackwardData(In(dy), wp, Over(dx), s, _simd);
        return true;
    }

    /// <summary>Depthwise backward-weights; false for other layers.</summary>
    private bool TryDepthwiseBackwardWeights(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        if (!DepthwiseConv.Supports(s))
            return false;
        DepthwiseConv.BackwardWeights(In(x), In(dy), Over(dw), s, _simd);
        return true;
    }
}
