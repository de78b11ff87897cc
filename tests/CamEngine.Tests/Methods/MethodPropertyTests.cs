using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// The methods without reference fixtures, checked by their defining properties and by hand computation:
/// mostly on the 3x8x8 test model (conv-relu-GAP-gemm) so they stay fast, a few on the fixture models.
/// </summary>
[TestFixture]
public sealed class MethodPropertyTests
{
    private const string Relu = "/relu/Relu_output_0";

    private static Backend Device => TestDevice.Ilgpu;

    private static HostTensor TinyInputs(int n, int seed = 7)
    {
        var rng = new Random(seed);
        return new HostTensor([n, 3, 8, 8], TensorAssert.Random(rng, n * 192, 2f));
    }

    private static IReadOnlyList<Explanation> Tiny(CamMethod method, HostTensor input, ExplainOptions? options = null)
    {
        using var model = DeviceModel.Load(TinyModel.Create(), Device);
        return new Explainer(model).Explain(input, method, options ?? new ExplainOptions { Layers = [Relu] });
    }

    private static float[] Logits(ModelFile file, HostTensor input)
    {
        using var model = DeviceModel.Load(file, Device);
        using var x = Device.Upload(input);
        using var pass = model.Forward(x);
        return Device.Download(pass.Output);
    }

    [Test]
    public void ForwardFrom_with_the_same_activation_reproduces_the_output_and_copies_residual_branches()
    {
        var file = PerturbationFixtureTests.Model("tiny_resnet");
        using var model = DeviceModel.Load(file, Device);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        using var x = Device.Upload(input);
        using var pass = model.Forward(x);
        var logits = Device.Download(pass.Output);
        var g = model.Graph;
        // A layer after which some node still reads an earlier tensor (the skip connection of a block).
        var layer = g.Nodes.Where((n, i) => n.Shape.Length == 3 && g.Nodes.Skip(i + 1).Any(m => m.Inputs.Any(t =>
            t != g.InputName && g.Nodes.Take(i).Any(p => p.Output == t)))).First();
        var a = Device.Download(pass[layer.Output]);
        using var replaced = Device.Upload([.. a, .. a, .. a], [3, .. layer.Shape]);
        using var again = model.ForwardFrom(pass, layer.Output, replaced, [0, 0, 0]);
        var y = Device.Download(again.Output);
        Assert.That(y, Has.Length.EqualTo(3 * logits.Length));
        for (int r = 0; r < 3; r++)
            TensorAssert.Close(y.AsSpan(r * logits.Length, logits.Length), logits, 1e-5, 1e-5, $"row {r} after {layer.Output}");
        Assert.That(() => model.ForwardFrom(pass, layer.Output, replaced, [0, 1, 0]), Throws.TypeOf<CamEngineException>());
    }

    [Test]
    public void Cam_equals_gradcam_up_to_a_positive_factor_at_the_gap_input()
    {
        using var model = DeviceModel.Load(PerturbationFixtureTests.Model("tiny_gapcnn"), Device);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        var options = new ExplainOptions { Layers = ["/pool3/MaxPool_output_0"] };
        var results = new Explainer(model).Explain(input, [new ClassActivationMap(), new GradCam()], options);
        var cam = results["cam"][0].Raw.Data;
        var grad = results["gradcam"][0].Raw.Data;
        // Grad-CAM's weights are W[c,k] / (h w): the factor is h w = 16.
        TensorAssert.Close(grad.Select(v => v * 16f).ToArray(), cam, 1e-5, 1e-4, "16 x Grad-CAM vs CAM");
        TensorAssert.Close(results["cam"][0].Map.Data, results["gradcam"][0].Map.Data, 1e-5, 0, "final maps");
    }

