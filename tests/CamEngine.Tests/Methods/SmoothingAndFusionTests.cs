using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Tensors;
using NUnit.Framework;
using static CamEngine.Tests.Methods.FixtureData;

namespace CamEngine.Tests.Methods;

/// <summary>Layer fusion, eigen_smooth, aug_smooth, Grad-CAM++ conventions and seeded noise, on hand-computed cases.</summary>
[TestFixture]
public sealed class SmoothingAndFusionTests
{
    [Test]
    public void Fuse_takes_the_mean_max_or_product()
    {
        float[] a = [0, 0.5f, 1], b = [1, 0.5f, 0.25f];
        Assert.That(CamPostprocess.Fuse([a, b], LayerFusion.Mean), Is.EqualTo(new[] { 0.5f, 0.5f, 0.625f }));
        Assert.That(CamPostprocess.Fuse([a, b], LayerFusion.Max), Is.EqualTo(new[] { 1f, 0.5f, 1f }));
        Assert.That(CamPostprocess.Fuse([a, b], LayerFusion.Product), Is.EqualTo(new[] { 0f, 0.25f, 0.25f }));
    }

    [Test]
    public void Two_layer_post_processing_matches_hand_values_in_each_convention()
    {
        // Two 2x2 maps at the output size (the resize is the identity); negatives removed by the ReLU.
        var l0 = new HostTensor([2, 2], [0, 1, 2, 3]);
        var l1 = new HostTensor([2, 2], [3, 2, -1, 0]);
        // pgc: min-max each (1e-7): [0, 1/3, 2/3, 1] and [1, 2/3, 0, 0]; product [0, 2/9, 0, 0] -> [0, 1, 0, 0].
        var product = CamPostprocess.Finish([l0, l1], 2, 2, Convention.PytorchGradCam, LayerFusion.Product, "t");
        TensorAssert.Close(product.Data, new float[] { 0, 1, 0, 0 }, 1e-6, 0, "pgc product");
        // mean [0.5, 0.5, 1/3, 0.5] -> min-max [1, 1, 0, 1].
        var mean = CamPostprocess.Finish([l0, l1], 2, 2, Convention.PytorchGradCam, null, "t");
        TensorAssert.Close(mean.Data, new float[] { 1, 1, 0, 1 }, 1e-6, 0, "pgc mean (default)");
        // max [1, 2/3, 2/3, 1] -> [1, 0, 0, 1]; the paper convention defaults to max.
        var max = CamPostprocess.Finish([l0, l1], 2, 2, Convention.Paper, null, "t");
        TensorAssert.Close(max.Data, new float[] { 1, 0, 0, 1 }, 1e-6, 0, "paper max (default)");
        // TorchCAM with LayerCAM's tanh(2c) before the max: max(tanh(2 [0,1/3,2/3,1]), tanh(2 [1,2/3,0,0])).
        var tc = CamPostprocess.Finish([l0, l1], 2, 2, Convention.TorchCam, null, "t", c => MathF.Tanh(2 * c));
        var t = new[] { Math.Tanh(2.0), Math.Tanh(4.0 / 3), Math.Tanh(4.0 / 3), Math.Tanh(2.0) };
        double lo = t.Min(), hi = t.Max();
        TensorAssert.Close(tc.Data, t.Select(v => (v - lo) / (hi - lo)).ToArray(), 1e-5, 0, "TorchCAM tanh + max");
        var paper = CamPostprocess.Finish([l0, l1], 2, 2, Convention.Paper, null, "t", c => MathF.Tanh(2 * c));
        TensorAssert.Close(paper.Data, t.Select(v => (v - lo) / (hi - lo)).ToArray(), 1e-5, 0, "paper (LayerCAM Eq. 9) tanh + max");
    }

