using System.Text.Json.Nodes;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Model;

public class ModelFileTests
{
    private string _dir = "";

    [SetUp]
    public void CreateFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "camengine-modelfile-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_dir, recursive: true);

    private static void AssertSameModel(ModelFile actual, ModelFile expected)
    {
        Assert.That(actual.Graph.ToJson(), Is.EqualTo(expected.Graph.ToJson()));
        Assert.That(actual.Weights.Keys, Is.EquivalentTo(expected.Weights.Keys));
        foreach (var (name, t) in expected.Weights)
        {
            Assert.That(actual.Weights[name].Shape, Is.EqualTo(t.Shape), name);
            Assert.That(actual.Weights[name].Data.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(t.Data.Select(BitConverter.SingleToInt32Bits)), name);
        }
    }

    /// <summary>The tiny model's graph JSON, edited.</summary>
    private static string EditedGraph(Action<JsonObject> edit)
    {
        var root = JsonNode.Parse(TinyModel.Graph().ToJson())!.AsObject();
        edit(root);
        return root.ToJsonString();
    }

    private static InvalidModelFileException Rejects(byte[] file) =>
        Assert.Throws<InvalidModelFileException>(() => ModelFile.FromBytes(file))!;

    [Test]
    public void RoundTripThroughPath()
    {
        var model = TinyModel.Create();
        string path = Path.Combine(_dir, "tiny.safetensors");
        model.Save(path);
        var back = ModelFile.Load(path);

        AssertSameModel(back, model);
        Assert.That(back.ParameterCount, Is.EqualTo(4 * 27 + 4 + 20 + 5));
        Assert.That(back.Graph.Labels, Is.EqualTo(new[] { "a", "b", "c", "d", "e" }));
        Assert.That(back.Graph.DefaultTargetLayer().Output, Is.EqualTo("/relu/Relu_output_0"));
    }

    [Test]
    public void RoundTripThroughStreamAndBytes()
    {
        var model = TinyModel.Create();
        using var ms = new MemoryStream();
        model.Save(ms);
        ms.Position = 0;
        AssertSameModel(ModelFile.Load(ms), model);
        AssertSameModel(ModelFile.FromBytes(ms.ToArray()), model);
    }

    [Test]
    public void LoadsFromNonSeekableStream()
    {
        var bytes = TinyModel.ValidBytes();
        using var pipe = new NonSeekableStream(bytes);
        AssertSameModel(ModelFile.Load(pipe), TinyModel.Create());
    }

    [Test]
    public void SavedFileIsPlainSafetensorsWithGraphMetadata()
    {
        var c = Safetensors.Read(TinyModel.ValidBytes());
        Assert.That(c.Metadata[ModelFile.FormatKey], Is.EqualTo("1"));
        Assert.That(c.Metadata[ModelFile.GraphKey], Is.EqualTo(TinyModel.Graph().ToJson()));
        Assert.That(c.Tensors.Keys, Is.EquivalentTo(new[] { "conv.weight", "conv.bias", "fc.weight", "fc.bias" }));
    }

