using CamEngine.Methods;
using NUnit.Framework;

namespace CamEngine.Tests.Api;

/// <summary>Names as users type them: pytorch-grad-cam and TorchCAM class names, labels, and suggestions.</summary>
[TestFixture]
public sealed class CamNamesTests
{
    [TestCase("GradCAM", "gradcam")]
    [TestCase("GradCAMPlusPlus", "gradcampp")]
    [TestCase("GradCAMpp", "gradcampp")]
    [TestCase("XGradCAM", "xgradcam")]
    [TestCase("HiResCAM", "hirescam")]
    [TestCase("ScoreCAM", "scorecam")]
    [TestCase("AblationCAM", "ablationcam")]
    [TestCase("EigenCAM", "eigencam")]
    [TestCase("EigenGradCAM", "eigengradcam")]
    [TestCase("LayerCAM", "layercam")]
    [TestCase("FullGrad", "fullgrad")]
    [TestCase("GradCAMElementWise", "gradcam-elementwise")]
    [TestCase("KPCA_CAM", "kpcacam")]
    [TestCase("ShapleyCAM", "shapleycam")]
    [TestCase("FinerCAM", "finercam")]
    [TestCase("SSCAM", "sscam")]
    [TestCase("ISCAM", "iscam")]
    [TestCase("SmoothGradCAMpp", "smoothgradcampp")]
    [TestCase("CAM", "cam")]
    [TestCase("guided_backprop", "guided-backprop")]
    [TestCase("  gradcam ", "gradcam")]
    public void Class_names_of_pytorch_grad_cam_and_torchcam_resolve(string alias, string name) =>
        Assert.That(CamNames.ResolveMethod(alias).Name, Is.EqualTo(name));

    [Test]
    public void Method_lists_drop_duplicates_and_all_is_every_method()
    {
        Assert.That(CamNames.ResolveMethods("GradCAM,gradcam,LayerCAM").Select(m => m.Name), Is.EqualTo(new[] { "gradcam", "layercam" }));
        Assert.That(CamNames.ResolveMethods("ALL"), Is.EqualTo(MethodCatalog.All));
        Assert.That(() => CamNames.ResolveMethods(" , "), Throws.TypeOf<CamEngineException>());
    }

    [Test]
    public void Unknown_names_get_the_nearest_real_one_or_the_list()
    {
        Assert.That(() => CamNames.ResolveMethod("gradcma"), Throws.TypeOf<CamEngineException>().With.Message.Contains("did you mean 'gradcam'?"));
        Assert.That(() => CamNames.ResolveMethod("GradCAMPlusPluss"), Throws.TypeOf<CamEngineException>().With.Message.Contains("did you mean 'gradcampp'?"));
        Assert.That(() => CamNames.ResolveMethod("quantum"), Throws.TypeOf<CamEngineException>().With.Message.Contains("implemented: cam, gradcam"));
        Assert.That(CamNames.Suggest("explian", ["convert", "explain", "eval"]), Is.EqualTo("explain"));
        Assert.That(CamNames.Suggest("zzzzzz", ["convert", "explain", "eval"]), Is.Null);
    }

    [Test]
    public void Labels_resolve_ignoring_case_and_ambiguity_lists_the_matches()
    {
        string[] labels = ["T-shirt/top", "Trouser", "Sneaker", "bag", "Bag"];
        Assert.That(CamNames.ResolveLabel("sneaker", labels), Is.EqualTo(2));
        Assert.That(CamNames.ResolveLabel(" TROUSER ", labels), Is.EqualTo(1));
        Assert.That(() => CamNames.ResolveLabel("BAG", labels),
            Throws.TypeOf<CamEngineException>().With.Message.EqualTo("label 'BAG' is ambiguous: it matches 3 (bag), 4 (Bag); give the class index"));
        Assert.That(() => CamNames.ResolveLabel("Trousers", labels), Throws.TypeOf<CamEngineException>().With.Message.Contains("did you mean 'Trouser'?"));
    }

    [Test]
    public void A_model_parses_targets_by_label_and_checks_class_indices()
    {
        string path = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "fashion_gapcnn.safetensors");
        using var model = CamModel.Load(path, new CamModelOptions { Device = "cpu" });
        Assert.That(model.ParseTarget("Sneaker").ToString(), Is.EqualTo(Target.Class(7).ToString()));
        Assert.That(model.ParseTarget("sneaker,3").PerImageCount, Is.EqualTo(2));
        Assert.That(model.ParseTarget("top3").TopCount, Is.EqualTo(3));
        Assert.That(() => model.ParseTarget("12"), Throws.TypeOf<CamEngineException>().With.Message.Contains("outside the model's 10 outputs"));
        Assert.That(model.IsEmbedding, Is.False);
        Assert.That(model.ResolveLayers([]), Is.EqualTo(new[] { model.SuggestedLayers[0] }));
    }
}
