using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// FEM, RandomCAM, Occlusion, RISE and Recipro-CAM against pytorch-grad-cam's and Captum's own code and direct
/// implementations of the authors' algorithms, run on the fixture models (tools/fixtures/make_method_fixtures.py);
/// random draws (RandomCAM's weights, RISE's masks) are replayed from the fixture.
/// </summary>
[TestFixture]
public sealed class BlackBoxFixtureTests
{
    private const double Tol = 1e-4;

    public static IEnumerable<TestCaseData> Cases() => MethodFixtures.Cases();

    [TestCaseSource(nameof(Cases))]
    public void Fem_matches_pytorch_grad_cam(string model, string image)
    {
        var r = FixtureData.Load(model, image);
        var f = MethodFixtures.Load(model, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = MethodFixtures.Explain(model, image, new Fem(), layer);
            MethodFixtures.AssertClose(e.Raw.Data, f.Get($"fem.{key}.raw"), Tol, $"fem.{key}.raw");
            Assert.That(e.Weights!.All(w => w is >= 0 and <= 1), "weights are fractions of positions");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void RandomCam_with_pytorch_grad_cam_weights_matches(string model, string image)
    {
        var r = FixtureData.Load(model, image);
        var f = MethodFixtures.Load(model, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = MethodFixtures.Explain(model, image, new RandomCam { Weights = f.Get($"randomcam.{key}.weights") }, layer);
            MethodFixtures.AssertClose(e.Raw.Data, f.Get($"randomcam.{key}.raw"), Tol, $"randomcam.{key}.raw");
        }
    }

    [Test]
    public void RandomCam_draws_uniform_weights_repeatably_from_the_seed()
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_gapcnn"), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        float[] Weights(int seed) =>
            new Explainer(model).Explain(input, new RandomCam(), new ExplainOptions { Seed = seed })[0].Weights!;
        var a = Weights(1);
        Assert.That(Weights(1), Is.EqualTo(a));
        Assert.That(Weights(2), Is.Not.EqualTo(a));
        Assert.That(a.All(w => w is >= -1 and <= 1));
        Assert.That(a.Count(w => w < 0), Is.InRange(a.Length / 5, 4 * a.Length / 5), "signs are balanced");
    }

    [TestCaseSource(nameof(Cases))]
    public void Occlusion_matches_captum(string model, string image)
    {
        var f = MethodFixtures.Load(model, image);
        foreach (var (key, p) in new[]
                 {
                     ("w16s8.zero", ""), ("w6s4.mean", "window=6,stride=4,baseline=mean"),
                     ("w5s3.blur", "window=5,stride=3,baseline=blur,sigma=2"),
                 })
        {
            var method = MethodCatalog.WithParameters([new Occlusion()], p)[0];
            // A batch that does not divide the window count, so the last stack is partial.
            var e = MethodFixtures.Explain(model, image, method, batch: 7);
            Assert.That(e.Raw.Shape, Is.EqualTo(new[] { 32, 32 }));
            MethodFixtures.AssertClose(e.Raw.Data, f.Get($"occlusion.{key}.raw"), Tol, $"occlusion.{key}.raw");
        }
    }

    [Test]
    public void Occlusion_blur_baseline_matches_the_reference_blur()
    {
        var f = MethodFixtures.Load("tiny_gapcnn", "chelsea");
        var x = Npy.Read(FixturePaths.Input("chelsea")).Data;
        var b = InputBaselines.Make(InputBaselineKind.Blur, x, 3, 32, 32, 2.0);
        MethodFixtures.AssertClose(b, f.Get("occlusion.blur_baseline"), 1e-6, "blur baseline");
    }

    [Test]
    public void Occlusion_counts_windows_as_captum_does()
    {
        Assert.That(Occlusion.Positions(32, 16, 8), Is.EqualTo(3));
        Assert.That(Occlusion.Positions(32, 6, 4), Is.EqualTo(8)); // the last window, at 28, is clipped to 4 pixels
        Assert.That(Occlusion.Positions(32, 32, 50), Is.EqualTo(1));
        Assert.Throws<CamEngineException>(() => Occlusion.Positions(32, 33, 1));
        Assert.Throws<CamEngineException>(() => Occlusion.Positions(32, 4, 5));
    }

    [TestCaseSource(nameof(Cases))]
    public void Rise_with_replayed_masks_matches_the_authors_algorithm(string model, string image)
    {
        var f = MethodFixtures.Load(model, image);
        var masks = f.Get("rise.masks");
        var e = MethodFixtures.Explain(model, image, new Rise { Masks = masks }, batch: 10);
        MethodFixtures.AssertClose(e.Raw.Data, f.Get("rise.raw"), Tol, "rise.raw (probability)");
        var logit = MethodFixtures.Explain(model, image, new Rise { Masks = masks, Score = MaskedScore.Target }, batch: 64);
        MethodFixtures.AssertClose(logit.Raw.Data, f.Get("rise.logit.raw"), Tol, "rise.logit.raw");
    }

    [Test]
    public void Rise_masks_are_smooth_grids_kept_with_probability_p()
    {
        const int h = 32, w = 32;
        var sum = 0.0;
        var mask = new float[h * w];
        var first = new float[h * w];
        for (int k = 0; k < 400; k++)
        {
            Rise.DrawMask(new Random(k), 7, 0.3, h, w, mask);
            if (k == 0)
                mask.CopyTo(first, 0);
            foreach (float v in mask)
            {
                Assert.That(v, Is.InRange(0f, 1f));
                sum += v;
            }
        }
        Assert.That(sum / (400.0 * h * w), Is.EqualTo(0.3).Within(0.02), "mean mask value is p");
        Rise.DrawMask(new Random(0), 7, 0.3, h, w, mask);
        Assert.That(mask, Is.EqualTo(first), "same stream, same mask");
        // A grid of one cell kept everywhere is all ones; bilinear smoothness: neighbours differ by at most 1 / cell.
        Rise.DrawMask(new Random(5), 1, 1.0, h, w, mask);
        Assert.That(mask.All(v => v == 1f));
        Rise.DrawMask(new Random(9), 7, 0.5, h, w, mask);
        for (int a = 0; a < h; a++)
        {
            for (int b = 1; b < w; b++)
                Assert.That(Math.Abs(mask[a * w + b] - mask[a * w + b - 1]), Is.LessThanOrEqualTo(1f / 5 + 1e-6f));
        }
    }

    [Test]
    public void Rise_draws_the_same_masks_whatever_the_batch()
    {
        var a = MethodFixtures.Explain("tiny_gapcnn", "chelsea", MethodCatalog.WithParameters([new Rise()], "masks=150")[0], batch: 5);
        var b = MethodFixtures.Explain("tiny_gapcnn", "chelsea", MethodCatalog.WithParameters([new Rise()], "masks=150")[0], batch: 64);
        TensorAssert.Close(a.Raw.Data, b.Raw.Data, 1e-6, 1e-5, "rise raw, batch 5 vs 64");
    }

    [TestCaseSource(nameof(Cases))]
    public void ReciproCam_matches_openvino_xai(string model, string image)
    {
        var r = FixtureData.Load(model, image);
        var f = MethodFixtures.Load(model, image);
        foreach (var (key, layer) in r.Layers)
        {
            var e = MethodFixtures.Explain(model, image, new ReciproCam { Score = MaskedScore.Target }, layer, batch: 33);
            MethodFixtures.AssertClose(e.Raw.Data, f.Get($"reciprocam.{key}.raw"), Tol, $"reciprocam.{key}.raw");
            var p = MethodFixtures.Explain(model, image, new ReciproCam(), layer);
            MethodFixtures.AssertClose(p.Raw.Data, f.Get($"reciprocam.{key}.prob.raw"), Tol, $"reciprocam.{key}.prob.raw");
        }
    }
}
