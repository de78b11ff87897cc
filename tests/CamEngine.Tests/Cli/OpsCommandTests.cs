using CamEngine.Cli;
using CamEngine.Graph.Ops;
using CamEngine.Onnx;
using CamEngine.Tests.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary><c>cam ops</c>: the README's operator list is its output, and it, the engine's operator registry and the
/// converter's supported-operator list (the one its "unsupported ONNX operator" error prints) agree.</summary>
[TestFixture]
public sealed class OpsCommandTests : CliTestBase
{
    private static string Readme()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "the repository root (Engine.sln) is above the test folder");
        return File.ReadAllText(Path.Combine(dir!.FullName, "README.md")).ReplaceLineEndings("\n");
    }

    [Test]
    public void The_README_operator_list_is_the_output_of_cam_ops()
    {
        var r = Cam("ops");
        Assert.That(r.Code, Is.Zero, r.Err);
        string readme = Readme();
        const string begin = "<!-- cam ops: begin -->\n", end = "<!-- cam ops: end -->";
        int a = readme.IndexOf(begin, StringComparison.Ordinal), b = readme.IndexOf(end, StringComparison.Ordinal);
        Assert.That(a >= 0 && b > a, Is.True, "README.md has the cam ops markers");
        Assert.That(readme[(a + begin.Length)..b], Is.EqualTo(r.Out.ReplaceLineEndings("\n")),
            "README.md's operator list is not `cam ops`'s output: paste it between the markers");
    }

    [Test]
    public void Cam_ops_the_registry_and_the_converter_agree()
    {
        // Every registry operator has exactly one line, and only registry operators do.
        Assert.That(OpsCommand.Sources.Select(s => s.Op), Is.EquivalentTo(OpRegistry.Names));
        var rows = Cam("ops").Out.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();
        Assert.That(rows, Has.Count.EqualTo(OpRegistry.Names.Count));
        foreach (var rule in OpRegistry.All)
            Assert.That(rows, Has.One.StartsWith($"| `{rule.Name}` |").And.Contains(rule.HasJets ? "| yes |" : "| no |"), rule.Name);

        // The ONNX operators cam ops names are exactly those the converter takes.
        var listed = OpsCommand.Sources.SelectMany(s => s.Onnx).Concat(OpsCommand.NoOp.SelectMany(n => n.Onnx)).ToHashSet(StringComparer.Ordinal);
        var converter = OnnxGraphBuilder.SupportedOperators.Concat(OnnxGraphBuilder.FoldedOperators).ToHashSet(StringComparer.Ordinal);
        Assert.That(listed.Except(converter), Is.Empty, "cam ops names ONNX operators the converter refuses");
        Assert.That(converter.Except(listed), Is.Empty, "the converter takes ONNX operators cam ops does not list");
    }

    [Test]
    public void The_converter_error_prints_the_same_supported_list()
    {
        // An ONNX operator the converter does not take: its one-line error lists SupportedOperators in order.
        var e = Assert.Throws<UnsupportedModelException>(() => OnnxConverter.Convert(OnnxWithOperator("Celu")))!;
        Assert.That(e.Message, Does.Contain("unsupported ONNX operator 'Celu'"));
        Assert.That(e.Message, Does.Contain("supported: " + string.Join(", ", OnnxGraphBuilder.SupportedOperators)));
        Assert.That(e.Message, Does.Contain(string.Join("/", OnnxGraphBuilder.FoldedOperators)));
    }

    private static byte[] OnnxWithOperator(string op) => OnnxBuild.Model(
        [OnnxBuild.Node("Relu", "r", ["x"], ["a"]), OnnxBuild.Node(op, "odd", ["a"], ["y"])],
        [], OnnxBuild.ValueInfo("x", 1, 3, 4, 4), OnnxBuild.ValueInfo("y"));
}
