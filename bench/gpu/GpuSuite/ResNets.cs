using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.GpuSuite;

/// <summary>One conv layer of a ResNet at 224x224: its geometry per image and how often it occurs in the net.</summary>
internal sealed record ConvLayer(string Name, int C, int H, int K, int Kernel, int Stride, int Pad, int Count)
{
    public int OH => (H + 2 * Pad - Kernel) / Stride + 1;

    /// <summary>FLOPs of the forward at batch <paramref name="n"/> (2 per multiply-add).</summary>
    public double Flops(int n) => 2.0 * n * K * OH * OH * C * Kernel * Kernel;
}

/// <summary>
/// torchvision's ResNet-18 and ResNet-50 topologies (batch-norm folded into the convs, as after ONNX conversion) with
/// He-initialized random weights, built as engine graphs; and ResNet-50's distinct conv layers for the per-layer table.
/// </summary>
internal static class ResNets
{
    /// <summary>ResNet-50's distinct conv geometries (name: stage and role), with their counts in the network.</summary>
    public static IReadOnlyList<ConvLayer> ResNet50Convs()
    {
        var seen = new Dictionary<(int, int, int, int, int, int), (string Name, int Count)>();
        void Add(string name, int c, int h, int k, int kernel, int stride, int pad)
        {
            var key = (c, h, k, kernel, stride, pad);
            seen[key] = seen.TryGetValue(key, out var e) ? (e.Name, e.Count + 1) : (name, 1);
        }
        Add("conv1 7x7/2", 3, 224, 64, 7, 2, 3);
        int cin = 64, size = 56;
        foreach (var (stage, width, blocks) in new[] { (1, 64, 3), (2, 128, 4), (3, 256, 6), (4, 512, 3) })
        {
            for (int b = 0; b < blocks; b++)
            {
                int stride = stage > 1 && b == 0 ? 2 : 1;
                string p = $"layer{stage}";
                Add($"{p} 1x1 reduce{(b == 0 ? ", block 0" : "")}", cin, size, width, 1, 1, 0);
                Add($"{p} 3x3{(stride == 2 ? "/2" : "")}", width, size, width, 3, stride, 1);
                int outSize = size / stride;
                Add($"{p} 1x1 expand", width, outSize, 4 * width, 1, 1, 0);
                if (b == 0)
                    Add($"{p} downsample 1x1{(stride == 2 ? "/2" : "")}", cin, size, 4 * width, 1, stride, 0);
                cin = 4 * width;
                size = outSize;
            }
        }
        return seen.Select(p => new ConvLayer(p.Value.Name, p.Key.Item1, p.Key.Item2, p.Key.Item3, p.Key.Item4, p.Key.Item5, p.Key.Item6, p.Value.Count)).ToList();
    }

    /// <summary>The name of the last block's output of layer4 (Grad-CAM's usual layer).</summary>
    public const string Layer4 = "layer4_out";

