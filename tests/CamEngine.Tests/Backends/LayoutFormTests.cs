using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// The direct form's channels-last and blocked (by 32 channels) pointwise convs (<see cref="DirectConv.ForwardChannelsLast"/>,
/// <see cref="DirectConv.ForwardBlocked"/>), which the bench's `layout` mode times against today's NCHW forms, against a
/// double-precision 1x1 conv in the same layout, with bias, and with the residual and ReLU fused: channels and outputs
/// under and over one 32-lane panel and not multiples of 8 (channels-last), tiles across images, planes of 7 and 49
/// pixels (7-row tiles) and over 256, depth over one block of rows (2048 channels: segments split by blocks and by KC).
/// </summary>
[TestFixture]
internal sealed unsafe class LayoutFormTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        // N, C, side (H, W), K; blocked cases need C and K multiples of 32
        var shapes = new (int N, int C, int H, int W, int K, bool Blocked)[]
        {
            (2, 20, 3, 7, 40, false), (3, 5, 5, 5, 37, false), (1, 64, 17, 17, 96, false),
            (2, 64, 7, 9, 96, true), (3, 96, 5, 5, 32, true), (1, 32, 17, 17, 64, true), (1, 64, 7, 7, 256, true),
            (2, 2048, 3, 3, 64, true), (1, 2048, 2, 3, 64, false),
        };
        foreach (var (n, c, h, w, k, blocked) in shapes)
        foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256 })
        foreach (bool residual in new[] { false, true })
            yield return new TestCaseData(new ConvShape(n, c, h, w, k, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), blocked, simd, residual)
                .SetName($"{(blocked ? "blocked" : "channels-last")} {simd} {n}x{c}x{h}x{w} -> {k}{(residual ? " +residual, ReLU" : "")}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Pointwise_form_matches_double_reference(ConvShape s, bool blocked, CpuSimd simd, bool residual)
    {
        var rng = new Random(s.C * 31 + s.K);
        int hw = s.H * s.W;
        float[] Random(int count, double scale) =>
            Enumerable.Range(0, count).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
        var x = Random(s.N * s.C * hw, 1); // NCHW
        var w = Random(s.K * s.C, 1 / Math.Sqrt(s.C));
        var b = Random(s.K, 0.5);
        var r = Random(s.N * s.K * hw, 1); // NCHW

        // The layout: index of (image, channel, pixel) for `channels` channels.
        long At(int img, int ch, int p, int channels) => blocked
            ? (long)img * channels * hw + (long)ch / 32 * hw * 32 + (long)p * 32 + ch % 32
            : ((long)img * hw + p) * channels + ch;
        var xl = new float[x.Length];
        var rl = new float[r.Length];
        for (int img = 0; img < s.N; img++)
        for (int p = 0; p < hw; p++)
        {
            for (int ch = 0; ch < s.C; ch++)
                xl[At(img, ch, p, s.C)] = x[((long)img * s.C + ch) * hw + p];
            for (int k = 0; k < s.K; k++)
                rl[At(img, k, p, s.K)] = r[((long)img * s.K + k) * hw + p];
        }
        var y = new float[s.N * s.K * hw];
        fixed (float* px = xl, pw = w, pb = b, pr = rl, py = y)
        {
            var packed = DirectConv.PackWeights(pw, s);
            fixed (float* pp = packed)
            {
                var epilogue = residual ? new StoreEpilogue(pr, EpilogueActivation.Relu) : StoreEpilogue.None;
                if (blocked)
                    DirectConv.ForwardBlocked(px, pp, pb, py, s, simd, epilogue);
                else
                    DirectConv.ForwardChannelsLast(px, pp, pb, py, s, simd, epilogue);
            }
        }
        for (int img = 0; img < s.N; img++)
        for (int k = 0; k < s.K; k++)
        for (int p = 0; p < hw; p++)
        {
            double sum = b[k];
            for (int ch = 0; ch < s.C; ch++)
                sum += (double)w[k * s.C + ch] * x[((long)img * s.C + ch) * hw + p];
            if (residual)
                sum = Math.Max(0, sum + r[((long)img * s.K + k) * hw + p]);
            float actual = y[At(img, k, p, s.K)];
            Assert.That(actual, Is.EqualTo(sum).Within(2e-5 + 2e-5 * Math.Abs(sum)), $"image {img}, channel {k}, pixel {p}");
        }
    }

    [Test]
    public void Other_geometries_are_refused()
    {
        var strided = new ConvShape(1, 32, 8, 8, 32, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1);
        var notBlockable = new ConvShape(1, 20, 8, 8, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
        Assert.Throws<ArgumentException>(() => DirectConv.ForwardChannelsLast(null, null, null, null, strided, CpuSimd.Vector512));
        Assert.Throws<ArgumentException>(() => DirectConv.ForwardBlocked(null, null, null, null, notBlockable, CpuSimd.Vector512));
    }
}
