using System.Reflection;
using NUnit.Framework;

namespace CamEngine.Tests.Api;

/// <summary>
/// The public API of the packed assemblies, listed in approved files (tests/CamEngine.Tests/Api/*.approved.txt) so it
/// changes only on purpose. After an intended change, run the tests once with CAMENGINE_APPROVE_API=1 to rewrite
/// the files, and review their diff; a failing run leaves NAME.received.txt beside the approved file.
/// </summary>
[TestFixture]
public sealed class PublicApiTests
{
    private static string ApiFolder()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            dir = dir.Parent;
        return dir == null
            ? throw new InvalidOperationException("the repository root (Engine.sln) is not above the test folder")
            : Path.Combine(dir.FullName, "tests", "CamEngine.Tests", "Api");
    }

    [TestCase("CamEngine")]
    [TestCase("CamEngine.Kernels")]
    public void The_public_API_matches_the_approved_listing(string assemblyName)
    {
        string actual = PublicApi.Describe(Assembly.Load(assemblyName));
        string approved = Path.Combine(ApiFolder(), assemblyName + ".approved.txt");
        string received = Path.ChangeExtension(approved, null).Replace(".approved", ".received", StringComparison.Ordinal) + ".txt";
        if (Environment.GetEnvironmentVariable("CAMENGINE_APPROVE_API") == "1")
        {
            File.WriteAllText(approved, actual);
            File.Delete(received);
            Assert.Pass($"wrote {approved}");
        }
        string expected = File.Exists(approved) ? File.ReadAllText(approved).ReplaceLineEndings("\n") : "";
        if (actual == expected)
        {
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        var want = expected.Split('\n').ToHashSet();
        var have = actual.Split('\n').ToHashSet();
        var added = actual.Split('\n').Where(l => !want.Contains(l)).Take(20);
        var removed = expected.Split('\n').Where(l => !have.Contains(l)).Take(20);
        Assert.Fail($"""
            the public API of {assemblyName} differs from {approved} (full listing in {received}).
            added:
            {string.Join("\n", added)}
            removed:
            {string.Join("\n", removed)}
            If the change is intended, rerun with CAMENGINE_APPROVE_API=1 and commit the approved file.
            """);
    }
}
