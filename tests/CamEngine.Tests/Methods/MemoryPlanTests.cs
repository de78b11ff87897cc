using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// The memory plan of an explain call (<see cref="MemoryPlan"/>): batch sizes from the budget by hand-computed
/// numbers, the refusal of a budget too small for one image, and maps that do not depend on what the methods of a
/// call share (masks, scratch buffer, the forward pass) nor on the batching.
/// </summary>
[TestFixture]
public sealed class MemoryPlanTests
{
    // TinyModel: input 3x8x8 (192 floats), conv 4x8x8 (256), relu (256), gap 4, flatten 4, gemm 5.
    private const long Activations = (192 + 256 + 256 + 4 + 4 + 5) * 4; // 2868 bytes
    private const long Masks = 4 * 64 * 4;                               // 4 channels x 8x8 input plane
    private const long ForwardRow = 512 * 4 + 2 * 192 * 4;               // conv and relu alive at once, input twice

    private static GraphNode Relu(ModelGraph g) => g.Nodes.Single(n => n.Op == "relu");

    [Test]
    public void Output_forward_peak_is_the_largest_set_of_activations_alive_at_once()
    {
        // conv (256) then relu (256) while conv is still read: 512 floats; gap frees relu.
        Assert.That(MemoryPlan.OutputForwardPeakBytes(TinyModel.Graph()), Is.EqualTo(512 * 4));
    }

    [TestCase(100_000L, 7, 7)]     // explain 100000/2/6760 = 7 rows; share 100000 - 7*6760 = 52680; 52680 / (2*3584) = 7
    [TestCase(30_000L, 2, 2)]      // 30000/2/6760 = 2; 30000 - 13520 = 16480; / 7168 = 2
    [TestCase(1_000_000L, 73, 32)] // 73 rows; 506520 / 7168 = 70, capped at 32
    [TestCase(10_344L, 1, 1)]      // exactly one explained row and one re-run row
    public void Score_cam_batches_follow_the_budget(long budget, int explainRows, int forwardRows)
    {
        var g = TinyModel.Graph();
        var plan = MemoryPlan.For(g, budget, 32, int.MaxValue, [new ScoreCam()], [Relu(g)], Convention.PytorchGradCam);
        Assert.That(plan.FixedRowBytes, Is.EqualTo(2 * Activations + Masks)); // 6760
        Assert.That(plan.RowBytes[Reruns.Forward], Is.EqualTo(ForwardRow));   // 3584
        Assert.That(plan.MinimumBytes, Is.EqualTo(2 * Activations + Masks + ForwardRow)); // 10344
        Assert.That(plan.ExplainRows, Is.EqualTo(explainRows));
        Assert.That(plan.Rows(Reruns.Forward), Is.EqualTo(forwardRows));
    }

    [Test]
    public void Each_kind_of_rerun_gets_an_even_share_of_what_the_explained_rows_leave()
    {
        var g = TinyModel.Graph();
        var plan = MemoryPlan.For(g, 200_000, 1000, int.MaxValue, [new IsCam(), new AblationCam(), new SmoothGrad()], [Relu(g)],
            Convention.PytorchGradCam);
        long fixedRow = 2 * Activations + Masks;
        long suffix = 2 * 256 * 4 + (4 + 4 + 5) * 4;   // the relu row twice, then gap, flatten, gemm
        long gradient = 2 * Activations + 2 * 192 * 4;
        Assert.That(plan.RowBytes[Reruns.Suffix], Is.EqualTo(suffix));
        Assert.That(plan.RowBytes[Reruns.Gradient], Is.EqualTo(gradient));
        int explain = (int)(200_000 / 2 / fixedRow); // 14
        long share = (200_000 - explain * fixedRow) / 3;
        Assert.That(plan.ExplainRows, Is.EqualTo(explain));
        Assert.That(plan.Rows(Reruns.Forward), Is.EqualTo((int)(share / (2 * ForwardRow))));
        Assert.That(plan.Rows(Reruns.Suffix), Is.EqualTo((int)(share / (2 * suffix))));
        Assert.That(plan.Rows(Reruns.Gradient), Is.EqualTo((int)(share / (2 * gradient))));
    }

    [Test]
    public void Mask_sets_alive_at_once_are_counted_once_per_convention()
    {
        var g = TinyModel.Graph();
        // SS-CAM and IS-CAM share TorchCAM's masks; Score-CAM under pytorch-grad-cam's, between them, keeps both alive.
        var apart = MemoryPlan.For(g, 1 << 20, 32, 1, [new SsCam(), new ScoreCam(), new IsCam()], [Relu(g)], Convention.PytorchGradCam);
        var shared = MemoryPlan.For(g, 1 << 20, 32, 1, [new SsCam(), new ScoreCam(), new IsCam()], [Relu(g)], Convention.TorchCam);
        Assert.That(apart.MaskRowBytes, Is.EqualTo(2 * Masks));
        Assert.That(shared.MaskRowBytes, Is.EqualTo(Masks));
    }

