using System.Text.Json.Nodes;
using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Model;

/// <summary>The optional preprocessing fields of graph JSON v1 (scale, channel_order, mean_image): round trips,
/// files without them, and files that lie about them.</summary>
public class PreprocessingFileTests
{
    private const string MeanName = "preprocessing.mean_image";

    /// <summary>Mean image values 0.5 * c + 0.01 * i for element i of channel c of the tiny model's (3, 8, 8) input.</summary>
    private static HostTensor MeanImage() =>
        new([3, 8, 8], Enumerable.Range(0, 192).Select(i => 0.5f * (i / 64) + 0.01f * (i % 64)).ToArray());

    private static ModelGraph CaffeGraph(string? meanImage = MeanName)
    {
        var g = TinyModel.Graph();
        return g.WithPreprocessing(new Preprocessing
        {
            Height = 8, Width = 8, ResizeShorter = 8, Mean = [0, 0, 0], Std = [1, 1, 1],
            Scale = 1f, ChannelOrder = Preprocessing.Bgr, MeanImage = meanImage,
        });
    }

    private static Dictionary<string, HostTensor> WeightsWith(HostTensor? meanImage)
    {
        var w = TinyModel.Weights();
        if (meanImage != null)
            w[MeanName] = meanImage;
        return w;
    }

    private static InvalidModelFileException Rejects(string json, Dictionary<string, HostTensor> weights) =>
        Assert.Throws<InvalidModelFileException>(() => ModelFile.FromBytes(TinyModel.Bytes(json, weights)))!;

