using System.Diagnostics;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>docs/slurm-array.sh and docs/k8s-indexed-job.yaml run as written (with this build's cam) and their shards
/// together write exactly what one unsharded run writes.</summary>
[TestFixture]
public sealed class ClusterDocsTests : CliTestBase
{
    private static string Docs(string name)
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "the repository root (Engine.sln) above the test folder");
        return Path.Combine(dir!.FullName, "docs", name);
    }

    private static string CamBinary => Path.Combine(TestContext.CurrentContext.TestDirectory, OperatingSystem.IsWindows() ? "cam.exe" : "cam");

    private static (int Code, string Output) Run(string file, IEnumerable<string> args, IDictionary<string, string> env)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            start.Environment[k] = v;
        using var p = Process.Start(start)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private string Images()
    {
        string images = Path.Combine(Dir, "images");
        Directory.CreateDirectory(Path.Combine(images, "more"));
        foreach (var (name, i) in new[] { "astronaut.jpg", "chelsea.png", "coffee.png", "rocket.jpg" }.Select((n, i) => (n, i)))
            File.Copy(Bundled("images", name), Path.Combine(images, i % 2 == 0 ? "" : "more", name));
        return images;
    }

    private static Dictionary<string, byte[]> Maps(string dir) =>
        Directory.GetFiles(dir, "*.png", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes, StringComparer.Ordinal);

    [Test]
    public void The_slurm_array_script_runs_each_task_on_its_shard()
    {
        if (OperatingSystem.IsWindows())
            Assert.Ignore("the Slurm script is bash");
        string images = Images(), model = Bundled("tiny_resnet.safetensors");
        string shared = Path.Combine(Dir, "maps");
        foreach (int task in new[] { 1, 2, 3 })
        {
            var env = new Dictionary<string, string>
            {
                ["SLURM_ARRAY_TASK_ID"] = task.ToString(System.Globalization.CultureInfo.InvariantCulture), ["SLURM_ARRAY_TASK_COUNT"] = "3",
                ["SLURM_ARRAY_TASK_MIN"] = "1", ["CAM"] = CamBinary, ["CAM_METHOD"] = "gradcam,layercam",
            };
            var r = Run("bash", [Docs("slurm-array.sh"), model, images, shared, "--device", "cpu"], env);
            Assert.That(r.Code, Is.Zero, r.Output);
        }
        string whole = Path.Combine(Dir, "whole");
        Assert.That(Cam("explain", model, images, "--recursive", "--method", "gradcam,layercam", "--out", whole, "--device", "cpu").Code, Is.Zero);
        Assert.That(Maps(shared), Is.EqualTo(Maps(whole)));
        Assert.That(Manifests(shared), Has.Count.EqualTo(3));
        Assert.That(File.ReadAllLines(Path.Combine(shared, "results.csv")), Has.Length.EqualTo(1 + 4 * 2));
    }

    [Test]
    public void The_indexed_job_runs_each_pod_on_its_shard()
    {
        string yaml = File.ReadAllText(Docs("k8s-indexed-job.yaml"));
        var lines = yaml.Split('\n');
        int completions = int.Parse(lines.Single(l => l.Trim().StartsWith("completions:", StringComparison.Ordinal)).Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(yaml, Does.Contain("completionMode: Indexed"));
        int countLine = Array.FindIndex(lines, l => l.Contains("name: CAM_SHARD_COUNT", StringComparison.Ordinal));
        Assert.That(lines[countLine + 1].Trim(), Is.EqualTo($"value: \"{completions}\""), "CAM_SHARD_COUNT must equal completions");
        // The container's arguments, as written, with the volume's paths mapped to this test's folder.
        int from = Array.FindIndex(lines, l => l.Trim() == "args:"), to = Array.FindIndex(lines, from, l => l.Trim() == "env:");
        string data = Path.Combine(Dir, "data");
        Directory.CreateDirectory(data);
        File.Copy(Bundled("tiny_resnet.safetensors"), Path.Combine(data, "model.safetensors"));
        Directory.Move(Images(), Path.Combine(data, "images"));
        var args = lines[(from + 1)..to].Select(l => l.Trim()[2..].Replace("/data", data, StringComparison.Ordinal)).Append("--device").Append("cpu").ToList();
        Assert.That(args[0], Is.EqualTo("explain"));
        // In process (the tests run one at a time, so the variables can be set and restored): each pod is one run.
        for (int index = 0; index < completions; index++)
        {
            Environment.SetEnvironmentVariable("JOB_COMPLETION_INDEX", index.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Environment.SetEnvironmentVariable("CAM_SHARD_COUNT", completions.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                var r = Cam([.. args]);
                Assert.That(r.Code, Is.Zero, r.Err);
            }
            finally
            {
                Environment.SetEnvironmentVariable("JOB_COMPLETION_INDEX", null);
                Environment.SetEnvironmentVariable("CAM_SHARD_COUNT", null);
            }
        }
        string whole = Path.Combine(Dir, "whole");
        Assert.That(Cam("explain", Path.Combine(data, "model.safetensors"), Path.Combine(data, "images"), "--recursive", "--method", "gradcam", "--out", whole, "--device", "cpu").Code, Is.Zero);
        Assert.That(Maps(Path.Combine(data, "maps")), Is.EqualTo(Maps(whole)));
        // 8 pods for 4 images: half the shards are empty, and say so in their manifests.
        Assert.That(Manifests(Path.Combine(data, "maps")), Has.Count.EqualTo(completions));
    }
}
