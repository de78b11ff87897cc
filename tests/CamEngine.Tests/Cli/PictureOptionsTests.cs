using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Tensors;
using CamEngine.Tests.Imaging;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>`cam explain` pictures from the command line: EXIF orientation, --sign for pixel-space maps, the
/// class-model image of a Caffe-style model, and grids that say which tiles coincide.</summary>
public sealed class PictureOptionsTests : CliTestBase
{
    private static string Device => Environment.GetEnvironmentVariable("CAMENGINE_TEST_DEVICE") ?? "cpu";

    private string TinyModelFile(ModelGraph? graph = null, Dictionary<string, HostTensor>? weights = null)
    {
        string path = Path.Combine(Dir, "tiny.safetensors");
        using var stream = File.Create(path);
        new ModelFile(graph ?? TinyModel.Graph(), weights ?? TinyModel.Weights()).Save(stream);
        return path;
    }

    private string RandomInput(string name = "x")
    {
        string input = Path.Combine(Dir, name + ".npy");
        Npy.Write(input, new HostTensor([1, 3, 8, 8], TensorAssert.Random(new Random(3), 192)));
        return input;
    }

    [Test]
    public void A_jpeg_rotated_by_exif_is_explained_and_drawn_upright()
    {
        string photo = Path.Combine(Dir, "turned.jpg");
        File.WriteAllBytes(photo, ExifOrientationTests.WithSegment(
            ExifOrientationTests.BaseJpeg(), ExifOrientationTests.ExifSegment(6, littleEndian: false)));
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");
        var r = Cam("explain", model, photo, "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        // Stored 24x16, orientation 6 (rotate 90 clockwise): the whole-photo picture is 16x24.
        var png = ImageDecoder.Load(Path.Combine(Dir, "turned.gradcam.png"));
        Assert.That((png.Width, png.Height), Is.EqualTo((16, 24)));
    }

    [Test]
    public void Sign_modes_draw_pixel_space_maps_as_captum_does()
    {
        string model = TinyModelFile();
        string input = RandomInput();
        // Alpha 1: the picture is the colour table itself, entry floor(256 * v) (v in [0, 1]) or floor(256 * (v + 1) / 2).
        var r = Cam("explain", model, input, "--method", "integrated-gradients,saliency", "--alpha", "1", "--npy",
            "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        void Check(string method, AttributionSign sign)
        {
            var raw = Npy.Read(Path.Combine(Dir, $"x.{method}.raw.npy"));
            var values = AttributionPicture.Normalize(raw, sign, 1);
            var png = ImageDecoder.Load(Path.Combine(Dir, $"x.{method}.png"));
            var table = AttributionPicture.Table(sign);
            for (int i = 0; i < 64; i++)
            {
                int k = 3 * AttributionPicture.Index(values.Data[i], sign);
                for (int c = 0; c < 3; c++)
                    Assert.That(png.Data[3 * i + c], Is.EqualTo((byte)MathF.Round(255 * table[k + c], MidpointRounding.AwayFromZero)),
                        $"{method} pixel {i} channel {c}");
            }
            Assert.That(values.Data.Max(), Is.EqualTo(1f), "the largest values reach the end of the table");
            if (sign == AttributionSign.All)
                Assert.That(values.Data.Min(), Is.LessThan(0f), "signed: some pixels speak against the class");
        }
        Check("integrated-gradients", AttributionSign.All);   // its default
        Check("saliency", AttributionSign.Absolute);          // its default
        r = Cam("explain", model, input, "--method", "saliency", "--sign", "positive", "--alpha", "1", "--npy",
            "--out", Dir, "--device", Device, "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        Check("saliency", AttributionSign.Positive);
        AssertOneLineError(Cam("explain", model, input, "--sign", "negative", "--out", Dir), "unknown sign 'negative'");
    }

    [Test]
    public void The_class_model_image_of_a_bytes_bgr_mean_image_model_is_not_black()
    {
        // Caffe-style preprocessing: bytes (scale 1), BGR, a mean image of about 100 to 130 levels.
        var meanImage = new HostTensor([3, 8, 8], Enumerable.Range(0, 192).Select(i => 100f + 10 * (i / 64) + i % 64 / 4f).ToArray());
        var graph = TinyModel.Graph().WithPreprocessing(new Preprocessing
        {
            Height = 8, Width = 8, ResizeShorter = 8, Mean = [0, 0, 0], Std = [1, 1, 1], Scale = 1,
            ChannelOrder = Preprocessing.Bgr, MeanImage = "mean_image",
        });
        var weights = TinyModel.Weights();
        weights["mean_image"] = meanImage;
        string model = TinyModelFile(graph, weights);
        string photo = Path.Combine(Dir, "p.png");
        Overlay.WritePng(new RgbImage(8, 8, Enumerable.Range(0, 192).Select(i => (byte)(i * 5 % 256)).ToArray()), photo);
        var r = Cam("explain", model, photo, "--method", "class-model", "--param", "steps=20", "--npy", "--out", Dir,
            "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        var raw = Npy.Read(Path.Combine(Dir, "p.class-model.raw.npy"));
        var png = ImageDecoder.Load(Path.Combine(Dir, "p.class-model.png"));
        var pre = ModelFile.Load(model).Graph.Preprocessing;
        Assert.That(png.Data, Is.EqualTo(CamEngine.Methods.ClassModel.ToPicture(raw, pre).Data));
        Assert.That((png.Width, png.Height), Is.EqualTo((8, 8)));
        Assert.That(png.Data.Average(b => b), Is.GreaterThan(60), "the mean image shows through");
        // Red (model channel 2 in BGR) sits on the higher mean-image plane: 120 + ... where the pattern is small.
        int redMinusBlue = Enumerable.Range(0, 64).Sum(j => png.Data[3 * j] - png.Data[3 * j + 2]);
        Assert.That(redMinusBlue, Is.Not.Zero);
    }

    [Test]
    public void A_grid_on_a_gap_linear_head_says_which_tiles_coincide()
    {
        string model = TinyModelFile();
        string input = RandomInput();
        var r = Cam("explain", model, input, "--method", "cam,gradcam,hirescam,xgradcam,gradcampp", "--out", Dir,
            "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("note: x: identical tiles cam = gradcam = hirescam = xgradcam: CAM = Grad-CAM on a GAP-linear head"));
        Assert.That(r.Out, Does.Not.Contain("= gradcampp"));
        var grid = ImageDecoder.Load(Path.Combine(Dir, "x.grid.png"));
        var plain = Grid.Render(Enumerable.Range(0, 5).Select(i => ($"t{i}", new RgbImage(8, 8))).ToList());
        Assert.That(grid.Width, Is.EqualTo(plain.Width));
        Assert.That(grid.Height, Is.GreaterThan(plain.Height), "a caption under the tiles");
    }

    [Test]
    public void A_top1_channel_of_an_embedding_makes_every_gradient_tile_the_same_and_the_grid_says_why()
    {
        // The tiny model without its linear head: the output is the 4 pooled channels of the ReLU layer.
        var full = TinyModel.Graph();
        var graph = new ModelGraph
        {
            InputName = full.InputName, InputShape = full.InputShape, OutputName = "/Flatten_output_0",
            Preprocessing = full.Preprocessing, Nodes = full.Nodes.Take(4).ToList(),
        };
        var weights = TinyModel.Weights();
        weights.Remove("fc.weight");
        weights.Remove("fc.bias");
        string model = TinyModelFile(graph, weights);
        string input = RandomInput();
        var r = Cam("explain", model, input, "--method", "gradcam,hirescam,xgradcam,gradcampp,layercam,gradcam-elementwise",
            "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain(
            "note: x: identical tiles gradcam = hirescam = xgradcam = gradcampp = layercam = gradcam-elementwise: "
            + "Grad-CAM++ = Grad-CAM: the target's gradient reaches one channel of the layer only"));
    }
}
