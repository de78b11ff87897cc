using CamEngine.Cli;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>
/// What the `cam` command-line tests share: a fresh temporary folder per test (<see cref="Dir"/>, deleted after it),
/// the command run in process with its output captured, and the one-line error check.
/// </summary>
public abstract class CliTestBase
{
    /// <summary>The test's own temporary folder.</summary>
    protected string Dir { get; private set; } = "";

    [SetUp]
    public void CreateFolder()
    {
        Dir = Path.Combine(Path.GetTempPath(), "cam-" + GetType().Name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(Dir, recursive: true);

    /// <summary>Runs `cam ARGS` in process: exit code, stdout, stderr.</summary>
    protected static (int Code, string Out, string Err) Cam(params string[] args)
    {
        using var o = new StringWriter();
        using var e = new StringWriter();
        int code = Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>Exit code 2 and exactly one line on stderr that contains <paramref name="contains"/>.</summary>
    protected static void AssertOneLineError((int Code, string Out, string Err) r, string contains)
    {
        Assert.That(r.Code, Is.EqualTo(2), r.Err);
        Assert.That(r.Err.TrimEnd('\n', '\r').Split('\n'), Has.Length.EqualTo(1), r.Err);
        Assert.That(r.Err, Does.Contain(contains));
    }

    /// <summary>The manifests of the runs into <paramref name="outDir"/> (manifest.RUN.json), oldest first.</summary>
    protected static List<string> Manifests(string outDir) =>
        Directory.GetFiles(outDir, "manifest.*.json").OrderBy(File.GetLastWriteTimeUtc).ThenBy(f => f, StringComparer.Ordinal).ToList();

    /// <summary>The newest run's manifest in <paramref name="outDir"/>.</summary>
    protected static string Manifest(string outDir) => Manifests(outDir)[^1];

    /// <summary>Files every run keeps in its output folder besides its outputs: manifests, results.csv and its lock.</summary>
    protected static bool IsRunFile(string relative) =>
        relative == "results.csv" || relative == ".results.csv.lock"
        || (relative.StartsWith("manifest.", StringComparison.Ordinal) && relative.EndsWith(".json", StringComparison.Ordinal) && !relative.Contains('/', StringComparison.Ordinal));

    /// <summary>A file of the repository's models/ folder as the test project copies it (bundled/...).</summary>
    protected static string Bundled(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "bundled", .. parts]);
}
