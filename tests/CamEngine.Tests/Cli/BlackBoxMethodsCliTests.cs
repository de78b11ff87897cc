using System.Globalization;
using CamEngine.IO;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>The issue-20 methods through the command line: `cam eval` scores their maps, `cam explain --npy` writes
/// their maps and raw attributions.</summary>
[TestFixture]
public sealed class BlackBoxMethodsCliTests : CliTestBase
{
    private const string Methods = "fem,randomcam,occlusion,rise,reciprocam,dff,deeplift,gradientshap,lrp";

    // RISE is left out here: `cam eval` has no --param, and its default 4000 masks would make this test slow; its maps
    // go through the same metric code as every other method's.
    [Test]
    public void Eval_runs_the_metrics_on_every_new_method()
    {
        string csv = Path.Combine(Dir, "m.csv");
        string methods = Methods.Replace("rise,", "", StringComparison.Ordinal);
        var r = Cam("eval", Bundled("tiny_resnet.safetensors"), Bundled("images", "chelsea.png"), "--method", methods,
            "--metric", "avgdrop,deletion,insertion", "--steps", "8", "--device", "cpu", "--csv", csv);
        Assert.That(r.Code, Is.Zero, r.Err);
        var lines = File.ReadAllLines(csv);
        Assert.That(lines[0], Is.EqualTo("method,avgdrop,increase,deletion,insertion"));
        Assert.That(lines.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(methods.Split(',')));
        foreach (var line in lines.Skip(1))
        {
            foreach (var cell in line.Split(',').Skip(1))
                Assert.That(double.IsFinite(double.Parse(cell, CultureInfo.InvariantCulture)), Is.True, line);
        }
    }

    [Test]
    public void Explain_writes_maps_and_raw_attributions_of_the_shapes_the_issue_names()
    {
        var r = Cam("explain", Bundled("tiny_resnet.safetensors"), Bundled("images", "chelsea.png"), "--method", Methods,
            "--param", "rise.masks=200,dff.concepts=3", "--npy", "--out", Dir, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        foreach (var m in Methods.Split(','))
        {
            var map = Npy.Read(Path.Combine(Dir, $"chelsea.{m}.npy"));
            Assert.That(map.Shape, Is.EqualTo(new[] { 32, 32 }), m);
            Assert.That(map.Data.All(v => v is >= 0f and <= 1f), m);
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{m}.png")), m);
        }
        Assert.That(Npy.Read(Path.Combine(Dir, "chelsea.occlusion.raw.npy")).Shape, Is.EqualTo(new[] { 32, 32 }));
        Assert.That(Npy.Read(Path.Combine(Dir, "chelsea.rise.raw.npy")).Shape, Is.EqualTo(new[] { 32, 32 }));
        Assert.That(Npy.Read(Path.Combine(Dir, "chelsea.lrp.raw.npy")).Shape, Is.EqualTo(new[] { 3, 32, 32 }));
        Assert.That(Npy.Read(Path.Combine(Dir, "chelsea.dff.raw.npy")).Shape[0], Is.EqualTo(3));
        Assert.That(File.Exists(Path.Combine(Dir, "chelsea.grid.png")));
    }
}