    [Test]
    public void Cam_refuses_a_model_without_a_gap_linear_or_affine_head()
    {
        // conv -> relu -> flatten -> gemm, explained at the conv: the ReLU makes the head non-affine.
        var graph = TinyModel.Graph();
        var nodes = graph.Nodes.Where(n => n.Op != Ops.GlobalAvgPool).ToList();
        var flatten = nodes.First(n => n.Op == Ops.Flatten);
        nodes[nodes.IndexOf(flatten)] = new GraphNode
        {
            Name = flatten.Name, Op = Ops.Flatten, Inputs = [Relu], Output = flatten.Output, Attrs = flatten.Attrs, Shape = [256],
        };
        var noGap = new ModelGraph
        {
            InputName = graph.InputName, InputShape = graph.InputShape, OutputName = graph.OutputName,
            Preprocessing = graph.Preprocessing, Nodes = nodes,
        };
        var weights = TinyModel.Weights();
        weights["fc.weight"] = new HostTensor([5, 256], TensorAssert.Random(new Random(1), 5 * 256));
        using var model = DeviceModel.Load(new ModelFile(noGap, weights), Device);
        var e = Assert.Throws<MethodNotApplicableException>(() =>
            new Explainer(model).Explain(TinyInputs(1), new ClassActivationMap(), new ExplainOptions { Layers = [TinyModel.ConvOut] }));
        Assert.That(e!.Message, Does.Contain("global-average-pool + linear head"));
        Assert.That(e.Message, Does.Contain("'/relu/Relu' (relu) is not affine"));
    }

    [Test]
    public void SmoothGrad_with_sigma_zero_is_the_plain_gradient()
    {
        var input = TinyInputs(2);
        var smooth = Tiny(new SmoothGrad { Sigma = 0, Samples = 3 }, input, new ExplainOptions { PerturbationBatch = 4 });
        var plain = Tiny(new Saliency(), input, new ExplainOptions());
        for (int i = 0; i < 2; i++)
            TensorAssert.Close(smooth[i].Raw.Data, plain[i].Raw.Data, 1e-6, 1e-5, $"image {i}");
    }

    [Test]
    public void SmoothGrad_is_seeded_and_batch_independent()
    {
        var input = TinyInputs(2);
        var a = Tiny(new SmoothGrad { Samples = 5 }, input, new ExplainOptions { PerturbationBatch = 3, Seed = 4 });
        var b = Tiny(new SmoothGrad { Samples = 5 }, input, new ExplainOptions { PerturbationBatch = 32, Seed = 4 });
        var c = Tiny(new SmoothGrad { Samples = 5 }, input, new ExplainOptions { PerturbationBatch = 32, Seed = 5 });
        TensorAssert.Close(a[1].Raw.Data, b[1].Raw.Data, 1e-6, 1e-5, "same seed, other batch size");
        Assert.That(a[1].Raw.Data, Is.Not.EqualTo(c[1].Raw.Data), "another seed draws other noise");
    }

    [Test]
    public void Deconvnet_matches_a_hand_computation()
    {
        // y_c = sum_k W[c,k] mean_ij relu(conv_k(x)) + b: the deconvnet rule passes dy/dZ_k = relu(W[c,k] / 64) at
        // every position (the sign of the gradient only), then the transposed convolution (pad 1) to the input.
        var input = TinyInputs(1);
        var e = Tiny(new Deconvnet(), input, new ExplainOptions())[0];
        var w = TinyModel.Weights();
        var conv = w["conv.weight"].Data;
        var fc = w["fc.weight"].Data;
        int c = e.TargetClass;
        var expected = new float[192];
        for (int k = 0; k < 4; k++)
        {
            double gk = Math.Max(fc[c * 4 + k], 0) / 64.0;
            for (int ci = 0; ci < 3; ci++)
            for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
            {
                double s = 0;
                for (int oy = 0; oy < 8; oy++)
                for (int ox = 0; ox < 8; ox++)
                {
                    int ky = y - oy + 1, kx = x - ox + 1;
                    if (ky is >= 0 and < 3 && kx is >= 0 and < 3)
                        s += conv[((k * 3 + ci) * 3 + ky) * 3 + kx];
                }
                expected[(ci * 8 + y) * 8 + x] += (float)(gk * s);
            }
        }
        TensorAssert.Close(e.Raw.Data, expected, 1e-6, 1e-4, "deconvnet");
    }

