using System.Reflection;
using CamEngine.Imaging;
using CamEngine.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;

namespace CamEngine.OracleTests;

/// <summary>
/// ML.NET's ResNetPreprocess.onnx (Split RGB, Concat BGR, Sub a (1, 3, 224, 224) MeanImage), read by
/// <c>cam convert --preprocess</c>, against ONNX Runtime running that file.
/// </summary>
[TestFixture]
public sealed class ResNetPreprocessOracleTests
{
    private static string Asset(string key) =>
        typeof(ResNetPreprocessOracleTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == key).Value!;

    private static float[] RunPreprocess(float[] planarRgb)
    {
        using var session = new InferenceSession(Asset("ResNetPreprocessOnnx"));
        string name = session.InputMetadata.Keys.Single();
        var t = new DenseTensor<float>(planarRgb, [1, 3, 224, 224]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(name, t)]);
        return results[0].AsEnumerable<float>().ToArray();
    }

    [Test]
    public void ConvertWithPreprocess_RecordsTheMeanImageAndMatchesOnnxRuntimeOnAPicture()
    {
        var file = OnnxConverter.ConvertFile(Asset("ResNet18Onnx"), new OnnxConvertOptions
        {
            PreprocessOnnx = File.ReadAllBytes(Asset("ResNetPreprocessOnnx")),
            ResizeShorter = 224,
        });
        var p = file.Graph.Preprocessing;
        Assert.That((p.Scale, p.ChannelOrder, p.Height, p.Width, p.ResizeShorter), Is.EqualTo((1f, "bgr", 224, 224, 224)));
        Assert.That(p.Mean, Is.EqualTo(new[] { 0f, 0f, 0f }));
        Assert.That(p.Std, Is.EqualTo(new[] { 1f, 1f, 1f }));
        var mean = file.Weights[p.MeanImage!];
        Assert.That(mean.Shape, Is.EqualTo(new[] { 3, 224, 224 }));

        // ONNX Runtime on a black picture gives -MeanImage (0 - m is exact), so this is the initializer itself.
        var negated = RunPreprocess(new float[3 * 224 * 224]);
        Assert.That(mean.Data, Is.EqualTo(negated.Select(v => -v).ToArray()));
        // Its BGR channel averages are the Caffe/CNTK ImageNet means (about 103, 116, 123).
        float[] channelMeans = [.. Enumerable.Range(0, 3).Select(c => mean.Data.Skip(c * 50176).Take(50176).Average())];
        Assert.That(channelMeans, Is.EqualTo(new[] { 103.06f, 115.90f, 123.15f }).Within(0.01f));

        // A seeded picture through the engine's normalization and through ONNX Runtime (fed planar RGB 0..255, as
        // ML.NET's ExtractPixels does by default) agree to float rounding.
        var rng = new Random(7);
        var bytes = new byte[224 * 224 * 3];
        rng.NextBytes(bytes);
        var image = new RgbImage(224, 224, bytes);
        var planar = new float[3 * 224 * 224];
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < 224 * 224; i++)
                planar[c * 224 * 224 + i] = bytes[3 * i + c];
        }
        var expected = RunPreprocess(planar);
        var actual = ImagePreprocessor.Normalize(image, p).Data;
        Assert.That(actual, Is.EqualTo(expected).Within(1e-4f));
    }
}
