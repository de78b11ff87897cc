using System.Text.Json;
using CamEngine.Reporting;
using NUnit.Framework;

namespace CamEngine.Tests.Reporting;

[TestFixture]
public sealed class RunManifestTests
{
    [Test]
    public void Manifest_round_trips_as_snake_case_json()
    {
        string dir = Path.Combine(Path.GetTempPath(), "cam-manifest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string model = Path.Combine(dir, "abc.bin");
            File.WriteAllText(model, "abc");
            var manifest = new RunManifest
            {
                Command = "explain", ModelPath = model, ModelSha256 = RunManifest.Sha256Of(model),
                Methods = ["gradcam", "layercam"], Seed = 7,
                TimingsMs = new Dictionary<string, double> { ["gradcam"] = 12.5, ["layercam"] = 3 },
                Files = ["a.png", "report/index.html"], CreatedUtc = new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc),
            };
            // SHA-256("abc") from FIPS 180-2, appendix B.1.
            Assert.That(manifest.ModelSha256, Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
            string path = Path.Combine(dir, RunManifest.FileName);
            manifest.Write(path);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            Assert.That(root.GetProperty("model_sha256").GetString(), Is.EqualTo(manifest.ModelSha256));
            Assert.That(root.GetProperty("timings_ms").GetProperty("gradcam").GetDouble(), Is.EqualTo(12.5));
            Assert.That(root.GetProperty("created_utc").GetString(), Is.EqualTo("2025-01-02T03:04:05Z"));
            Assert.That(root.GetProperty("ilgpu_version").GetString(), Does.Match(@"^\d+\.\d+\.\d+"));
            Assert.That(root.GetProperty("dotnet_version").GetString(), Does.StartWith(".NET"));
            Assert.That(File.ReadAllText(path), Does.Contain("\n  \"command\": \"explain\""), "indented");
            var back = RunManifest.Read(path);
            Assert.That(back.Methods, Is.EqualTo(manifest.Methods));
            Assert.That(back.Files, Is.EqualTo(manifest.Files));
            Assert.That(back.Seed, Is.EqualTo(7));
            Assert.That(back.TimingsMs["layercam"], Is.EqualTo(3));
            Assert.That(manifest.ToInfo()[1], Is.EqualTo(("model SHA-256", manifest.ModelSha256)));

            File.WriteAllText(path, "[1, 2");
            Assert.That(() => RunManifest.Read(path), Throws.TypeOf<CamEngineException>().With.Message.Contains("not a CamEngine manifest"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
