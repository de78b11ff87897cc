using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Methods;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// The CAM kernels (<see cref="CamMaps"/>, the eps form of <see cref="Reductions.MinMaxNormalize"/>) on ILGPU's CPU
/// accelerator, plain and shaped like a GPU, against the host arithmetic the methods used before (the base
/// <see cref="Backend"/> defaults, which the managed CPU backend runs): Score-CAM masks in the three conventions on
/// odd sizes with a constant channel, masked batches with noise and scales, channel weights under every rule, and
/// the weighted and element-wise channel sums; then Score-CAM, SS-CAM, IS-CAM and the gradient CAMs end to end on
/// the device, equal to the CPU backend's maps, with the masked batches never copied to the host.
/// </summary>
[TestFixture]
internal sealed class CamMapsKernelTests
{
    private static IEnumerable<Backend> Devices()
    {
        yield return TestDevice.Ilgpu;
        yield return Tiled;
    }

    private static IlgpuBackend? s_tiled;

    private static IlgpuBackend Tiled => s_tiled ??= IlgpuBackend.CreateTiledCpu();

    [OneTimeTearDown]
    public void TearDown()
    {
        s_tiled?.Dispose();
        s_tiled = null;
    }

    private static float[] Activations(Random rng, int n, int c, int h, int w)
    {
        var a = TensorAssert.Random(rng, n * c * h * w);
        // channel 1 of image 0 is constant: its mask is all zeros in every convention
        Array.Fill(a, 0.25f, h * w, h * w);
        return a;
    }

    [TestCase(false, true, 1e-8f, TestName = "Masks_pytorch_grad_cam_upsample_align_corners_then_normalize_eps")]
    [TestCase(true, false, 0f, TestName = "Masks_torchcam_normalize_then_upsample")]
    [TestCase(false, false, 0f, TestName = "Masks_paper_upsample_then_normalize")]
    public void Masks_match_host(bool normalizeFirst, bool alignCorners, float eps)
    {
        int n = 2, c = 3, h = 3, w = 5, bigH = 7, bigW = 9;
        var a = Activations(new Random(3), n, c, h, w);
        var expected = new float[n * c * bigH * bigW];
        for (int p = 0; p < n * c; p++)
            Backend.HostMask(a.AsSpan(p * h * w, h * w), h, w, expected.AsSpan(p * bigH * bigW, bigH * bigW), bigH, bigW,
                normalizeFirst, alignCorners, eps);
        Assert.That(expected.AsSpan(bigH * bigW, bigH * bigW).ContainsAnyExcept(0f), Is.False, "constant channel");
        Assert.That(expected.Max(), Is.GreaterThan(0.99f));
        foreach (var b in Devices())
        {
            using var at = b.Upload(a, n, c, h, w);
            using var m = b.Allocate(n, c, bigH, bigW);
            b.ActivationMasks(at, m, normalizeFirst, alignCorners, eps);
            TensorAssert.Close(b.Download(m), expected, 1e-6, 1e-6, $"masks on {b.Name}");
        }
    }

