using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// DeepLIFT and LRP against Captum's <c>DeepLift</c> and <c>LRP</c> run on the fixture models
/// (tools/fixtures/make_method_fixtures.py), and LRP's conservation of relevance, layer by layer, on ReLU networks
/// without biases.
/// </summary>
[TestFixture]
public sealed class RelevanceFixtureTests
{
    private const double Tol = 1e-4;

    public static IEnumerable<TestCaseData> Cases() => MethodFixtures.Cases();

    private static string NoBias(string file) => Path.Combine(FixturePaths.Root, "methods", file);

    private static Explanation ExplainNoBias(CamMethod method)
    {
        using var model = DeviceModel.Load(OnnxConverter.ConvertFile(NoBias("lrp_nobias.onnx")), TestDevice.Cpu);
        return new Explainer(model).Explain(Npy.Read(FixturePaths.Input("chelsea")), method)[0];
    }

    [TestCaseSource(nameof(Cases))]
    public void DeepLift_matches_captum_and_is_complete(string model, string image)
    {
        var f = MethodFixtures.Load(model, image);
        var e = MethodFixtures.Explain(model, image, new DeepLift());
        MethodFixtures.AssertClose(e.Raw.Data, f.Get("deeplift.rescale.raw"), Tol, "deeplift.rescale.raw");
        // Captum agrees where no ReLU feeds a max-pool; where one does (tiny_gapcnn), Captum's hooks hand that ReLU
        // the max-pool's plain gradient, and its attributions no longer add up to y(x) - y(0).
        if (model == "tiny_resnet")
            MethodFixtures.AssertClose(e.Raw.Data, f.Get("deeplift.raw"), Tol, "deeplift.raw (Captum)");
        // Completeness: the attributions add up to y(x) - y(0).
        using var m = DeviceModel.Load(FixtureData.ModelFor(model), TestDevice.Cpu);
        using var zero = m.Backend.Allocate(1, 3, 32, 32);
        using var pass = m.Forward(zero);
        float y0 = m.Backend.Download(pass.Output)[e.TargetClass];
        double sum = e.Raw.Data.Sum(v => (double)v);
        Assert.That(sum, Is.EqualTo(e.Score - y0).Within(1e-4 * Math.Max(1, Math.Abs(e.Score - y0))));
    }

    [TestCaseSource(nameof(Cases))]
    public void GradientShap_with_captums_draws_matches_captum(string model, string image)
    {
        var f = MethodFixtures.Load(model, image);
        var draws = new GradientShapDraws(f.Get("gradientshap.alpha"), f.Get("gradientshap.baseline").Select(v => (int)v).ToArray(),
            f.Get("gradientshap.noise"));
        var method = (GradientShap)MethodCatalog.WithParameters([new GradientShap { Draws = draws }], "samples=6,std=0.5,baselines=zero+blur,sigma=2")[0];
        Assert.That(draws.Baseline, Does.Contain(0).And.Contain(1), "both baselines are drawn");
        var e = MethodFixtures.Explain(model, image, method, batch: 4);
        MethodFixtures.AssertClose(e.Raw.Data, f.Get("gradientshap.raw"), Tol, "gradientshap.raw");
    }