    [Test]
    public void GuidedGradCam_is_guided_backprop_times_the_gradcam_map()
    {
        var input = TinyInputs(2);
        using var model = DeviceModel.Load(TinyModel.Create(), Device);
        var r = new Explainer(model).Explain(input, [new GuidedGradCam(), new GuidedBackprop(), new GradCam()],
            new ExplainOptions { Layers = [Relu] });
        for (int i = 0; i < 2; i++)
        {
            var gb = r["guided-backprop"][i].Raw.Data;
            var cam = r["gradcam"][i].Map.Data;
            var expected = gb.Select((v, j) => v * cam[j % 64]).ToArray();
            TensorAssert.Close(r["guided-gradcam"][i].Raw.Data, expected, 1e-7, 1e-5, $"image {i}");
            Assert.That(r["guided-gradcam"][i].Raw.Shape, Is.EqualTo(new[] { 3, 8, 8 }));
        }
    }

    [Test]
    public void IntegratedGradients_are_complete()
    {
        var input = TinyInputs(2, seed: 11);
        var e = Tiny(new IntegratedGradients { Steps = 200 }, input, new ExplainOptions { PerturbationBatch = 64 });
        var file = TinyModel.Create();
        var y = Logits(file, input);
        var y0 = Logits(file, new HostTensor([1, 3, 8, 8]));
        for (int i = 0; i < 2; i++)
        {
            int c = e[i].TargetClass;
            double delta = y[i * 5 + c] - y0[c];
            double sum = e[i].Raw.Data.Sum(v => (double)v);
            Assert.That(sum, Is.EqualTo(delta).Within(0.01 * Math.Abs(delta)), $"image {i}: sum IG vs f(x) - f(0)");
        }
    }

    [Test]
    public void ClassModel_ascends_the_penalized_score_and_keeps_the_l2_bound()
    {
        using var model = DeviceModel.Load(TinyModel.Create(), Device);
        var input = TinyInputs(2);
        var method = new ClassModel { Steps = 40, LearningRate = 0.5f, L2 = 0.05f };
        var explanation = new Explainer(model).Explain(input, method)[0];
        // Re-run the ascent through the context to read the objective history.
        using var x = Device.Upload(input);
        using var pass = model.Forward(x);
        var y = Device.Download(pass.Output);
        var classes = Target.Top1.Resolve(y, 2);
        var context = new ExplainContext
        {
            Model = model, Forward = pass, Classes = classes, Scores = [y[classes[0]], y[5 + classes[1]]], Layers = [],
        };
        var (images, objective) = method.Synthesize(context);
        for (int i = 0; i < 2; i++)
        {
            for (int t = 1; t < objective[i].Length; t++)
                Assert.That(objective[i][t], Is.GreaterThanOrEqualTo(objective[i][t - 1] - 1e-5), $"image {i} step {t}");
            Assert.That(objective[i][^1], Is.GreaterThan(objective[i][0]), $"image {i} improves");
            // J(x_T) >= J(0) = S(0), so lambda |x_T|^2 <= S(x_T) - S(0).
            double norm = images.AsSpan(i * 192, 192).ToArray().Sum(v => (double)v * v);
            double scoreT = objective[i][^1] + 0.05 * norm;
            Assert.That(0.05 * norm, Is.LessThanOrEqualTo(scoreT - objective[i][0] + 1e-5), $"image {i} L2 bound");
        }
        TensorAssert.Close(explanation.Raw.Data, images.AsSpan(0, 192).ToArray(), 1e-6, 1e-5, "Raw is the synthesized image");
    }

