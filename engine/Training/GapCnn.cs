using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Training;

/// <summary>
/// A CAM-ready classifier: blocks of 3x3 conv (padding 1) + ReLU, a 2x2 max-pool after every block but the
/// last, global average pooling and one linear layer, so CAM, Grad-CAM and the rest apply at the last block.
/// Weights start as PyTorch's defaults do (Kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
/// for weights and biases), from a seeded generator.
/// </summary>
internal static class GapCnn
{
    /// <summary>Builds the graph and its seeded initial weights.</summary>
    /// <param name="channels">Input channels.</param>
    /// <param name="size">Input side (square).</param>
    /// <param name="widths">Output channels of each conv block.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="seed">Initialization seed.</param>
    /// <param name="preprocessing">How images become inputs.</param>
    /// <param name="labels">Optional class names.</param>
    public static ModelFile Create(
        int channels, int size, IReadOnlyList<int> widths, int classes, int seed, Preprocessing preprocessing,
        string[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(widths);
        var rng = new Random(seed);
        var nodes = new List<GraphNode>();
        var weights = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        string current = "input";
        int c = channels, s = size;
        for (int b = 0; b < widths.Count; b++)
        {
            int k = widths[b];
            string conv = $"block{b + 1}.conv";
            weights[conv + ".weight"] = Uniform(rng, c * 9, k, c, 3, 3);
            weights[conv + ".bias"] = Uniform(rng, c * 9, k);
            nodes.Add(new GraphNode
            {
                Name = $"/block{b + 1}/conv/Conv", Op = Ops.Conv, Inputs = [current], Output = $"/block{b + 1}/conv/Conv_output_0",
                Params = new() { ["weight"] = conv + ".weight", ["bias"] = conv + ".bias" },
                Attrs = new() { ["kernel"] = [3, 3], ["pads"] = [1, 1, 1, 1], ["out_channels"] = [k] },
                Shape = [k, s, s],
            });
            nodes.Add(new GraphNode
            {
                Name = $"/block{b + 1}/relu/Relu", Op = Ops.Relu, Inputs = [nodes[^1].Output],
                Output = $"/block{b + 1}/relu/Relu_output_0", Shape = [k, s, s],
            });
            current = nodes[^1].Output;
            if (b < widths.Count - 1)
            {
                s /= 2;
                nodes.Add(new GraphNode
                {
                    Name = $"/block{b + 1}/pool/MaxPool", Op = Ops.MaxPool, Inputs = [current],
                    Output = $"/block{b + 1}/pool/MaxPool_output_0",
                    Attrs = new() { ["kernel"] = [2, 2], ["strides"] = [2, 2] }, Shape = [k, s, s],
                });
                current = nodes[^1].Output;
            }
            c = k;
        }
        nodes.Add(new GraphNode { Name = "/gap/GlobalAveragePool", Op = Ops.GlobalAvgPool, Inputs = [current], Output = "/gap/GlobalAveragePool_output_0", Shape = [c, 1, 1] });
        nodes.Add(new GraphNode { Name = "/Flatten", Op = Ops.Flatten, Inputs = [nodes[^1].Output], Output = "/Flatten_output_0", Shape = [c] });
        weights["fc.weight"] = Uniform(rng, c, classes, c);
        weights["fc.bias"] = Uniform(rng, c, classes);
        nodes.Add(new GraphNode
        {
            Name = "/fc/Gemm", Op = Ops.Gemm, Inputs = [nodes[^1].Output], Output = "logits",
            Params = new() { ["weight"] = "fc.weight", ["bias"] = "fc.bias" }, Attrs = new() { ["transB"] = [1] },
            Shape = [classes],
        });
        var graph = new ModelGraph
        {
            InputName = "input", InputShape = [channels, size, size], OutputName = "logits", Nodes = nodes,
            Preprocessing = preprocessing, Labels = labels,
        };
        var model = new ModelFile(graph, weights);
        model.Validate();
        return model;
    }

    private static HostTensor Uniform(Random rng, int fanIn, params int[] shape)
    {
        var t = new HostTensor(shape);
        double bound = 1.0 / Math.Sqrt(fanIn);
        for (int i = 0; i < t.Length; i++)
            t.Data[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        return t;
    }
}
