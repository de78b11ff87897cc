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

    /// <summary>A file of the repository's models/ folder as the test project copies it (bundled/...).</summary>
    protected static string Bundled(params string[] parts) =>
        Path.Combine([TestContext.CurrentContext.TestDirectory, "bundled", .. parts]);
}