    [Test]
    public void ReadsF16Weights()
    {
        // A PyTorch user may save half-precision weights; they are widened on load.
        var weights = TinyModel.Weights();
        foreach (var t in weights.Values)
        {
            for (int i = 0; i < t.Length; i++)
                t.Data[i] = (float)(Half)t.Data[i];
        }
        var meta = new Dictionary<string, string>
        {
            [ModelFile.FormatKey] = "1",
            [ModelFile.GraphKey] = TinyModel.Graph().ToJson(),
        };
        var names = weights.Keys.Order(StringComparer.Ordinal).ToArray();
        var header = new JsonObject { ["__metadata__"] = new JsonObject(meta.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))) };
        var buffer = new List<byte>();
        foreach (var n in names)
        {
            var t = weights[n];
            int begin = buffer.Count;
            foreach (float f in t.Data)
                buffer.AddRange(BitConverter.GetBytes((Half)f));
            header[n] = new JsonObject
            {
                ["dtype"] = "F16",
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(begin, buffer.Count),
            };
        }
        var file = TinyModel.Raw(System.Text.Encoding.UTF8.GetBytes(header.ToJsonString()), buffer.ToArray());

        AssertSameModel(ModelFile.FromBytes(file), new ModelFile(TinyModel.Graph(), weights));
    }

    [Test]
    public void RejectsSafetensorsWithoutGraph()
    {
        var e = Rejects(TinyModel.Bytes(null, TinyModel.Weights()));
        Assert.That(e.Message, Does.Contain("not a CamEngine model"));
        Assert.That(e.Message, Does.Contain("cam convert"));
    }

    [Test]
    public void RejectsMissingFormat() =>
        Assert.That(Rejects(TinyModel.Bytes(TinyModel.Graph().ToJson(), TinyModel.Weights(), format: null)).Message,
            Does.Contain("no engine.format"));

    [Test]
    public void RejectsOtherFormat() =>
        Assert.That(Rejects(TinyModel.Bytes(TinyModel.Graph().ToJson(), TinyModel.Weights(), format: "2")).Message,
            Does.Contain("format '2' is not supported"));

    [Test]
    public void RejectsGraphThatIsNotJson() =>
        Assert.That(Rejects(TinyModel.Bytes("{nodes", TinyModel.Weights())).Message, Does.Contain("graph JSON"));

    [Test]
    public void RejectsGraphReferencingMissingTensor()
    {
        var weights = TinyModel.Weights();
        weights.Remove("fc.bias");
        var e = Rejects(TinyModel.Bytes(TinyModel.Graph().ToJson(), weights));
        Assert.That(e.Message, Does.Contain("'fc.bias' is not in the file"));
        Assert.That(e.Message, Does.Contain("/fc/Gemm"));
    }

    [TestCase("{\"\\udc00\":1}")]
    [TestCase("{\"format\":1,\"format\":1}")]
    [TestCase("[1]")]
    [TestCase("{\"format\":1}")]
    [TestCase("{\"format\":1e400}")]
    public void RejectsHostileGraphJson(string json) =>
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("graph"));

    [Test]
    public void RejectsDeeplyNestedGraphJson()
    {
        string json = EditedGraph(g => g["deep"] = JsonNode.Parse(new string('[', 20) + new string(']', 20)));
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("depth"));
    }

    [Test]
    public void RejectsParamNameNotInFile()
    {
        string json = EditedGraph(g => g["nodes"]![0]!["params"]!["weight"] = "conv.w");
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("'conv.w' is not in the file"));
    }

    [Test]
    public void RejectsWeightWithWrongShape()
    {
        var weights = TinyModel.Weights();
        weights["conv.weight"] = new HostTensor(4, 3, 5, 5);
        var e = Rejects(TinyModel.Bytes(TinyModel.Graph().ToJson(), weights));
        Assert.That(e.Message, Does.Contain("'conv.weight' has shape [4,3,5,5], expected [4,3,3,3]"));
    }

    [Test]
    public void RejectsGemmWeightWithWrongInputFeatures()
    {
        var weights = TinyModel.Weights();
        weights["fc.weight"] = new HostTensor(5, 6);
        Assert.That(Rejects(TinyModel.Bytes(TinyModel.Graph().ToJson(), weights)).Message, Does.Contain("/fc/Gemm"));
    }

    [Test]
    public void RejectsWrongStoredShape()
    {
        string json = EditedGraph(g => g["nodes"]![0]!["shape"] = new JsonArray(4, 7, 7));
        var e = Rejects(TinyModel.Bytes(json, TinyModel.Weights()));
        Assert.That(e.Message, Does.Contain("stored shape [4,7,7] differs from inferred [4,8,8]"));
    }

    [Test]
    public void RejectsUnknownOperatorAsUnsupported()
    {
        string json = EditedGraph(g => g["nodes"]![1]!["op"] = "lstm");
        var e = Assert.Throws<UnsupportedModelException>(() => ModelFile.FromBytes(TinyModel.Bytes(json, TinyModel.Weights())))!;
        Assert.That(e.Message, Does.Contain("unknown operator 'lstm'"));
    }

    [Test]
    public void RejectsUndefinedInput()
    {
        string json = EditedGraph(g => g["nodes"]![2]!["inputs"] = new JsonArray("nowhere"));
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("'nowhere' is not defined"));
    }

    [TestCase("dilations", new[] { 1073741824.0, 1 })]
    [TestCase("kernel", new[] { 3.0, 1e9 })]
    [TestCase("pads", new[] { 2147483647.0, 0, 2147483647.0, 0 })]
    [TestCase("strides", new[] { 0.0, 1 })]
    [TestCase("dilations", new[] { 1.0, -1 })]
    [TestCase("pads", new[] { -1.0, 0, 0, 0 })]
    [TestCase("kernel", new[] { 3.0, 2.5 })]
    public void RejectsHostileConvAttributes(string attr, double[] value)
    {
        string json = EditedGraph(g => g["nodes"]![0]!["attrs"]![attr] = new JsonArray(value.Select(v => (JsonNode?)v).ToArray()));
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("/conv/Conv"));
    }

    /// <summary>The tiny graph with a 2x2 max pool of the given stride after the relu, stored shape (4, 4, 4).</summary>
    private static string GraphWithPool(double stride) => EditedGraph(g =>
    {
        var nodes = g["nodes"]!.AsArray();
        nodes.Insert(2, new JsonObject
        {
            ["name"] = "/pool/MaxPool",
            ["op"] = "maxpool",
            ["inputs"] = new JsonArray("/relu/Relu_output_0"),
            ["output"] = "/pool/MaxPool_output_0",
            ["params"] = new JsonObject(),
            ["attrs"] = new JsonObject { ["kernel"] = new JsonArray(2, 2), ["strides"] = new JsonArray(stride, 2) },
            ["shape"] = new JsonArray(4, 4, 4),
        });
        nodes[3]!["inputs"] = new JsonArray("/pool/MaxPool_output_0");
    });

    [Test]
    public void AcceptsAPoolInsertedWithCorrectShape()
    {
        var model = ModelFile.FromBytes(TinyModel.Bytes(GraphWithPool(2), TinyModel.Weights()));
        Assert.That(model.Graph.Nodes, Has.Count.EqualTo(6));
        Assert.That(model.Graph.DefaultTargetLayer().Output, Is.EqualTo("/pool/MaxPool_output_0"));
    }

    [TestCase(0.0)]
    [TestCase(-2.0)]
    [TestCase(1.0)]
    public void RejectsBadPoolStride(double stride) =>
        Assert.That(Rejects(TinyModel.Bytes(GraphWithPool(stride), TinyModel.Weights())).Message, Does.Contain("/pool/MaxPool"));

    [Test]
    public void RejectsInputShapeWithTooManyElements()
    {
        string json = EditedGraph(g => g["input"]!["shape"] = new JsonArray(3, 65536, 65536));
        Assert.That(Rejects(TinyModel.Bytes(json, TinyModel.Weights())).Message, Does.Contain("more than"));
    }

    [Test]
    public void LoadOfMissingFileNamesThePath()
    {
        string path = Path.Combine(_dir, "absent.safetensors");
        var e = Assert.Throws<CamEngineException>(() => ModelFile.Load(path))!;
        Assert.That(e.Message, Does.Contain(path));
        Assert.That(e.Message, Does.Contain("does not exist"));
    }

    [Test]
    public void LoadOfCorruptFileNamesThePath()
    {
        string path = Path.Combine(_dir, "bad.safetensors");
        var bytes = TinyModel.ValidBytes();
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - 1).ToArray());
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFile.Load(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        Assert.That(e.Message, Does.Contain("trailing bytes").Or.Contains("past the data buffer"));
    }

    [Test]
    public void SaveIntoMissingFolderFailsCleanly()
    {
        string folder = Path.Combine(_dir, "missing");
        string path = Path.Combine(folder, "m.safetensors");
        var e = Assert.Throws<CamEngineException>(() => TinyModel.Create().Save(path))!;
        Assert.That(e.Message, Does.Contain("does not exist"));
        Assert.That(Directory.Exists(folder), Is.False);
        Assert.That(Directory.GetFileSystemEntries(_dir), Is.Empty);
    }

    [Test]
    public void SaveLeavesNoTemporaryFilesAndOverwrites()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        File.WriteAllText(path, "old contents");
        TinyModel.Create().Save(path);
        TinyModel.Create().Save(path);

        Assert.That(Directory.GetFileSystemEntries(_dir), Is.EqualTo(new[] { path }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(TinyModel.ValidBytes()));
    }

    [Test]
    public void SaveOfInvalidModelKeepsTheOldFile()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        File.WriteAllText(path, "old contents");
        var weights = TinyModel.Weights();
        weights.Remove("conv.weight");
        var bad = new ModelFile(TinyModel.Graph(), weights);

        Assert.Throws<InvalidModelFileException>(() => bad.Save(path));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old contents"));
        Assert.That(Directory.GetFileSystemEntries(_dir), Has.Length.EqualTo(1));
    }

    [Test]
    public void SaveOntoAFolderFailsAndCleansUp()
    {
        string path = Path.Combine(_dir, "taken");
        Directory.CreateDirectory(path);
        var e = Assert.Throws<CamEngineException>(() => TinyModel.Create().Save(path))!;
        Assert.That(e.Message, Does.Contain(path));
        Assert.That(Directory.GetFileSystemEntries(_dir), Is.EqualTo(new[] { path }));
    }

    /// <summary>Random corruption of a valid file must end in a CamEngine error or a valid model, never
    /// in another exception.</summary>
    [Test]
    public void MutatedFilesLoadOrFailWithEngineErrors()
    {
        var valid = TinyModel.ValidBytes();
        int headerEnd = 8 + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var digits = Enumerable.Range(8, headerEnd - 8).Where(i => char.IsAsciiDigit((char)valid[i])).ToArray();
        var rng = new Random(20230828);
        int loaded = 0, rejected = 0;
        for (int c = 0; c < 600; c++)
        {
            var file = (byte[])valid.Clone();
            string what;
            switch (c % 6)
            {
                case 0:
                {
                    int flips = rng.Next(1, 4);
                    for (int k = 0; k < flips; k++)
                        file[rng.Next(file.Length)] ^= (byte)(1 << rng.Next(8));
                    what = $"{flips} bit flips";
                    break;
                }
                case 1:
                    file = file.AsSpan(0, rng.Next(file.Length)).ToArray();
                    what = $"truncated to {file.Length}";
                    break;
                case 2:
                {
                    int at = rng.Next(headerEnd);
                    file[at] = (byte)rng.Next(256);
                    what = $"header byte {at} overwritten";
                    break;
                }
                case 3:
                {
                    // Digits drive shapes, offsets and attributes: the interesting semantic failures.
                    int at = digits[rng.Next(digits.Length)];
                    file[at] = (byte)('0' + rng.Next(10));
                    what = $"digit at {at} replaced";
                    break;
                }
                case 4:
                {
                    int at = rng.Next(8);
                    file[at] = (byte)rng.Next(256);
                    what = $"length byte {at} overwritten";
                    break;
                }
                default:
                {
                    int at = rng.Next(headerEnd);
                    var chars = "{}[]\",:-.0e\\ ";
                    file[at] = (byte)chars[rng.Next(chars.Length)];
                    what = $"header byte {at} set to a JSON token";
                    break;
                }
            }
            try
            {
                ModelFile.FromBytes(file);
                loaded++;
            }
            catch (CamEngineException e) when (e is InvalidModelFileException or UnsupportedModelException)
            {
                rejected++;
                Assert.That(e.Message, Is.Not.Empty, what);
            }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"case {c} ({what}) threw {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.That(rejected, Is.GreaterThan(300));
        Assert.That(loaded, Is.GreaterThan(0), "flips inside the weight data still load");
        Assert.That(loaded + rejected, Is.EqualTo(600));
    }

    private sealed class NonSeekableStream(byte[] data) : Stream
    {
        private int _pos;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }

        public override int Read(byte[] buffer, int offset, int count)
        {
            // Short reads, as a pipe gives them.
            int n = Math.Min(Math.Min(count, 7), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
