using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>Method parameters set from text (<c>cam explain --param</c>): parsing, errors, and their effect.</summary>
[TestFixture]
public sealed class MethodParameterTests
{
    private static Backend Device => TestDevice.Ilgpu;

    private static List<CamMethod> Methods(params string[] names) => names.Select(MethodCatalog.Get).ToList();

    [Test]
    public void Keys_apply_to_every_chosen_method_that_has_them_and_method_keys_to_one()
    {
        var m = MethodCatalog.WithParameters(Methods("smoothgrad", "sscam", "integrated-gradients", "gradcam", "kpcacam"),
            "Samples=7, sigma=0.5,integrated-gradients.steps=9,baseline=black,kernel=RBF,gamma=0.25");
        var smooth = (SmoothGrad)m[0];
        Assert.That((smooth.Samples, smooth.Sigma), Is.EqualTo((7, 0.5f)));
        var ss = (SsCam)m[1];
        Assert.That((ss.Samples, ss.NoiseStd), Is.EqualTo((7, 2f)), "samples reaches SS-CAM too; its std keeps the default");
        var ig = (IntegratedGradients)m[2];
        Assert.That((ig.Steps, ig.BaselinePixel, ig.Baseline), Is.EqualTo((9, (float?)0f, (HostTensor?)null)));
        Assert.That(m[3], Is.SameAs(MethodCatalog.Get("gradcam")), "a method without parameters is unchanged");
        var kpca = (KpcaCam)m[4];
        Assert.That((kpca.Kernel, kpca.Gamma), Is.EqualTo((KpcaKernel.Rbf, (double?)0.25)));
        var finer = (FinerCam)MethodCatalog.WithParameters(Methods("finercam"), "alpha=0.25,comparisons=2")[0];
        Assert.That((finer.Alpha, finer.Comparisons), Is.EqualTo(((float?)0.25f, 2)));
        Assert.That(((FinerCam)finer.WithParameters(new Dictionary<string, string> { ["alpha"] = "auto" })).Alpha, Is.Null);
        var model = (ClassModel)MethodCatalog.WithParameters(Methods("class-model"), "steps=0,lr=0.5,l2=0")[0];
        Assert.That((model.Steps, model.LearningRate, model.L2), Is.EqualTo((0, 0.5f, 0f)));
        Assert.That(MethodCatalog.WithParameters(Methods("smoothgrad"), "  "), Is.EqualTo(Methods("smoothgrad")));
    }

    [Test]
    public void Every_listed_default_parses_back_to_the_methods_own_default()
    {
        foreach (var method in MethodCatalog.All)
        {
            var values = method.Parameters.ToDictionary(p => p.Key, p => p.Default);
            var again = method.WithParameters(values);
            foreach (var property in method.GetType().GetProperties().Where(p => p.CanWrite && p.DeclaringType == method.GetType()))
                Assert.That(property.GetValue(again), Is.EqualTo(property.GetValue(method)), $"{method.Name}.{property.Name}");
        }
    }

