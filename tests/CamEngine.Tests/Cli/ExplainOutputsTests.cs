using System.Security.Cryptography;
using System.Text.Json;
using CamEngine.Cli;
using CamEngine.Imaging;
using CamEngine.IO;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>What `cam explain` writes besides the maps: manifest.json, the HTML report, and the overlay options.</summary>
[TestFixture]
public sealed class ExplainOutputsTests : CliTestBase
{
    private static string Device => Environment.GetEnvironmentVariable("CAMENGINE_TEST_DEVICE") ?? "ilgpu-cpu";

    private static string Model => Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_gapcnn.safetensors");

    [Test]
    public void Manifest_records_the_model_hash_and_exactly_the_files_written()
    {
        string outDir = Path.Combine(Dir, "out");
        string report = Path.Combine(outDir, "report");
        var r = Cam("explain", Model, FixturePaths.Input("chelsea"), FixturePaths.Input("rocket"), "--method", "gradcam,layercam",
            "--npy", "--seed", "5", "--out", outDir, "--report", report, "--colormap", "turbo", "--contour", "10",
            "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Err, Is.Empty, "no progress line when stderr is not the console");

        using var json = JsonDocument.Parse(File.ReadAllText(Manifest(outDir)));
        var m = json.RootElement;
        string expectedHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Model)));
        Assert.That(m.GetProperty("model_sha256").GetString(), Is.EqualTo(expectedHash));
        Assert.That(m.GetProperty("model_path").GetString(), Is.EqualTo(Model));
        Assert.That(m.GetProperty("command").GetString(), Is.EqualTo("explain"));
        Assert.That(m.GetProperty("methods").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "gradcam", "layercam" }));
        Assert.That(m.GetProperty("layers").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "/pool3/MaxPool_output_0" }));
        Assert.That(m.GetProperty("target").GetString(), Is.EqualTo("top1"));
        Assert.That(m.GetProperty("convention").GetString(), Is.EqualTo("pytorch-grad-cam"));
        Assert.That(m.GetProperty("fusion").GetString(), Is.EqualTo("mean (convention default)"));
        Assert.That(m.GetProperty("seed").GetInt32(), Is.EqualTo(5));
        Assert.That(m.GetProperty("device").GetString(), Is.EqualTo(Device));
        Assert.That(m.GetProperty("cam_engine_version").GetString(), Is.EqualTo("0.1.0"));
        Assert.That(m.GetProperty("settings").GetProperty("colormap").GetString(), Is.EqualTo("turbo"));
        Assert.That(m.GetProperty("settings").GetProperty("contour").GetString(), Is.EqualTo("10%"));
        var timings = m.GetProperty("timings_ms");
        Assert.That(timings.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "gradcam", "layercam" }));
        Assert.That(timings.EnumerateObject().Select(p => p.Value.GetDouble()), Has.All.GreaterThan(0));
        var created = m.GetProperty("created_utc").GetDateTime();
        Assert.That(created.Kind, Is.EqualTo(DateTimeKind.Utc));
        Assert.That(DateTime.UtcNow - created, Is.LessThan(TimeSpan.FromMinutes(10)));

        // The file list is what is on disk, manifest aside: 2 images x 2 methods x (png, npy, raw.npy), 2 grids,
        // the report.
        var listed = m.GetProperty("files").EnumerateArray().Select(e => e.GetString()!).ToList();
        var onDisk = Directory.GetFiles(outDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(outDir, f).Replace('\\', '/'))
            .Where(f => !IsRunFile(f))
            .ToList();
        Assert.That(listed, Is.EquivalentTo(onDisk));
        Assert.That(listed, Has.Count.EqualTo(2 * 2 * 3 + 2 + 1));
        Assert.That(listed, Does.Contain("report/index.html").And.Contain("chelsea_32_imagenet.layercam.raw.npy"));

        // The report holds the run's facts, and per image the (denormalized) input and the 2 overlays.
        string html = File.ReadAllText(Path.Combine(report, "index.html"));
        Assert.That(html, Does.Contain(expectedHash));
        Assert.That(System.Text.RegularExpressions.Regex.Count(html, "data:image/png;base64,"), Is.EqualTo(6));
        Assert.That(r.Out, Does.Contain("report: " + Path.Combine(report, "index.html")));

        // A second run of the same image into the same folder stops before any work unless --overwrite is given; a
        // run of another image goes in beside it, with its own manifest: both survive.
        var again = Cam("explain", Model, FixturePaths.Input("chelsea"), "--out", outDir, "--device", Device);
        AssertOneLineError(again, "chelsea_32_imagenet.gradcam.png exists; nothing was computed; pass --overwrite");
        var other = Cam("explain", Model, FixturePaths.Input("coffee"), "--out", outDir, "--device", Device);
        Assert.That(other.Code, Is.Zero, other.Err);
        Assert.That(Manifests(outDir), Has.Count.EqualTo(2));
        Assert.That(File.ReadAllText(Manifests(outDir)[0]), Does.Contain("chelsea_32_imagenet.layercam.raw.npy"));
        Assert.That(File.ReadAllText(Manifests(outDir)[1]), Does.Contain("coffee_32_imagenet.gradcam.png").And.Not.Contain("chelsea"));
    }

    [Test]
    public void Colormap_alpha_and_contour_shape_the_written_overlay()
    {
        // Alpha 1 leaves nothing of the (denormalized) input: the PNG is the colormap of the map itself, pixel for
        // pixel round(255 * viridis[floor(v * 256)]).
        var r = Cam("explain", Model, FixturePaths.Input("coffee"), "--colormap", "viridis", "--alpha", "1", "--npy",
            "--out", Dir, "--device", Device, "--quiet");
        Assert.That(r.Code, Is.Zero, r.Err);
        string stem = Path.Combine(Dir, "coffee_32_imagenet.gradcam");
        var map = Npy.Read(stem + ".npy");
        var png = ImageDecoder.Load(stem + ".png");
        Assert.That(png.Data, Has.Length.EqualTo(3 * map.Length));
        var viridis = Colormap.Table(ColormapKind.Viridis);
        for (int i = 0; i < map.Length; i++)
        {
            int k = 3 * Colormap.Index(map.Data[i]);
            for (int c = 0; c < 3; c++)
                Assert.That(png.Data[3 * i + c], Is.EqualTo((byte)MathF.Round(255 * viridis[k + c], MidpointRounding.AwayFromZero)), $"pixel {i}");
        }

        // Alpha 0 leaves only the photo, and the top-10% contour is drawn over it in white.
        string photo = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", "rocket.jpg");
        r = Cam("explain", Model, photo, "--alpha", "0", "--contour", "10", "--view", "crop", "--out", Dir, "--device", Device,
            "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        var overlay = ImageDecoder.Load(Path.Combine(Dir, "rocket.gradcam.png"));
        var display = InputLoader.Load(photo, CamEngine.Model.ModelFile.Load(Model).Graph)[0].Display!;
        Assert.That((overlay.Width, overlay.Height), Is.EqualTo((display.Width, display.Height)));
        int contour = 0;
        for (int y = 0; y < overlay.Height; y++)
        {
            for (int x = 0; x < overlay.Width; x++)
            {
                if (overlay[x, y] == display[x, y])
                    continue;
                Assert.That(overlay[x, y], Is.EqualTo(((byte)255, (byte)255, (byte)255)), $"pixel ({x},{y}) is the photo or the contour");
                contour++;
            }
        }
        // The outline of a region of a tenth of the picture: more than half a side long, far below its area.
        int side = overlay.Width;
        Assert.That(contour, Is.InRange(side / 2, side * side / 10));
    }

    [Test]
    public void Bad_overlay_options_give_one_line_errors()
    {
        string input = FixturePaths.Input("rocket");
        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["--colormap", "rainbow"], "unknown colormap 'rainbow' (use jet, viridis, turbo, inferno)"),
                     (["--alpha", "1.5"], "--alpha must lie in [0, 1], got 1.5"),
                     (["--alpha", "x"], "--alpha must be 1 comma-separated numbers"),
                     (["--contour", "0"], "--contour must lie in (0, 100], got 0"),
                     (["--contour", "120"], "--contour must lie in (0, 100], got 120"),
                 })
        {
            var r = Cam(["explain", Model, input, "--out", Dir, .. args]);
            Assert.That(r.Code, Is.EqualTo(2), string.Join(" ", args));
            Assert.That(r.Err, Does.Contain(message));
            Assert.That(r.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        }
        Assert.That(Directory.GetFiles(Dir), Is.Empty);
        var help = Cam("explain", "--help");
        Assert.That(help.Out, Does.Contain("--colormap <NAME>").And.Contain("--contour <PCT>").And.Contain("--report <DIR>")
            .And.Contain("--quiet").And.Contain("--alpha <A>"));
    }
}