    [Test]
    public void Explainer_fusion_modes_combine_the_single_layer_maps()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_gapcnn"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input("coffee"));
        var reference = Load("tiny_gapcnn", "coffee");
        // pgc per layer: relu, min-max, resize (not renormalized); fused; relu, min-max.
        float[] PerLayer(string layer)
        {
            var raw = explainer.Explain(input, new GradCam(), new ExplainOptions { Layers = [layer] })[0].Raw;
            return CamEngine.Imaging.Resize.Bilinear(new HostTensor(raw.Shape, MinMax(Relu(raw.Data))), 32, 32).Data;
        }
        var m0 = PerLayer(reference.L0);
        var m1 = PerLayer(reference.L1);
        foreach (var fusion in new[] { LayerFusion.Mean, LayerFusion.Max, LayerFusion.Product })
        {
            var fused = explainer.Explain(input, new GradCam(),
                new ExplainOptions { Layers = [reference.L0, reference.L1], Fusion = fusion })[0].Map.Data;
            TensorAssert.Close(fused, MinMax(CamPostprocess.Fuse([m0, m1], fusion)), 1e-5, 0, fusion.ToString());
        }
    }

    [Test]
    public void First_principal_component_of_a_two_channel_case_matches_the_closed_form()
    {
        // Channel 0 = 10 + [3, 1, -1, -3], channel 1 = [1, -1, 1, -1]; centred X (positions x channels).
        float[] maps = [13, 11, 9, 7, 1, -1, 1, -1];
        double[][] x = [[3, 1], [1, -1], [-1, 1], [-3, -1]];
        // X^T X = [[20, 4], [4, 4]]: lambda1 = 12 + sqrt(80), v = (4, lambda1 - 20) normalized.
        double l1 = 12 + Math.Sqrt(80), n = Math.Sqrt(16 + (l1 - 20) * (l1 - 20));
        double v0 = 4 / n, v1 = (l1 - 20) / n;
        var expected = x.Select(r => r[0] * v0 + r[1] * v1).ToArray();
        var projection = PrincipalComponent.Project(maps, 2, 4);
        TensorAssert.Close(projection, expected, 1e-6, 1e-6, "X v");
        // Sign: positive correlation with the channel sum [14, 10, 10, 6].
        Assert.That(projection[0], Is.GreaterThan(0));
    }

    [Test]
    public void Projection_with_fewer_positions_than_channels_uses_the_position_gram()
    {
        // Two positions: centred rows are x and -x with x = (row0 - row1) / 2, so X v = (|x|, -|x|) up to sign.
        float[] maps = [5, 1, 2, 2, 0, 4];   // 3 channels x 2 positions
        double[] x = [2, 0, -2];
        double norm = Math.Sqrt(x.Sum(v => v * v));
        var projection = PrincipalComponent.Project(maps, 3, 2);
        // channel sum [7, 7] correlates 0 with either sign; |values| must match.
        Assert.That(Math.Abs(projection[0]), Is.EqualTo(norm).Within(1e-5));
        Assert.That(projection[1], Is.EqualTo(-projection[0]).Within(1e-5));
    }

    [Test]
    public void Eigen_smooth_projects_the_weighted_activations()
    {
        var reference = Load("tiny_gapcnn", "rocket");
        var a = reference["L0.act"];
        var g = reference["L0.grad"];
        var method = new XGradCam();
        var w = method.WeightsFor(a, g, 64, 64, Convention.PytorchGradCam)!;
        var weighted = new float[64 * 64];
        for (int k = 0; k < 64; k++)
        {
            for (int j = 0; j < 64; j++)
                weighted[k * 64 + j] = w[k] * a[k * 64 + j];
        }
        var expected = PrincipalComponent.Project(weighted, 64, 64);
        using var model = DeviceModel.Load(ModelFor("tiny_gapcnn"), TestDevice.Ilgpu);
        var e = new Explainer(model).Explain(Npy.Read(FixturePaths.Input("rocket")), method,
            new ExplainOptions { Layers = [reference.L0], EigenSmooth = true })[0];
        TensorAssert.Close(MinMax(e.Raw.Data), MinMax(expected), 1e-3, 0, "eigen-smoothed raw map");
    }

    [Test]
    public void Aug_smooth_on_a_mirror_symmetric_image_averages_flipped_and_scaled_passes()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_resnet"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var photo = Npy.Read(FixturePaths.Input("chelsea"));
        var sym = new HostTensor(photo.Shape, new float[photo.Length]);
        for (int row = 0; row < 3 * 32; row++)
        {
            for (int col = 0; col < 32; col++)
                sym.Data[row * 32 + col] = 0.5f * (photo.Data[row * 32 + col] + photo.Data[row * 32 + 31 - col]);
        }
        var smooth = explainer.Explain(sym, new LayerCam(), new ExplainOptions { AugSmooth = true })[0];
        // The input is its own mirror image, so the three flipped passes are the mirror images of the others:
        // the average is (1/6) sum_f (M_f + mirror(M_f)), with M_f the map of the pixel values times f (ttach
        // Multiply: a value scale, not a resize).
        int cls = smooth.TargetClass;
        var expected = new double[32 * 32];
        foreach (float f in new[] { 0.9f, 1f, 1.1f })
        {
            var scaled = new HostTensor(sym.Shape, sym.Data.Select(v => v * f).ToArray());
            var m = explainer.Explain(scaled, new LayerCam(), new ExplainOptions { Target = Target.Class(cls) })[0].Map.Data;
            for (int y = 0; y < 32; y++)
            {
                for (int x = 0; x < 32; x++)
                    expected[y * 32 + x] += (m[y * 32 + x] + m[y * 32 + 31 - x]) / 6.0;
            }
        }
        TensorAssert.Close(smooth.Map.Data, expected, 1e-5, 1e-5, "aug_smooth");
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 16; x++)
                Assert.That(smooth.Map.Data[y * 32 + x], Is.EqualTo(smooth.Map.Data[y * 32 + 31 - x]).Within(1e-6), "mirror symmetric");
        }
    }

    [Test]
    public void Gradcampp_conventions_differ_only_where_documented()
    {
        var reference = Load("tiny_gapcnn", "astronaut");
        var a = reference["L1.act"];
        var g = reference["L1.grad"];
        var m = new GradCamPlusPlus();
        var paper = m.WeightsFor(a, g, 64, 16, Convention.Paper)!;
        var tc = m.WeightsFor(a, g, 64, 16, Convention.TorchCam)!;
        for (int k = 0; k < 64; k++)
        {
            double sumA = 0, expPaper = 0, expTc = 0;
            for (int j = 0; j < 16; j++)
                sumA += a[k * 16 + j];
            for (int j = 0; j < 16; j++)
            {
                double gj = g[k * 16 + j];
                double alpha = gj == 0 ? 0 : gj * gj / (2 * gj * gj + sumA * gj * gj * gj);
                expPaper += alpha * Math.Max(gj, 0);
                expTc += gj * gj * Math.Max(gj, 0);
            }
            Assert.That(paper[k], Is.EqualTo(expPaper).Within(1e-7 + 1e-5 * Math.Abs(expPaper)), $"paper w[{k}]");
            Assert.That(tc[k], Is.EqualTo(expTc).Within(1e-12 + 1e-5 * Math.Abs(expTc)), $"TorchCAM w[{k}]");
        }
    }

    [Test]
    public void Smooth_gradcampp_with_zero_noise_is_gradcampp_and_seeds_repeat()
    {
        using var model = DeviceModel.Load(ModelFor("tiny_gapcnn"), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var input = Npy.Read(FixturePaths.Input("astronaut"));
        var zeros = Enumerable.Range(0, 2).Select(_ => new float[input.Length]).ToList();
        foreach (var convention in new[] { Convention.Paper, Convention.PytorchGradCam })
        {
            var options = new ExplainOptions { Convention = convention };
            var smooth = explainer.Explain(input, new SmoothGradCamPlusPlus { ReplayNoise = zeros }, options)[0];
            var plain = explainer.Explain(input, new GradCamPlusPlus(), options)[0];
            TensorAssert.Close(smooth.Raw.Data, plain.Raw.Data, 1e-6, 1e-4, $"{convention}: zero noise");
        }
        // At tiny_resnet's block1 the gradient depends on the input (at tiny_gapcnn's last pool it is constant).
        using var resnet = DeviceModel.Load(ModelFor("tiny_resnet"), TestDevice.Ilgpu);
        var r = new Explainer(resnet);
        string layer = Load("tiny_resnet", "astronaut").L1;
        var seeded = new ExplainOptions { Seed = 7, Layers = [layer] };
        var first = r.Explain(input, new SmoothGradCamPlusPlus { Samples = 2 }, seeded)[0].Map.Data;
        var again = r.Explain(input, new SmoothGradCamPlusPlus { Samples = 2 }, seeded)[0].Map.Data;
        var other = r.Explain(input, new SmoothGradCamPlusPlus { Samples = 2 }, new ExplainOptions { Seed = 8, Layers = [layer] })[0].Map.Data;
        Assert.That(again, Is.EqualTo(first), "same seed, same map");
        Assert.That(other, Is.Not.EqualTo(first), "another seed draws other noise");
    }
}