    [TestCase("gradcam,smoothgrad", "bogus=1", "no chosen method has the parameter 'bogus'; valid: smoothgrad: samples, sigma")]
    [TestCase("gradcam", "samples=3", "gradcam takes no parameters")]
    [TestCase("smoothgrad", "sscam.samples=3", "no chosen method has the parameter 'sscam.samples'")]
    [TestCase("smoothgrad", "samples=0", "smoothgrad: parameter 'samples' must be an integer >= 1, got '0'")]
    [TestCase("smoothgrad", "samples=2.5", "must be an integer >= 1")]
    [TestCase("smoothgrad", "sigma=-0.1", "parameter 'sigma' must be a number >= 0, got '-0.1'")]
    [TestCase("smoothgrad", "sigma=NaN", "must be a number >= 0")]
    [TestCase("smoothgrad", "samples", "parameter 'samples' is not KEY=VALUE")]
    [TestCase("smoothgrad", "samples=1,samples=2", "parameter 'samples' is given twice")]
    [TestCase("kpcacam", "kernel=poly", "parameter 'kernel' must be one of sigmoid, rbf, linear, got 'poly'")]
    [TestCase("kpcacam", "kernel=1", "must be one of sigmoid, rbf, linear")]
    [TestCase("kpcacam", "gamma=0", "parameter 'gamma' must be a number > 0")]
    [TestCase("class-model", "lr=0", "parameter 'lr' must be a number > 0")]
    [TestCase("integrated-gradients", "baseline=grey", "'baseline' must be zero, black, white or a .npy file, got 'grey'")]
    public void Bad_parameters_are_refused_with_the_reason(string methods, string text, string message)
    {
        var e = Assert.Throws<CamEngineException>(() => MethodCatalog.WithParameters(Methods(methods.Split(',')), text));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void A_method_refuses_a_key_it_does_not_have()
    {
        var e = Assert.Throws<CamEngineException>(() => new SmoothGrad().WithParameters(new Dictionary<string, string> { ["steps"] = "3" }));
        Assert.That(e!.Message, Is.EqualTo("smoothgrad has no parameter 'steps'; valid: samples, sigma"));
    }

    /// <summary>sum IG - (y(x) - y(x')) for the tiny conv-relu-GAP-gemm model; the ReLU kinks along the path make the
    /// trapezoid rule inexact, so more steps must shrink the gap.</summary>
    private static (double Gap, double Delta) CompletenessGap(string parameters, HostTensor x, HostTensor baseline)
    {
        using var model = DeviceModel.Load(TinyModel.Create(), Device);
        var ig = MethodCatalog.WithParameters([new IntegratedGradients()], parameters)[0];
        var e = new Explainer(model).Explain(x, ig, new ExplainOptions { Target = Target.Class(2) })[0];
        double y(HostTensor input)
        {
            using var t = Device.Upload(input);
            using var pass = model.Forward(t);
            return Device.Download(pass.Output)[2];
        }
        double delta = y(x) - y(baseline);
        return (e.Raw.Data.Sum(v => (double)v) - delta, delta);
    }

    [Test]
    public void Integrated_gradients_steps_and_baseline_change_the_result_and_more_steps_close_the_completeness_gap()
    {
        var x = new HostTensor([1, 3, 8, 8], TensorAssert.Random(new Random(5), 192, 2f));
        var zero = new HostTensor([1, 3, 8, 8], new float[192]);
        var (coarse, delta) = CompletenessGap("steps=4", x, zero);
        var (fine, _) = CompletenessGap("steps=64", x, zero);
        TestContext.Out.WriteLine($"y(x) - y(0) = {delta:G6}; gap with 4 steps {coarse:G3}, with 64 steps {fine:G3}");
        Assert.That(Math.Abs(coarse), Is.GreaterThan(1e-3 * Math.Abs(delta)), "4 steps miss the ReLU kinks");
        Assert.That(Math.Abs(fine), Is.LessThan(Math.Abs(coarse) / 4), "64 steps close most of the gap");
        Assert.That(Math.Abs(fine), Is.LessThan(0.01 * Math.Abs(delta)));
        // baseline=black: the ImageNet-normalized black picture, (0 - mean_c) / std_c.
        var black = new HostTensor([1, 3, 8, 8], new float[192]);
        for (int c = 0; c < 3; c++)
            Array.Fill(black.Data, -CamEngine.Model.Preprocessing.ImageNetMean[c] / CamEngine.Model.Preprocessing.ImageNetStd[c], c * 64, 64);
        var (blackGap, blackDelta) = CompletenessGap("steps=64,baseline=black", x, black);
        Assert.That(blackDelta, Is.Not.EqualTo(delta).Within(1e-4), "another baseline, another y(x')");
        Assert.That(Math.Abs(blackGap), Is.LessThan(0.01 * Math.Abs(blackDelta)), "completeness against y(black)");
    }
}
