using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The CPU backend's fused conv epilogue (<see cref="Backend.Conv2dFused"/>: bias, residual and ReLU or clip applied in
/// the conv's store by the direct, Winograd and column forms) in the form the caller forced, with and without a residual and
/// with no activation, ReLU, clip and SiLU: the same bits as the unfused steps (conv with bias, then the float addition, then
/// max(v, 0), v &lt; lo ? lo : v &gt; hi ? hi : v, or v * sigmoid(v) with the backend's sigmoid), and close to the double-precision reference's Conv2dFused within
/// the caller's tolerance (given the largest unclipped output, the scale of the conv's rounding error). The clip bounds are a quarter of the largest output, so both bounds are hit.
/// </summary>
internal static class FusedEpilogueCheck
{
    public static void Run(CpuBackend cpu, ReferenceBackend reference, ConvShape s, Action<float[], double[], double, string> close)
    {
        var rng = new Random(11);
        var xData = TensorAssert.Random(rng, s.N * s.C * s.H * s.W);
        var wData = TensorAssert.Random(rng, (int)s.WeightLength);
        var bData = TensorAssert.Random(rng, s.K);
        var rData = TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW);
        using var x = cpu.Upload(xData, s.N, s.C, s.H, s.W);
        using var w = cpu.Upload(wData, s.K, s.CPerGroup, s.KH, s.KW);
        using var b = cpu.Upload(bData, s.K);
        using var r = cpu.Upload(rData, s.N, s.K, s.OH, s.OW);
        using var xr = reference.Upload(xData, s.N, s.C, s.H, s.W);
        using var wr = reference.Upload(wData, s.K, s.CPerGroup, s.KH, s.KW);
        using var br = reference.Upload(bData, s.K);
        using var rr = reference.Upload(rData, s.N, s.K, s.OH, s.OW);
        using var plain = cpu.Allocate(s.N, s.K, s.OH, s.OW);
        cpu.Conv2d(x, w, b, plain, s);
        var conv = cpu.Download(plain);
        float bound = 0.25f * conv.Max(MathF.Abs);
        (float lo, float hi) = (-bound, bound);
        foreach (bool residual in new[] { false, true })
        foreach (var activation in new[] { EpilogueActivation.None, EpilogueActivation.Relu, EpilogueActivation.Clip, EpilogueActivation.Silu })
        {
            string what = $"fused {activation}, residual {residual}";
            using var y = cpu.Allocate(s.N, s.K, s.OH, s.OW);
            cpu.Conv2dFused(x, w, b, residual ? r : null, y, s, activation, lo, hi);
            var actual = cpu.Download(y);
            var expected = new float[conv.Length];
            for (int i = 0; i < conv.Length; i++)
            {
                float v = residual ? conv[i] + rData[i] : conv[i];
                expected[i] = activation switch
                {
                    EpilogueActivation.Relu => MathF.Max(v, 0f),
                    EpilogueActivation.Clip => v < lo ? lo : v > hi ? hi : v,
                    // The backend's sigmoid pass (SigmoidOp, the same bits at every width), then the multiplication.
                    EpilogueActivation.Silu => v * new SigmoidOp().Apply(v),
                    _ => v,
                };
            }
            Assert.That(actual, Is.EqualTo(expected), $"{what}: the unfused steps' bits");
            if (activation == EpilogueActivation.Clip)
            {
                Assert.That(actual.Count(v => v == lo), Is.GreaterThan(0), $"{what}: some outputs at the lower bound");
                Assert.That(actual.Count(v => v == hi), Is.GreaterThan(0), $"{what}: some outputs at the upper bound");
            }
            using var yr = reference.Allocate(s.N, s.K, s.OH, s.OW);
            reference.Conv2dFused(xr, wr, br, residual ? rr : null, yr, s, activation, lo, hi);
            close(actual, ReferenceBackend.DownloadDouble(yr), 4 * bound, what);
        }
    }
}
