using CamEngine.Cli;
using CamEngine.Reporting;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>`cam explain --memory-budget`: parsing, the refusal of a budget too small for one image, and the manifest's
/// per-method breakdown (consistent with itself and with the re-runs each method must make).</summary>
[TestFixture]
public sealed class MemoryBudgetCliTests : CliTestBase
{
    private static string Model => Bundled("tiny_resnet.safetensors");

    [TestCase("1.5G", 1610612736L)]
    [TestCase("800M", 838860800L)]
    [TestCase("512MiB", 536870912L)]
    [TestCase("64k", 65536L)]
    [TestCase("2000000", 2000000L)]
    [TestCase(" 1GB ", 1073741824L)]
    public void Sizes_parse_in_powers_of_1024(string text, long bytes) =>
        Assert.That(CliOptions.ParseBytes(text), Is.EqualTo(bytes));

    [TestCase("0")]
    [TestCase("-1G")]
    [TestCase("1.5X")]
    [TestCase("G")]
    [TestCase("0.1")]
    [TestCase("1e9")]
    public void Bad_sizes_are_usage_errors(string text)
    {
        Assert.That(CliOptions.ParseBytes(text), Is.Null);
        var r = Cam("explain", Model, FixturePaths.Input("chelsea"), "--method", "gradcam", "--out", Path.Combine(Dir, "o"),
            "--memory-budget=" + text);
        Assert.That(r.Code, Is.EqualTo(2), r.Err);
        Assert.That(r.Err, Does.StartWith("cam explain: --memory-budget must be a positive size such as 1.5G, 800M or 2000000"));
    }

    [Test]
    public void A_budget_too_small_for_one_image_stops_the_run_with_both_numbers()
    {
        var r = Cam("explain", Model, FixturePaths.Input("chelsea"), "--method", "scorecam", "--out", Path.Combine(Dir, "o"),
            "--memory-budget", "700K", "--device", "cpu");
        // One image's activations (556 KiB) fit; with the reverse pass, the masks and a re-run row they do not.
        AssertOneLineError(r, "out of memory before starting: explaining one image needs ");
        Assert.That(r.Err, Does.Contain("KiB of Score-CAM masks").And.Contain("more than the memory budget of 716800 bytes (700.0 KiB)"));
        string o = Path.Combine(Dir, "o");
        Assert.That(Directory.Exists(o) ? Directory.GetFiles(o, "*.png") : [], Is.Empty);
    }

    [Test]
    public void The_manifest_breaks_the_time_down_per_method()
    {
        string outDir = Path.Combine(Dir, "o");
        // tiny_resnet's default layer is 16 x 16 x 16: SS-CAM re-runs 2 x 16 noisy masks (never all zero), Recipro-CAM
        // 256 positions from the layer, SmoothGrad 3 noisy copies through forward and reverse passes.
        var r = Cam("explain", Model, FixturePaths.Input("chelsea"), FixturePaths.Input("coffee"), "--method",
            "gradcam,sscam,reciprocam,smoothgrad", "--param", "samples=2,smoothgrad.samples=3,score=target", "--out", outDir,
            "--memory-budget", "200M", "--perturbation-batch", "8", "--device", "cpu", "--batch", "1");
        Assert.That(r.Code, Is.Zero, r.Err);
        var m = RunManifest.Read(Manifest(outDir));
        var b = m.Breakdown!;
        Assert.That(b.MemoryBudgetBytes, Is.EqualTo(200L << 20));
        Assert.That(m.Settings["memory_budget"], Is.EqualTo((200L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var by = b.Methods.ToDictionary(x => x.Method);
        Assert.That(by.Keys, Is.EquivalentTo(new[] { "(shared forward)", "gradcam", "sscam", "reciprocam", "smoothgrad" }));
        // Two images, one batch each: the rows add up over the run.
        Assert.That(by["(shared forward)"].Passes, Is.EqualTo(2));
        Assert.That(by["sscam"].PassesByKind["forward"], Is.EqualTo(2 * 2 * 16));
        Assert.That(by["reciprocam"].PassesByKind["forward-from-layer"], Is.EqualTo(2 * 256));
        Assert.That(by["smoothgrad"].PassesByKind["forward+backward"], Is.EqualTo(2 * 3));
        Assert.That(by["smoothgrad"].BatchSizes, Is.EqualTo(new[] { 2, 1 })); // under a full batch: power-of-two pieces
        Assert.That(by["gradcam"].Passes, Is.Zero);
        Assert.That(by["gradcam"].IdealMs, Is.Zero);
        foreach (var x in b.Methods)
        {
            Assert.That(x.Passes, Is.EqualTo(x.PassesByKind.Values.Sum()), x.Method);
            Assert.That(x.BatchSizes.All(s => s <= 8), x.Method);
            Assert.That(x.IdealMs, Is.EqualTo(x.PassesByKind.Sum(p => p.Value * b.BestPerImageMs[p.Key])).Within(1e-6), x.Method);
            Assert.That(x.WallMs, Is.GreaterThanOrEqualTo(x.PassMs - 1e-6), x.Method);
            if (x.Method != "(shared forward)")
                Assert.That(m.TimingsMs[x.Method], Is.EqualTo(x.WallMs).Within(1e-6), x.Method);
        }
        Assert.That(b.PlannedBatch["forward"], Is.EqualTo(8));
        Assert.That(b.WallMs, Is.EqualTo(b.Methods.Sum(x => x.WallMs)).Within(1e-6));
        Assert.That(b.IdealMs, Is.EqualTo(b.Methods.Sum(x => x.IdealMs)).Within(1e-6));
        Assert.That(b.Ratio, Is.EqualTo(b.WallMs / b.IdealMs).Within(1e-9));
        Assert.That(b.Ratio, Is.GreaterThanOrEqualTo(1), "no method is faster than its passes at the best speed");
    }
}
