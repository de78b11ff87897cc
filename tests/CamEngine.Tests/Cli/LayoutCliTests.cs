using CamEngine.IO;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary><c>cam explain --layout</c>: the decision printed with the layer and recorded in the manifest, the raw map
/// as pytorch-grad-cam's reshape_transform gives it, and a layout that does not fit refused in one line.</summary>
[TestFixture]
public sealed class LayoutCliTests : CliTestBase
{
    private string TokenModel()
    {
        string model = Path.Combine(Dir, "tokens.safetensors");
        var r = Cam("convert", Path.Combine(FixturePaths.Root, "layouts", "tokens.onnx"), "-o", model);
        Assert.That(r.Code, Is.Zero, r.Err);
        return model;
    }

    private string Input()
    {
        var refs = Npz.Read(Path.Combine(FixturePaths.Root, "layouts", "layouts.npz"));
        var x = refs["tokens_input"];
        string path = Path.Combine(Dir, "x.npy");
        Npy.Write(path, new HostTensor(x.Shape[1..], x.Data));
        return path;
    }

    [Test]
    public void Auto_layout_is_printed_with_the_layer_recorded_in_the_manifest_and_gives_the_reference_map()
    {
        string model = TokenModel(), input = Input(), outDir = Path.Combine(Dir, "out");
        var r = Cam("explain", model, input, "--layer", "act", "--out", outDir, "--npy", "--device", "cpu", "--quiet");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("layer: /act/Relu_output_0 (tokens:0 as (C, h, w) = (32, 8, 8); auto: tokens, from the transpose of a flattened grid to tokens '/Transpose')"));
        string manifest = File.ReadAllText(Manifest(outDir));
        Assert.That(manifest, Does.Contain("\"layout\": \"auto\"").Or.Contain("\"layout\":\"auto\""));
        Assert.That(manifest, Does.Contain("/act/Relu_output_0: tokens:0 as (C, h, w) = (32, 8, 8)"));
        var raw = Npy.Read(Path.Combine(outDir, "x.gradcam.raw.npy"));
        var expected = Npz.Read(Path.Combine(FixturePaths.Root, "layouts", "layouts.npz"))["tokens_gradcam"];
        Assert.That(raw.Shape, Is.EqualTo(new[] { 8, 8 }));
        TensorAssert.Close(raw.Data, expected.Data, 1e-3 * expected.Data.Max(v => Math.Abs(v)), 1e-3, "Grad-CAM raw map at the token layer");
    }

    [Test]
    public void A_layout_that_does_not_fit_or_does_not_parse_is_one_line()
    {
        string model = TokenModel(), input = Input();
        AssertOneLineError(Cam("explain", model, input, "--layer", "act", "--layout", "tokens:1", "--out", Dir, "--device", "cpu"),
            "layer '/act/Relu_output_0' has 64 tokens; tokens:1 leaves 63, which is not a square grid (h*h); tokens:0 would leave 64 (8x8)");
        AssertOneLineError(Cam("explain", model, input, "--layer", "act", "--layout", "nhwc", "--out", Dir, "--device", "cpu"),
            "layout nhwc needs a rank-3 (h, w, C) tensor");
        AssertOneLineError(Cam("explain", model, input, "--layout", "rows", "--out", Dir, "--device", "cpu"),
            "unknown layout 'rows'; valid: auto, nchw, nhwc, tokens, tokens:K");
        Assert.That(Directory.GetFiles(Dir, "*.png"), Is.Empty, "nothing is written");
    }
}
