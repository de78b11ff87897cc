using System.Buffers.Binary;
using System.Text;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Tests.Model;

/// <summary>
/// A small valid model for file tests: input (3, 8, 8), conv 3->4 3x3 pad 1, relu, gap, flatten,
/// gemm 4->5; seeded random weights. Also builds raw safetensors bytes for hostile-file tests.
/// </summary>
internal static class TinyModel
{
    public const string ConvOut = "/conv/Conv_output_0";

    public static ModelGraph Graph() => new()
    {
        InputName = "input",
        InputShape = [3, 8, 8],
        OutputName = "logits",
        Preprocessing = Preprocessing.ImageNet(8, 8),
        Labels = ["a", "b", "c", "d", "e"],
        Nodes =
        [
            new GraphNode
            {
                Name = "/conv/Conv",
                Op = Ops.Conv,
                Inputs = ["input"],
                Output = ConvOut,
                Params = new(StringComparer.Ordinal) { ["weight"] = "conv.weight", ["bias"] = "conv.bias" },
                Attrs = new(StringComparer.Ordinal)
                {
                    ["kernel"] = [3, 3],
                    ["strides"] = [1, 1],
                    ["pads"] = [1, 1, 1, 1],
                    ["dilations"] = [1, 1],
                    ["group"] = [1],
                    ["out_channels"] = [4],
                },
                Shape = [4, 8, 8],
            },
            new GraphNode { Name = "/relu/Relu", Op = Ops.Relu, Inputs = [ConvOut], Output = "/relu/Relu_output_0", Shape = [4, 8, 8] },
            new GraphNode
            {
                Name = "/gap/GlobalAveragePool", Op = Ops.GlobalAvgPool, Inputs = ["/relu/Relu_output_0"],
                Output = "/gap/GlobalAveragePool_output_0", Shape = [4, 1, 1],
            },
            new GraphNode
            {
                Name = "/Flatten", Op = Ops.Flatten, Inputs = ["/gap/GlobalAveragePool_output_0"],
                Output = "/Flatten_output_0", Attrs = new(StringComparer.Ordinal) { ["axis"] = [1] }, Shape = [4],
            },
            new GraphNode
            {
                Name = "/fc/Gemm",
                Op = Ops.Gemm,
                Inputs = ["/Flatten_output_0"],
                Output = "logits",
                Params = new(StringComparer.Ordinal) { ["weight"] = "fc.weight", ["bias"] = "fc.bias" },
                Attrs = new(StringComparer.Ordinal) { ["transB"] = [1], ["alpha"] = [1], ["beta"] = [1] },
                Shape = [5],
            },
        ],
    };

    public static Dictionary<string, HostTensor> Weights(int seed = 20230828)
    {
        var rng = new Random(seed);
        HostTensor Rand(params int[] shape)
        {
            var t = new HostTensor(shape);
            for (int i = 0; i < t.Length; i++)
                t.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            return t;
        }
        return new Dictionary<string, HostTensor>(StringComparer.Ordinal)
        {
            ["conv.weight"] = Rand(4, 3, 3, 3),
            ["conv.bias"] = Rand(4),
            ["fc.weight"] = Rand(5, 4),
            ["fc.bias"] = Rand(5),
        };
    }

    public static ModelFile Create() => new(Graph(), Weights());

    /// <summary>conv 3->4 (3x3, pad 1), relu, conv 4->3 (3x3, pad 1): a tiny segmentation head, output (3, 8, 8).</summary>
    public static ModelFile Segmentation()
    {
        var tiny = Graph();
        var conv2 = new GraphNode
        {
            Name = "/head/Conv", Op = Ops.Conv, Inputs = ["/relu/Relu_output_0"], Output = "masks",
            Params = new(StringComparer.Ordinal) { ["weight"] = "head.weight", ["bias"] = "head.bias" },
            Attrs = new(StringComparer.Ordinal)
            {
                ["kernel"] = [3, 3], ["strides"] = [1, 1], ["pads"] = [1, 1, 1, 1], ["dilations"] = [1, 1],
                ["group"] = [1], ["out_channels"] = [3],
            },
            Shape = [3, 8, 8],
        };
        var graph = new ModelGraph
        {
            InputName = tiny.InputName, InputShape = tiny.InputShape, OutputName = "masks",
            Preprocessing = tiny.Preprocessing, Nodes = [tiny.Nodes[0], tiny.Nodes[1], conv2],
        };
        var weights = Weights();
        var rng = new Random(5);
        var hw = new HostTensor(3, 4, 3, 3);
        for (int i = 0; i < hw.Length; i++)
            hw.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        weights["head.weight"] = hw;
        weights["head.bias"] = new HostTensor([3], [0.1f, -0.2f, 0.3f]);
        return new ModelFile(graph, weights);
    }

    /// <summary>A valid model file's bytes.</summary>
    public static byte[] ValidBytes()
    {
        using var ms = new MemoryStream();
        Create().Save(ms);
        return ms.ToArray();
    }

    /// <summary>Model bytes with arbitrary (possibly invalid) graph JSON and metadata, written without validation.</summary>
    public static byte[] Bytes(string? graphJson, IReadOnlyDictionary<string, HostTensor> weights, string? format = "1")
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (format != null)
            meta[ModelFile.FormatKey] = format;
        if (graphJson != null)
            meta[ModelFile.GraphKey] = graphJson;
        using var ms = new MemoryStream();
        Safetensors.Write(ms, meta, weights);
        return ms.ToArray();
    }

    /// <summary>Raw safetensors bytes: the u64 length of <paramref name="header"/>, the header, the buffer.</summary>
    public static byte[] Raw(byte[] header, byte[] buffer)
    {
        var file = new byte[8 + header.Length + buffer.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        buffer.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>Raw safetensors bytes with a text header.</summary>
    public static byte[] Raw(string header, int bufferBytes) => Raw(Encoding.UTF8.GetBytes(header), new byte[bufferBytes]);
}