    [Test]
    public void NewFields_RoundTripThroughTheFile()
    {
        var model = new ModelFile(CaffeGraph(), WeightsWith(MeanImage()));
        var pre = JsonNode.Parse(model.Graph.ToJson())!["preprocessing"]!.AsObject();
        Assert.That(pre["scale"]!.GetValue<float>(), Is.EqualTo(1f));
        Assert.That(pre["channel_order"]!.GetValue<string>(), Is.EqualTo("bgr"));
        Assert.That(pre["mean_image"]!.GetValue<string>(), Is.EqualTo(MeanName));

        using var ms = new MemoryStream();
        model.Save(ms);
        var back = ModelFile.FromBytes(ms.ToArray());
        var p = back.Graph.Preprocessing;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Scale, Is.EqualTo(1f));
            Assert.That(p.ChannelOrder, Is.EqualTo(Preprocessing.Bgr));
            Assert.That(p.MeanImage, Is.EqualTo(MeanName));
            Assert.That(p.MeanImageTensor!.Data, Is.EqualTo(MeanImage().Data), "ModelFile attaches the mean image's values");
            Assert.That(back.Graph.ToJson(), Is.EqualTo(model.Graph.ToJson()));
            Assert.That(back.ParameterCount, Is.EqualTo(4 * 27 + 4 + 20 + 5), "the mean image is not counted as parameters");
        }
    }

    [Test]
    public void FileWithoutTheFields_MeansTodaysPreprocessing()
    {
        string json = TinyModel.Graph().ToJson();
        Assert.That(json, Does.Not.Contain("scale").And.Not.Contain("channel_order").And.Not.Contain("mean_image"),
            "defaults are not written, so older models keep their bytes");
        var p = ModelFile.FromBytes(TinyModel.Bytes(json, TinyModel.Weights())).Graph.Preprocessing;
        Assert.That((p.Scale, p.ChannelOrder, p.MeanImage), Is.EqualTo((1f / 255f, "rgb", (string?)null)));
        // An explicit default scale written by another tool reads the same.
        var edited = JsonNode.Parse(json)!.AsObject();
        edited["preprocessing"]!["scale"] = 0.00392156862745098;
        edited["preprocessing"]!["channel_order"] = "rgb";
        var q = ModelFile.FromBytes(TinyModel.Bytes(edited.ToJsonString(), TinyModel.Weights())).Graph.Preprocessing;
        Assert.That((q.Scale, q.ChannelOrder), Is.EqualTo((1f / 255f, "rgb")));
    }

    [Test]
    public void MissingMeanImageTensor_IsRejected() =>
        Assert.That(Rejects(CaffeGraph().ToJson(), WeightsWith(null)).Message,
            Does.Contain("mean_image 'preprocessing.mean_image' is not a tensor of the file"));

    [Test]
    public void MeanImageOfWrongShape_IsRejected() =>
        Assert.That(Rejects(CaffeGraph().ToJson(), WeightsWith(new HostTensor(3, 8, 7))).Message,
            Does.Contain("has shape [3,8,7], expected the input shape [3,8,8]"));

    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    public void NonFiniteMeanImage_IsRejected(float bad)
    {
        var m = MeanImage();
        m.Data[70] = bad;
        Assert.That(Rejects(CaffeGraph().ToJson(), WeightsWith(m)).Message, Does.Contain("non-finite value").And.Contain("element 70"));
    }

    [TestCase("scale", "0", "scale 0 must be positive")]
    [TestCase("scale", "-1", "scale -1 must be positive")]
    [TestCase("channel_order", "\"gbr\"", "channel_order 'gbr' is not")]
    [TestCase("channel_order", "7", "graph JSON is invalid")]
    [TestCase("mean_image", "3", "graph JSON is invalid")]
    public void HostileFieldValues_AreRejected(string field, string value, string message)
    {
        var root = JsonNode.Parse(TinyModel.Graph().ToJson())!.AsObject();
        root["preprocessing"]![field] = JsonNode.Parse(value);
        Assert.That(Rejects(root.ToJsonString(), TinyModel.Weights()).Message, Does.Contain(message));
    }

    [Test]
    public void BgrForAOneChannelModel_IsRejected()
    {
        var bad = new ModelGraph
        {
            InputName = "x",
            InputShape = [1, 4, 4],
            OutputName = "y",
            Preprocessing = new Preprocessing { Height = 4, Width = 4, ResizeShorter = 4, Mean = [0], Std = [1], ChannelOrder = Preprocessing.Bgr },
            Nodes = [new GraphNode { Name = "n", Op = Ops.Relu, Inputs = ["x"], Output = "y", Shape = [1, 4, 4] }],
        };
        Assert.That(() => GraphValidator.Validate(bad, new Dictionary<string, HostTensor>()),
            Throws.TypeOf<InvalidModelFileException>().With.Message.Contain("needs 3 input channels"));
    }

    [Test]
    public void BgrMeanImageNormalization_MatchesAHandComputedPixel()
    {
        var model = new ModelFile(CaffeGraph(), WeightsWith(MeanImage()));
        var p = model.Graph.Preprocessing;
        var img = new RgbImage(8, 8);
        int at = img.Offset(5, 2);  // column 5, row 2: element i = 2 * 8 + 5 = 21 of each plane
        (img.Data[at], img.Data[at + 1], img.Data[at + 2]) = ((byte)200, (byte)100, (byte)50);
        var x = ImagePreprocessor.Normalize(img, p);
        Assert.That(x.Shape, Is.EqualTo(new[] { 1, 3, 8, 8 }));
        // Channel 0 is blue: 50 - (0.5 * 0 + 0.01 * 21) = 49.79; 1 green: 100 - 0.71 = 99.29; 2 red: 200 - 1.21 = 198.79.
        Assert.That(x.Data[21], Is.EqualTo(49.79f).Within(1e-4f));
        Assert.That(x.Data[64 + 21], Is.EqualTo(99.29f).Within(1e-4f));
        Assert.That(x.Data[128 + 21], Is.EqualTo(198.79f).Within(1e-4f));
        // A black pixel is minus the mean image.
        Assert.That(x.Data[128], Is.EqualTo(-1.0f).Within(1e-6f));

        // The .npy display inverse gives the picture back, in RGB order.
        var shown = ImagePreprocessor.ToDisplay(x, p);
        Assert.That(shown.Data, Is.EqualTo(img.Data));
    }

    [Test]
    public void ScaleStdAndBgr_WithoutMeanImage()
    {
        var p = new Preprocessing
        {
            Height = 1, Width = 1, ResizeShorter = 1, Mean = [10, 20, 30], Std = [2, 4, 5], Scale = 0.5f, ChannelOrder = "bgr",
        };
        var x = ImagePreprocessor.Normalize(new RgbImage(1, 1, [100, 60, 40]), p).Data;
        // blue 40 * 0.5 = 20, (20 - 10) / 2 = 5; green (30 - 20) / 4 = 2.5; red (50 - 30) / 5 = 4.
        Assert.That(x, Is.EqualTo(new[] { 5f, 2.5f, 4f }));
        Assert.That(ImagePreprocessor.ToDisplay(new HostTensor([3, 1, 1], x), p).Data, Is.EqualTo(new byte[] { 100, 60, 40 }));
    }

    [Test]
    public void MeanImageWithoutValues_IsAClearError()
    {
        var p = CaffeGraph().Preprocessing;  // a graph not loaded through ModelFile: nothing attached
        Assert.That(() => ImagePreprocessor.Normalize(new RgbImage(8, 8), p),
            Throws.TypeOf<CamEngineException>().With.Message.Contain("values are not attached"));
    }

    [Test]
    public void InputLoader_AppliesTheMeanImageToPhotosAndInvertsItForNpy()
    {
        string dir = Path.Combine(Path.GetTempPath(), "camengine-pre-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var model = new ModelFile(CaffeGraph(), WeightsWith(MeanImage()));
            var img = new RgbImage(8, 8, Enumerable.Range(0, 192).Select(i => (byte)(i * 7 % 256)).ToArray());
            string png = Path.Combine(dir, "p.png");
            File.WriteAllBytes(png, Overlay.EncodePng(img));
            var loaded = InputLoader.Load(png, model.Graph).Single();
            Assert.That(loaded.Input.Data, Is.EqualTo(ImagePreprocessor.Normalize(img, model.Graph.Preprocessing).Data));

            string npy = Path.Combine(dir, "p.npy");
            CamEngine.IO.Npy.Write(npy, loaded.Input);
            var fromNpy = InputLoader.Load(npy, model.Graph).Single();
            Assert.That(fromNpy.Display!.Data, Is.EqualTo(img.Data));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
