using System.Reflection;
using CamEngine.Imaging;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Api;

/// <summary>The API sample (tools/Sample) run in process on the bundled tiny model: it must write the overlay PNG.
/// The package tests run the same Program.cs against the packed NuGet package.</summary>
[TestFixture]
public sealed class SampleTests
{
    [Test]
    public void The_sample_explains_the_bundled_photo_and_writes_an_overlay_of_the_whole_photo()
    {
        string bundled = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled");
        string model = Path.Combine(bundled, "tiny_resnet.safetensors");
        string photo = Path.Combine(bundled, "images", "chelsea.png");
        string png = Path.Combine(Path.GetTempPath(), $"camengine-sample-{Guid.NewGuid():N}.png");
        var entry = Assembly.Load("CamEngine.Sample").EntryPoint!;
        var stdout = Console.Out;
        using var captured = new StringWriter();
        string? previousDevice = Environment.GetEnvironmentVariable(CamEngine.Backends.Devices.EnvironmentVariable);
        try
        {
            Console.SetOut(captured);
            Environment.SetEnvironmentVariable(CamEngine.Backends.Devices.EnvironmentVariable, "cpu");
            entry.Invoke(null, [new[] { model, photo, png }]);
        }
        finally
        {
            Console.SetOut(stdout);
            Environment.SetEnvironmentVariable(CamEngine.Backends.Devices.EnvironmentVariable, previousDevice);
        }
        try
        {
            var picture = ImageDecoder.Load(png);
            // The default view: the whole 451x300 photo, the model's crop outlined.
            Assert.That((picture.Width, picture.Height), Is.EqualTo((451, 300)));
            Assert.That(captured.ToString(), Does.Contain("class ").And.Contain("device cpu").And.Contain($"wrote {png}"));
        }
        finally
        {
            File.Delete(png);
        }
    }
}