    [Test]
    public void Masked_inputs_with_noise_and_scales_match_host()
    {
        var rng = new Random(5);
        int n = 2, ch = 3, hh = 5, ww = 7, plane = hh * ww, maskRows = 4, noiseRows = 3;
        var x = TensorAssert.Random(rng, n * ch * plane);
        var masks = TensorAssert.Random(rng, maskRows * plane);
        var noise = TensorAssert.Random(rng, noiseRows * plane);
        MaskedRow[] rows = [new(1, 3, -1, 1f), new(0, 0, 2, 1f), new(1, 2, 0, 0.3f), new(0, 1, -1, 2.5f), new(1, 1, 1, 1f)];
        var expected = new float[rows.Length * ch * plane];
        for (int r = 0; r < rows.Length; r++)
        {
            var row = rows[r];
            for (int c = 0; c < ch; c++)
            {
                for (int j = 0; j < plane; j++)
                {
                    float m = masks[row.Mask * plane + j] + (row.Noise >= 0 ? noise[row.Noise * plane + j] : 0f);
                    float v = x[(row.Image * ch + c) * plane + j] * m;
                    expected[(r * ch + c) * plane + j] = row.Scale == 1f ? v : row.Scale * v;
                }
            }
        }
        foreach (var b in Devices())
        {
            using var xt = b.Upload(x, n, ch, hh, ww);
            using var mt = b.Upload(masks, maskRows, hh, ww);
            using var nt = b.Upload(noise, noiseRows, hh, ww);
            using var y = b.Allocate(rows.Length, ch, hh, ww);
            b.MaskedInputs(xt, mt, nt, rows, y);
            Assert.That(b.Download(y), Is.EqualTo(expected), $"masked batch on {b.Name}");
            var bad = new[] { new MaskedRow(0, maskRows, -1, 1f) };
            using var y1 = b.Allocate(1, ch, hh, ww);
            Assert.That(() => b.MaskedInputs(xt, mt, nt, bad, y1),
                Throws.ArgumentException.With.Message.Contains("names image 0, mask 4"));
        }
    }

    [Test]
    public void Windowed_inputs_match_host()
    {
        var rng = new Random(8);
        int n = 2, ch = 3, hh = 5, ww = 7;
        var x = TensorAssert.Random(rng, n * ch * hh * ww);
        var baseline = TensorAssert.Random(rng, n * ch * hh * ww);
        WindowRow[] rows = [new(1, 0, 2, 3, 7), new(0, 4, 5, 0, 1), new(1, 1, 4, 2, 5), new(0, 2, 2, 0, 7)];
        var expected = new float[rows.Length * ch * hh * ww];
        for (int r = 0; r < rows.Length; r++)
        {
            var w = rows[r];
            for (int c = 0; c < ch; c++)
            {
                for (int py = 0; py < hh; py++)
                {
                    for (int px = 0; px < ww; px++)
                    {
                        int at = ((w.Image * ch + c) * hh + py) * ww + px;
                        bool inside = py >= w.Y0 && py < w.Y1 && px >= w.X0 && px < w.X1;
                        expected[((r * ch + c) * hh + py) * ww + px] = inside ? baseline[at] : x[at];
                    }
                }
            }
        }
        foreach (var b in Devices().Append(TestDevice.Cpu))
        {
            using var xt = b.Upload(x, n, ch, hh, ww);
            using var bt = b.Upload(baseline, n, ch, hh, ww);
            using var y = b.Allocate(rows.Length, ch, hh, ww);
            b.WindowedInputs(xt, bt, rows, y);
            Assert.That(b.Download(y), Is.EqualTo(expected), $"occlusion batch on {b.Name}");
            using var y1 = b.Allocate(1, ch, hh, ww);
            Assert.That(() => b.WindowedInputs(xt, bt, [new WindowRow(0, 0, 6, 0, 1)], y1),
                Throws.ArgumentException.With.Message.Contains("outside the 2 images of 5x7"));
        }
    }