    /// <summary>ResNet-18 (<paramref name="bottleneck"/> false) or ResNet-50 (true).</summary>
    public static ModelFile Build(bool bottleneck, int seed)
    {
        var rng = new Random(seed);
        var nodes = new List<GraphNode>();
        var weights = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        HostTensor Uniform(double bound, params int[] shape)
        {
            var t = new HostTensor(shape);
            for (int i = 0; i < t.Length; i++)
                t.Data[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            return t;
        }
        string Conv(string name, string input, int cin, int cout, int k, int stride, int pad, int outSize)
        {
            weights[name + ".weight"] = Uniform(Math.Sqrt(6.0 / (cin * k * k)), cout, cin, k, k);
            weights[name + ".bias"] = Uniform(0.05, cout);
            nodes.Add(new GraphNode
            {
                Name = name, Op = Ops.Conv, Inputs = [input], Output = name + "_out",
                Params = new(StringComparer.Ordinal) { ["weight"] = name + ".weight", ["bias"] = name + ".bias" },
                Attrs = new(StringComparer.Ordinal)
                {
                    ["kernel"] = [k, k], ["strides"] = [stride, stride], ["pads"] = [pad, pad, pad, pad],
                    ["dilations"] = [1, 1], ["group"] = [1], ["out_channels"] = [cout],
                },
                Shape = [cout, outSize, outSize],
            });
            return name + "_out";
        }
        string Relu(string name, string input, int[] shape, string? output = null)
        {
            nodes.Add(new GraphNode { Name = name, Op = Ops.Relu, Inputs = [input], Output = output ?? name + "_out", Shape = shape });
            return output ?? name + "_out";
        }

        string x = Relu("relu", Conv("conv1", "input", 3, 64, 7, 2, 3, 112), [64, 112, 112]);
        nodes.Add(new GraphNode
        {
            Name = "maxpool", Op = Ops.MaxPool, Inputs = [x], Output = "maxpool_out",
            Attrs = new(StringComparer.Ordinal)
            {
                ["kernel"] = [3, 3], ["strides"] = [2, 2], ["pads"] = [1, 1, 1, 1], ["dilations"] = [1, 1], ["ceil_mode"] = [0],
            },
            Shape = [64, 56, 56],
        });
        x = "maxpool_out";
        int cin = 64, size = 56;
        int[] blocks = bottleneck ? [3, 4, 6, 3] : [2, 2, 2, 2];
        for (int stage = 1; stage <= 4; stage++)
        {
            int width = 64 << (stage - 1), cout = bottleneck ? 4 * width : width;
            for (int b = 0; b < blocks[stage - 1]; b++)
            {
                string p = $"layer{stage}.{b}";
                int stride = stage > 1 && b == 0 ? 2 : 1;
                int outSize = size / stride;
                string h;
                if (bottleneck)
                {
                    h = Relu(p + ".relu1", Conv(p + ".conv1", x, cin, width, 1, 1, 0, size), [width, size, size]);
                    h = Relu(p + ".relu2", Conv(p + ".conv2", h, width, width, 3, stride, 1, outSize), [width, outSize, outSize]);
                    h = Conv(p + ".conv3", h, width, cout, 1, 1, 0, outSize);
                }
                else
                {
                    h = Relu(p + ".relu1", Conv(p + ".conv1", x, cin, cout, 3, stride, 1, outSize), [cout, outSize, outSize]);
                    h = Conv(p + ".conv2", h, cout, cout, 3, 1, 1, outSize);
                }
                string skip = stride != 1 || cin != cout ? Conv(p + ".downsample", x, cin, cout, 1, stride, 0, outSize) : x;
                int[] shape = [cout, outSize, outSize];
                nodes.Add(new GraphNode { Name = p + ".add", Op = Ops.Add, Inputs = [h, skip], Output = p + ".add_out", Shape = shape });
                bool last = stage == 4 && b == blocks[3] - 1;
                x = Relu(p + ".relu_out", p + ".add_out", shape, last ? Layer4 : null);
                cin = cout;
                size = outSize;
            }
        }
        nodes.Add(new GraphNode { Name = "avgpool", Op = Ops.GlobalAvgPool, Inputs = [x], Output = "avgpool_out", Shape = [cin, 1, 1] });
        nodes.Add(new GraphNode
        {
            Name = "flatten", Op = Ops.Flatten, Inputs = ["avgpool_out"], Output = "flatten_out",
            Attrs = new(StringComparer.Ordinal) { ["axis"] = [1] }, Shape = [cin],
        });
        weights["fc.weight"] = Uniform(Math.Sqrt(1.0 / cin), 1000, cin);
        weights["fc.bias"] = Uniform(0.05, 1000);
        nodes.Add(new GraphNode
        {
            Name = "fc", Op = Ops.Gemm, Inputs = ["flatten_out"], Output = "logits",
            Params = new(StringComparer.Ordinal) { ["weight"] = "fc.weight", ["bias"] = "fc.bias" },
            Attrs = new(StringComparer.Ordinal) { ["transB"] = [1], ["alpha"] = [1], ["beta"] = [1] },
            Shape = [1000],
        });
        var graph = new ModelGraph
        {
            InputName = "input", InputShape = [3, 224, 224], OutputName = "logits",
            Preprocessing = Preprocessing.ImageNet(224, 224), Nodes = nodes,
        };
        return new ModelFile(graph, weights);
    }
}
