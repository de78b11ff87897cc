using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using CamEngine.Tensors;
using NUnit.Framework;
using StbImageWriteSharp;

namespace CamEngine.Tests.Robustness;

/// <summary>Every parser of untrusted input under seeded mutation fuzzing (see <see cref="Fuzz"/>).</summary>
[TestFixture]
public sealed class FuzzTests
{
    /// <summary>The typed errors of a model file (a broken file, or one that uses what the engine lacks).</summary>
    private static readonly Type[] s_model = [typeof(InvalidModelFileException), typeof(UnsupportedModelException)];

    /// <summary>The typed error of an input file.</summary>
    private static readonly Type[] s_input = [typeof(InvalidInputException)];

    private static string Bundled(string file) => Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", file);

    [Test]
    public void Safetensors_model_files()
    {
        var valid = File.ReadAllBytes(Bundled("tiny_resnet.safetensors"));
        int header = 8 + (int)BitConverter.ToUInt64(valid, 0);
        Fuzz.Run("safetensors", valid, b => ModelFile.FromBytes(b), seed: 1, hot: header, typed: s_model);
    }

    [Test]
    public void Safetensors_model_streams_without_a_length()
    {
        // The staged reader (length, header, declared data, one probe byte) on a stream that has no length, as a pipe.
        var valid = File.ReadAllBytes(Bundled("tiny_resnet.safetensors"));
        int header = 8 + (int)BitConverter.ToUInt64(valid, 0);
        Fuzz.Run("safetensors stream", valid, b => ModelFile.Load(new PipeStream(b)), seed: 8, hot: header, typed: s_model);
    }

    /// <summary>A finite stream with no length.</summary>
    private sealed class PipeStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    [Test]
    public void Onnx_files()
    {
        var valid = File.ReadAllBytes(FixturePaths.Onnx("tiny_resnet"));
        Fuzz.Run("onnx", valid, b => OnnxConverter.Convert(b), seed: 2, typed: s_model);
    }

    private static byte[] Encode(string format)
    {
        var rgb = new byte[48 * 40 * 3];
        for (int i = 0; i < rgb.Length; i++)
            rgb[i] = (byte)(i * 37 % 251);
        using var ms = new MemoryStream();
        var w = new ImageWriter();
        switch (format)
        {
            case "png":
                w.WritePng(rgb, 48, 40, ColorComponents.RedGreenBlue, ms);
                break;
            case "jpeg":
                w.WriteJpg(rgb, 48, 40, ColorComponents.RedGreenBlue, ms, 90);
                break;
            default:
                w.WriteBmp(rgb, 48, 40, ColorComponents.RedGreenBlue, ms);
                break;
        }
        return ms.ToArray();
    }

    [TestCase("png", 3)]
    [TestCase("jpeg", 4)]
    [TestCase("bmp", 5)]
    public void Images(string format, int seed)
    {
        var valid = Encode(format);
        Assert.That(ImageDecoder.Decode(valid).Width, Is.EqualTo(48));
        Fuzz.Run(format, valid, b => ImageDecoder.Decode(b), seed, hot: 64, typed: s_input);
    }

    [Test]
    public void Npy_arrays()
    {
        using var ms = new MemoryStream();
        Npy.Write(ms, new HostTensor([2, 3, 5], Enumerable.Range(0, 30).Select(i => i * 0.5f).ToArray()));
        Fuzz.Run("npy", ms.ToArray(), b => Npy.Read(new MemoryStream(b)), seed: 6, hot: 128, typed: s_input);
    }

    [Test]
    public void Idx_files()
    {
        var raw = new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4 }.Concat(Enumerable.Range(0, 32).Select(i => (byte)i)).ToArray();
        Fuzz.Run("idx", raw, b => Idx.Read(new MemoryStream(b)), seed: 7, hot: 16, typed: s_input);
    }

    [Test]
    public void Truncated_jpeg_reproducer_terminates_with_a_typed_error()
    {
        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00];
        var task = Task.Run(() => ImageDecoder.Decode(jpeg, "reproducer.jpg"));
        var e = Assert.Throws<AggregateException>(() => task.Wait(TimeSpan.FromSeconds(10)));
        Assert.That(e!.InnerException, Is.InstanceOf<InvalidInputException>());
    }
}