    [TestCase(CamWeightRule.GradCam, 0.0)]
    [TestCase(CamWeightRule.XGradCam, 1e-7)]
    [TestCase(CamWeightRule.GradCamPlusPlus, 1e-6)]
    [TestCase(CamWeightRule.GradCamPlusPlusSquared, 0.0)]
    public void Channel_weights_and_sums_match_host(CamWeightRule rule, double eps)
    {
        var rng = new Random(7 + (int)rule);
        int n = 2, c = 5, h = 3, w = 7, plane = h * w;
        var a = TensorAssert.Random(rng, n * c * plane);
        var g = TensorAssert.Random(rng, n * c * plane);
        for (int j = 0; j < 4; j++)
            g[j * 5] = 0f; // zero gradients: Grad-CAM++'s alpha is 0 there
        var weights = new float[n * c];
        for (int r = 0; r < n * c; r++)
            weights[r] = Backend.HostChannelWeight(a.AsSpan(r * plane, plane), g.AsSpan(r * plane, plane), rule, eps);
        var weighted = new float[n * plane];
        var product = new float[n * plane];
        var positive = new float[n * plane];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < c; k++)
            {
                for (int j = 0; j < plane; j++)
                {
                    int at = (i * c + k) * plane + j;
                    weighted[i * plane + j] += weights[i * c + k] * a[at];
                    product[i * plane + j] += g[at] * a[at];
                    positive[i * plane + j] += Math.Max(g[at], 0f) * a[at];
                }
            }
        }
        foreach (var b in Devices())
        {
            using var at = b.Upload(a, n, c, h, w);
            using var gt = b.Upload(g, n, c, h, w);
            using var wt = b.Allocate(n, c);
            using var map = b.Allocate(n, h, w);
            b.CamChannelWeights(at, gt, wt, rule, eps);
            // Grad-CAM on the GPU-shaped device runs the warp reduction in float: not bit-equal to the double sum.
            TensorAssert.Close(b.Download(wt), weights, 1e-6, 1e-5, $"{rule} weights on {b.Name}");
            using var wh = b.Upload(weights, n, c);
            b.WeightedChannelSum(at, wh, map);
            Assert.That(b.Download(map), Is.EqualTo(weighted), $"weighted sum on {b.Name}");
            b.ProductChannelSum(at, gt, map, reluGradient: false);
            Assert.That(b.Download(map), Is.EqualTo(product), $"HiResCAM sum on {b.Name}");
            b.ProductChannelSum(at, gt, map, reluGradient: true);
            Assert.That(b.Download(map), Is.EqualTo(positive), $"Layer-CAM sum on {b.Name}");
        }
    }

    private static IReadOnlyList<Explanation> Explain(Backend backend, CamMethod method, Convention convention, float[] input)
    {
        using var model = DeviceModel.Load(TinyModel.Create(), backend);
        return new Explainer(model).Explain(new HostTensor([2, 3, 8, 8], input), method,
            new ExplainOptions { Layers = [TinyModel.ConvOut], Convention = convention, PerturbationBatch = 3 });
    }

    private static IEnumerable<TestCaseData> EndToEndCases()
    {
        yield return new TestCaseData(new ScoreCam(), Convention.PytorchGradCam).SetName("Scorecam_pytorch_grad_cam_on_device");
        yield return new TestCaseData(new ScoreCam(), Convention.TorchCam).SetName("Scorecam_torchcam_on_device");
        yield return new TestCaseData(new ScoreCam(), Convention.Paper).SetName("Scorecam_paper_on_device");
        yield return new TestCaseData(new SsCam { Samples = 2 }, Convention.TorchCam).SetName("Sscam_on_device");
        yield return new TestCaseData(new IsCam { Steps = 3 }, Convention.TorchCam).SetName("Iscam_on_device");
        yield return new TestCaseData(new Rise { MaskCount = 4, Cells = 2 }, Convention.PytorchGradCam).SetName("Rise_on_device");
        yield return new TestCaseData(new ReciproCam(), Convention.PytorchGradCam).SetName("Reciprocam_on_device");
        yield return new TestCaseData(new Occlusion { Window = 3, Stride = 3, Baseline = InputBaselineKind.Mean }, Convention.PytorchGradCam)
            .SetName("Occlusion_on_device");
    }

    [TestCaseSource(nameof(EndToEndCases))]
    public void Score_family_on_device_equals_cpu_and_keeps_masked_batches_on_device(CamMethod method, Convention convention)
    {
        var input = TensorAssert.Random(new Random(9), 2 * 3 * 8 * 8);
        var cpu = Explain(TestDevice.Cpu, method, convention, input);
        var gpu = TestDevice.Ilgpu;
        long written = gpu.HostWriteBytes, read = gpu.HostReadBytes;
        var dev = Explain(gpu, method, convention, input);
        long up = gpu.HostWriteBytes - written, down = gpu.HostReadBytes - read;
        for (int i = 0; i < 2; i++)
        {
            if (method is not (Rise or ReciproCam or Occlusion))
                TensorAssert.Close(dev[i].Weights!, cpu[i].Weights!, 1e-5, 1e-4, $"weights of image {i}");
            TensorAssert.Close(dev[i].Map.Data, cpu[i].Map.Data, 1e-4, 0, $"map of image {i}");
        }
        // 2 images x 4 channels (RISE: 4 masks; Recipro-CAM: 64 positions, masking the 4x8x8 features) x samples masked inputs of 3x8x8 floats were scored (built on the host
        // and uploaded, before). What crosses the bus now: the weights, the input, the noise (SS-CAM) or the masks
        // (RISE) and the row tables (16 bytes a row) going up; the activations, the masks, the input (for the zero
        // test) and the scores coming down.
        int samples = method is SsCam s ? s.Samples : method is IsCam c ? c.Steps : 1;
        int rows = method switch { ReciproCam => 2 * 64, Occlusion => 2 * 9, _ => 2 * 4 * samples };
        long maskedBytes = rows * 3 * 64 * 4L;
        long weightBytes = (4 * 27 + 4 + 5 * 4 + 5) * 4, inputBytes = 2 * 3 * 64 * 4, layerBytes = 2 * 4 * 64 * 4;
        long noiseBytes = method switch
        {
            SsCam => rows * 64 * 4L,
            Rise => 4 * 64 * 4L,
            ReciproCam => 64 * 64 * 4L, // the one-hot masks of the 8x8 positions
            Occlusion => 2 * 3 * 64 * 4L, // the baselines, and 4 more bytes a row in the table
            _ => 0,
        };
        Assert.That(up, Is.LessThanOrEqualTo(weightBytes + inputBytes + noiseBytes + 20L * rows + 256), "uploaded bytes");
        Assert.That(up, Is.LessThan(maskedBytes), "less went up than one copy of the masked inputs");
        Assert.That(down, Is.LessThanOrEqualTo(2 * layerBytes + inputBytes + (rows + 4) * 5 * 4L + 256), "downloaded bytes");
    }

    private static IEnumerable<TestCaseData> GradientCases()
    {
        foreach (var convention in new[] { Convention.PytorchGradCam, Convention.TorchCam, Convention.Paper })
        {
            foreach (CamMethod m in new CamMethod[] { new GradCam(), new GradCamPlusPlus(), new XGradCam(), new LayerCam(), new HiResCam() })
                yield return new TestCaseData(m, convention).SetName($"Gradient_map_on_device_{m.Name}_{convention}");
        }
    }

    [TestCaseSource(nameof(GradientCases))]
    public void Gradient_cam_maps_on_device_equal_cpu_and_only_maps_come_back(CamMethod method, Convention convention)
    {
        var input = TensorAssert.Random(new Random(13), 2 * 3 * 8 * 8);
        var cpu = Explain(TestDevice.Cpu, method, convention, input);
        foreach (var gpu in new[] { TestDevice.Ilgpu, Tiled })
        {
            long read = gpu.HostReadBytes;
            var dev = Explain(gpu, method, convention, input);
            long down = gpu.HostReadBytes - read;
            for (int i = 0; i < 2; i++)
            {
                TensorAssert.Close(dev[i].Raw.Data, cpu[i].Raw.Data, 1e-5, 1e-4, $"raw map of image {i} on {gpu.Name}");
                TensorAssert.Close(dev[i].Map.Data, cpu[i].Map.Data, 1e-4, 0, $"map of image {i} on {gpu.Name}");
            }
            // The logits (2x5, read three times by the explainer: target, scores, gradient seed) and the two 8x8 maps;
            // the activations and gradients (2x4x8x8 each, 2 KiB) stay on the device.
            Assert.That(down, Is.EqualTo((3 * 2 * 5 + 2 * 64) * 4), $"bytes downloaded from {gpu.Name}");
        }
    }
}