    [Test]
    public void Kpca_with_a_linear_kernel_is_eigencam()
    {
        using var model = DeviceModel.Load(PerturbationFixtureTests.Model("tiny_gapcnn"), Device);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        foreach (var layer in new[] { "/relu3/Relu_output_0", "/pool3/MaxPool_output_0" })
        {
            var r = new Explainer(model).Explain(input, [new KpcaCam { Kernel = KpcaKernel.Linear }, new EigenCam()],
                new ExplainOptions { Layers = [layer] });
            var eigen = r["eigencam"][0].Raw.Data;
            double scale = eigen.Max(Math.Abs);
            TensorAssert.Close(r["kpcacam"][0].Raw.Data, eigen, 1e-5 * scale, 1e-4, layer);
        }
        var sigmoid = new Explainer(model).Explain(input, new KpcaCam(), new ExplainOptions { Layers = ["/relu3/Relu_output_0"] })[0];
        Assert.That(sigmoid.Map.Data.Max(), Is.EqualTo(1f).Within(1e-6));
    }

    [Test]
    public void FinerCam_with_alpha_zero_is_gradcam_and_its_gradient_matches_finite_differences()
    {
        var input = TinyInputs(3);
        using var model = DeviceModel.Load(TinyModel.Create(), Device);
        var options = new ExplainOptions { Layers = [Relu] };
        var r = new Explainer(model).Explain(input, [new FinerCam { Alpha = 0 }, new GradCam()], options);
        for (int i = 0; i < 3; i++)
            TensorAssert.Close(r["finercam"][i].Raw.Data, r["gradcam"][i].Raw.Data, 1e-6, 1e-4, $"image {i}");
        var finer = new Explainer(model).Explain(input, new FinerCam(), options);
        Assert.That(finer[0].Raw.Data, Is.Not.EqualTo(r["gradcam"][0].Raw.Data));

        var row = new float[] { 1.5f, 1.2f, -0.3f, 1.7f, 0.9f };
        foreach (bool mean in new[] { false, true })
        {
            var objective = new FinerObjective([0], [[3, 1, 4]], 0.8f, mean);
            var grad = new float[5];
            objective.Gradient(0, row, grad);
            for (int m = 0; m < 5; m++)
            {
                var plus = (float[])row.Clone();
                var minus = (float[])row.Clone();
                plus[m] += 1e-3f;
                minus[m] -= 1e-3f;
                double fd = (objective.Score(0, plus) - objective.Score(0, minus)) / 2e-3;
                Assert.That(grad[m], Is.EqualTo(fd).Within(2e-3), $"d/dy[{m}] (mean difference: {mean})");
            }
        }
    }

    [Test]
    public void Perturbation_methods_do_not_depend_on_the_batch_size()
    {
        var input = TinyInputs(2);
        foreach (CamMethod method in new CamMethod[] { new ScoreCam(), new AblationCam(), new IsCam { Steps = 3 } })
        {
            var one = Tiny(method, input, new ExplainOptions { Layers = [Relu], PerturbationBatch = 1 });
            var many = Tiny(method, input, new ExplainOptions { Layers = [Relu], PerturbationBatch = 5 });
            for (int i = 0; i < 2; i++)
                TensorAssert.Close(one[i].Weights!, many[i].Weights!, 1e-6, 1e-5, $"{method.Name} image {i}");
        }
    }

    [Test]
    public void ScoreCam_paper_weights_are_class_probabilities()
    {
        var input = TinyInputs(2);
        var e = Tiny(new ScoreCam(), input, new ExplainOptions { Layers = [Relu], Convention = Convention.Paper });
        foreach (var x in e)
            Assert.That(x.Weights!, Has.All.InRange(0f, 1f));
        var pgc = Tiny(new ScoreCam(), input, new ExplainOptions { Layers = [Relu] });
        foreach (var x in pgc)
            Assert.That(x.Weights!.Sum(), Is.EqualTo(1f).Within(1e-5), "channel softmax");
    }
}