    [Test]
    public void GradientShap_draws_repeatably_from_the_seed()
    {
        var method = MethodCatalog.WithParameters([new GradientShap()], "std=0.2,baselines=zero+mean")[0];
        using var model = DeviceModel.Load(FixtureData.ModelFor("tiny_gapcnn"), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        float[] Raw(int seed, int batch) => new Explainer(model).Explain(input, method, new ExplainOptions { Seed = seed, PerturbationBatch = batch })[0].Raw.Data;
        var a = Raw(1, 32);
        TensorAssert.Close(Raw(1, 2), a, 1e-9, 1e-5, "same seed, other batch");
        Assert.That(Raw(2, 32), Is.Not.EqualTo(a));
    }

    [TestCase("chelsea")]
    [TestCase("coffee")]
    public void Lrp_epsilon_matches_captum_on_a_network_with_biases(string image)
    {
        var f = MethodFixtures.Load("tiny_gapcnn", image);
        var e = MethodFixtures.Explain("tiny_gapcnn", image, MethodCatalog.WithParameters([new Lrp()], "input=epsilon")[0]);
        MethodFixtures.AssertClose(e.Raw.Data, f.Get("lrp.epsilon.raw"), Tol, "lrp.epsilon.raw (tiny_gapcnn)");
    }

    [Test]
    public void Lrp_epsilon_and_alpha_beta_match_captum_without_biases()
    {
        var r = Npz.ReadAll(NoBias("lrp_nobias.npz"));
        var eps = ExplainNoBias(new Lrp { InputRule = LrpInputRule.Epsilon });
        Assert.That(eps.TargetClass, Is.EqualTo((int)r.Arrays["target"].Data[0]));
        MethodFixtures.AssertClose(eps.Raw.Data, r.Arrays["epsilon.raw"].Data, Tol, "lrp_nobias epsilon.raw");
        var ab = ExplainNoBias(new Lrp { Rule = LrpRule.AlphaBeta, InputRule = LrpInputRule.Epsilon });
        MethodFixtures.AssertClose(ab.Raw.Data, r.Arrays["ab.raw"].Data, Tol, "lrp_nobias ab.raw");
    }

    public static IEnumerable<TestCaseData> Rules() =>
    [
        new TestCaseData(new Lrp { InputRule = LrpInputRule.Epsilon }).SetName("epsilon"),
        new TestCaseData(new Lrp()).SetName("epsilon_zplus_input"),
        new TestCaseData(new Lrp { Rule = LrpRule.AlphaBeta }).SetName("alpha1beta0_zplus_input"),
        new TestCaseData(new Lrp { Rule = LrpRule.AlphaBeta, Alpha = 2, InputRule = LrpInputRule.Same }).SetName("alpha2beta1"),
    ];

    [TestCaseSource(nameof(Rules))]
    public void Lrp_conserves_relevance_per_layer_without_biases(Lrp lrp)
    {
        // The bias-free fixture network (max-pool, batch norm, average pool) and tiny_resnet with its biases zeroed
        // (residual adds), on two images each.
        foreach (var image in MethodFixtures.Images)
        {
            using (var m = DeviceModel.Load(OnnxConverter.ConvertFile(NoBias("lrp_nobias.onnx")), TestDevice.Cpu))
                CheckConservation(m, image, lrp, "lrp_nobias");
            using (var m = DeviceModel.Load(FixtureData.ModelFor("tiny_resnet"), TestDevice.Cpu))
            {
                foreach (var node in m.Graph.Nodes)
                {
                    if (node.Param("bias") is { } bias)
                        m.SetParameter(bias, new float[m.Parameter(bias).Length]);
                }
                CheckConservation(m, image, lrp, "tiny_resnet without biases");
            }
        }
    }

    private static void CheckConservation(DeviceModel model, string image, Lrp lrp, string what)
    {
        using var x = model.Backend.Upload(Npy.Read(FixturePaths.Input(image)));
        using var pass = model.Forward(x);
        var y = model.Backend.Download(pass.Output);
        int c = Array.IndexOf(y, y.Max());
        var context = new ExplainContext { Model = model, Forward = pass, Classes = [c], Scores = [y[c]], Layers = [] };
        // Each layer passes on what it receives: the relevance a node sends to its inputs adds up to its output's.
        int nodes = 0;
        var relevance = lrp.Relevances(context, pass, (node, output, inputs) =>
        {
            double received = output.Sum(v => (double)v);
            double sent = inputs.Where(r => r != null).Sum(r => r!.Sum(v => (double)v));
            TestContext.Out.WriteLine($"{what}, {image}: '{node.Name}' ({node.Op}) {received:G6} -> {sent:G6}");
            Assert.That(sent, Is.EqualTo(received).Within(0.01 * Math.Abs(received) + 1e-9), $"{what}, {image}: node '{node.Name}'");
            nodes++;
        });
        Assert.That(nodes, Is.EqualTo(model.Graph.Nodes.Count), "every node passes relevance on");
        double atInput = relevance[model.Graph.InputName].Sum(v => (double)v);
        Assert.That(atInput, Is.EqualTo(y[c]).Within(0.01 * Math.Abs(y[c])), $"{what}, {image}: relevance of the pixels");
    }
}