    [Test]
    public void A_budget_too_small_for_one_image_is_refused_with_both_numbers()
    {
        var g = TinyModel.Graph();
        var e = Assert.Throws<DeviceMemoryException>(() =>
            MemoryPlan.For(g, 10_343, 32, 1, [new ScoreCam()], [Relu(g)], Convention.PytorchGradCam))!;
        Assert.That(e.Message, Does.StartWith("out of memory before starting: explaining one image needs 10344 bytes (10.1 KiB: "));
        Assert.That(e.Message, Does.Contain("1.0 KiB of Score-CAM masks").And.Contain("3.5 KiB for one forward re-run row"));
        Assert.That(e.Message, Does.EndWith("more than the memory budget of 10343 bytes (10.1 KiB)"));

        // Through the explainer, before any pass; and a budget that is no size at all.
        using var model = DeviceModel.Load(TinyModel.Create(), TestDevice.Cpu);
        var input = new HostTensor(1, 3, 8, 8);
        var small = Assert.Throws<DeviceMemoryException>(() => new Explainer(model).Explain(input, new ScoreCam(),
            new ExplainOptions { MemoryBudgetBytes = 10_343 }))!;
        Assert.That(small.Message, Does.Contain("needs 10344 bytes").And.Contain("budget of 10343 bytes"));
        var zero = Assert.Throws<CamEngineException>(() => new Explainer(model).Explain(input, new GradCam(),
            new ExplainOptions { MemoryBudgetBytes = 0 }))!;
        Assert.That(zero.Message, Is.EqualTo("the memory budget must be a positive number of bytes, got 0"));
    }

    [Test]
    public void Tails_run_in_power_of_two_batches()
    {
        Assert.That(MemoryPlan.Pieces(32, 32), Is.EqualTo(new[] { (0, 32) }));
        Assert.That(MemoryPlan.Pieces(21, 32), Is.EqualTo(new[] { (0, 16), (16, 4), (20, 1) }));
        Assert.That(MemoryPlan.Pieces(7, 26), Is.EqualTo(new[] { (0, 4), (4, 2), (6, 1) }));
        Assert.That(MemoryPlan.Pieces(0, 8), Is.Empty);
    }

    private static CamMethod[] Perturbation() =>
    [
        new ScoreCam(), new SsCam { Samples = 2 }, new IsCam { Steps = 3 }, new AblationCam(), new ReciproCam { Score = MaskedScore.Target },
        new Occlusion { Window = 8, Stride = 4 }, new Rise { MaskCount = 40, Score = MaskedScore.Target }, new SmoothGrad { Samples = 3 },
        new IntegratedGradients { Steps = 5 },
    ];

    [Test]
    public void Maps_are_the_same_with_and_without_sharing_and_at_any_batch()
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        const string layer = "/block2/relu2/Relu_output_0";
        var options = new ExplainOptions { Layers = [layer], Convention = Convention.TorchCam, Seed = 3 };
        var methods = Perturbation();
        var ledger = new PassLedger();
        var together = new Explainer(model).Explain(input, methods, options, ledger);
        // Score-CAM (TorchCAM's masks here), SS-CAM and IS-CAM computed one mask set between them.
        Assert.That(ledger.Snapshot().MaskSetsBuilt, Is.EqualTo(1));
        foreach (var method in methods)
        {
            // Alone (its own plan, nothing shared) and one re-run row per pass.
            var alone = new Explainer(model).Explain(input, [method], options)[method.Name];
            var single = new Explainer(model).Explain(input, [method], new ExplainOptions
            {
                Layers = [layer], Convention = Convention.TorchCam, Seed = 3, PerturbationBatch = 1,
            })[method.Name];
            var t = together[method.Name][0];
            TensorAssert.Close(alone[0].Raw.Data, t.Raw.Data, 1e-6, 1e-6, $"{method.Name} shared vs alone");
            TensorAssert.Close(single[0].Raw.Data, t.Raw.Data, 1e-6, 1e-6, $"{method.Name} batch 1 vs planned");
            TensorAssert.Close(alone[0].Map.Data, t.Map.Data, 1e-6, 1e-6, $"{method.Name} map");
        }
    }

    [TestCase("cpu", 0L)]                     // the host reads the device masks in place
    [TestCase("ilgpu", 16L * 32 * 32 * 4)]    // one download of the (C=16, 32, 32) mask set
    public void The_mask_set_is_not_copied_to_the_host_where_device_memory_is_host_memory(string device, long copyBytes)
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), TestDevice.Named(device));
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        const string layer = "/block2/relu2/Relu_output_0";
        Assert.That(model.Graph.ResolveLayer(layer).Shape, Is.EqualTo(new[] { 16, 16, 16 }));
        var ledger = new PassLedger();
        var options = new ExplainOptions { Layers = [layer], Convention = Convention.TorchCam, Seed = 3 };
        var maps = new Explainer(model).Explain(input, [new ScoreCam(), new SsCam { Samples = 2 }, new IsCam { Steps = 2 }], options, ledger);
        Assert.That(ledger.Snapshot().MaskSetsBuilt, Is.EqualTo(1));
        Assert.That(ledger.MaskHostCopyBytes, Is.EqualTo(copyBytes));
        if (device == "cpu")
        {
            // The same maps as the reference backend's host arithmetic.
            using var reference = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), new CamEngine.Backends.ReferenceBackend());
            var expected = new Explainer(reference).Explain(input, [new ScoreCam(), new SsCam { Samples = 2 }, new IsCam { Steps = 2 }], options);
            foreach (var (name, list) in expected)
                TensorAssert.Close(maps[name][0].Raw.Data, list[0].Raw.Data, 1e-5, 1e-4, name);
        }
    }

    [Test]
    public void Ss_cam_noise_drawn_per_item_equals_the_whole_array_drawn_first()
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        const string layer = "/block2/relu2/Relu_output_0";
        var shape = model.Graph.ResolveLayer(layer).Shape;
        int big = 32 * 32, samples = 2;
        // The array the method drew before: S x N x C x H x W standard normals times std, one stream from the seed.
        var rng = new Random(7);
        var noise = new float[samples * shape[0] * big];
        for (int j = 0; j < noise.Length; j++)
            noise[j] = (float)(2f * CamEngine.Methods.Perturbation.Gaussian(rng));
        var options = new ExplainOptions { Layers = [layer], Seed = 7 };
        var drawn = new Explainer(model).Explain(input, new SsCam { Samples = samples }, options)[0];
        var replayed = new Explainer(model).Explain(input, new SsCam { Samples = samples, Noise = noise }, options)[0];
        Assert.That(drawn.Raw.Data, Is.EqualTo(replayed.Raw.Data));
    }

    [Test]
    public void Gaussians_in_parallel_chunks_equal_one_draw_per_element_in_order()
    {
        // SS-CAM's noise (N x C x H x W per sample; 25.7 M values for ResNet-18's 512 channels): past one chunk of
        // 2^20 values, so the second chunk's uniforms must continue the first's stream.
        const int n = (1 << 20) + 4099;
        var rng = new Random(3);
        var expected = new float[n];
        for (int j = 0; j < n; j++)
            expected[j] = (float)(1.5f * CamEngine.Methods.Perturbation.Gaussian(rng));
        var actual = new float[n];
        CamEngine.Methods.Perturbation.Gaussians(new Random(3), 1.5f, actual);
        Assert.That(actual, Is.EqualTo(expected));
    }

    [Test]
    public void The_ledger_counts_every_rerun_row_and_its_ideal_is_rows_times_the_best_pass()
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("rocket"));
        const string layer = "/block2/relu2/Relu_output_0";
        var shape = model.Graph.ResolveLayer(layer).Shape;
        var ledger = new PassLedger();
        var methods = new CamMethod[] { new SsCam { Samples = 3 }, new ReciproCam { Score = MaskedScore.Target }, new SmoothGrad { Samples = 5 }, new GradCam() };
        new Explainer(model).Explain(input, methods, new ExplainOptions { Layers = [layer], PerturbationBatch = 4 }, ledger);
        var b = ledger.Snapshot();
        var by = b.Methods.ToDictionary(m => m.Method);
        Assert.That(by.Keys, Is.EqualTo(new[] { PassLedger.SharedForward, "sscam", "reciprocam", "smoothgrad", "gradcam" }));
        Assert.That(by["sscam"].PassesByKind["forward"], Is.EqualTo(3 * shape[0]));          // noisy masks are never all zero
        Assert.That(by["reciprocam"].PassesByKind["forward-from-layer"], Is.EqualTo(shape[1] * shape[2]));
        Assert.That(by["smoothgrad"].PassesByKind["forward+backward"], Is.EqualTo(5));
        Assert.That(by["smoothgrad"].BatchSizes, Is.EqualTo(new[] { 4, 1 }));                // 4, then the tail
        Assert.That(by["gradcam"].Passes, Is.Zero);
        Assert.That(by[PassLedger.SharedForward].Passes, Is.EqualTo(1));
        foreach (var m in b.Methods)
        {
            Assert.That(m.Passes, Is.EqualTo(m.PassesByKind.Values.Sum()), m.Method);
            double ideal = m.PassesByKind.Sum(p => p.Value * b.BestPerImageMs[p.Key]);
            Assert.That(m.IdealMs, Is.EqualTo(ideal).Within(1e-9 * Math.Max(1, ideal)), m.Method);
            Assert.That(m.BatchSizes.All(s => s <= 4), m.Method);
            Assert.That(m.PassMs, Is.LessThanOrEqualTo(m.WallMs + 1e-6), m.Method);
        }
        Assert.That(b.WallMs, Is.EqualTo(b.Methods.Sum(m => m.WallMs)).Within(1e-6));
        Assert.That(b.Ratio, Is.EqualTo(b.WallMs / b.IdealMs).Within(1e-12));
        Assert.That(b.PlannedBatch["forward"], Is.EqualTo(4));
    }
}
