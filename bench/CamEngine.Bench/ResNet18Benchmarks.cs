using BenchmarkDotNet.Attributes;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Bench;

/// <summary>
/// A ResNet-18-shaped graph (224x224, batch-norm folded into the convs as ONNX exports do, random weights)
/// built from the ops the engine has (conv, relu, maxpool, add, gap, flatten, gemm), on the managed CPU backend:
/// the output-only forward, the forward that keeps layer4 and what follows plus the reverse pass to layer4's output
/// (what Grad-CAM needs), and the full forward plus the reverse pass to the input (what guided backprop and
/// saliency need). Compare with bench/resnet18_torch.py.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*ResNet18*' --job Short
/// </summary>
public class ResNet18Benchmarks
{
    private Backend _backend = null!;
    private DeviceModel _model = null!;
    private Tensor _input = null!, _seed = null!;

    /// <summary>Images per call.</summary>
    [Params(1, 8)]
    public int Batch { get; set; }

    /// <summary>The output of the last residual block (Grad-CAM's usual target layer).</summary>
    public const string Layer4 = "/layer4/layer4.1/relu_1/Relu_output_0";

    [GlobalSetup]
    public void Setup()
    {
        _backend = Devices.Open(Environment.GetEnvironmentVariable(Devices.EnvironmentVariable) ?? "cpu");
        var file = Build(new Random(18));
        _model = DeviceModel.Load(file, _backend);
        var rng = new Random(3);
        _input = _backend.Upload(Enumerable.Range(0, Batch * 3 * 224 * 224).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(),
            Batch, 3, 224, 224);
        var seed = new float[Batch * 1000];
        for (int i = 0; i < Batch; i++)
            seed[i * 1000 + 281] = 1f;
        _seed = _backend.Upload(seed, Batch, 1000);
        ForwardBackwardToLayer4(); // warm up: JIT, packed weights, scratch buffers
        ForwardBackwardToInput();
        Console.WriteLine($"// ResNet-18 shape, batch {Batch}, on {_backend.DeviceDescription}");
    }

    /// <summary>Inference: the output-only pass `cam predict` and the perturbation methods run (PyTorch: no_grad).</summary>
    [Benchmark]
    public int Forward()
    {
        using var pass = _model.ForwardOutput(_input);
        _backend.Synchronize();
        return pass.Output.Length;
    }

    /// <summary>Grad-CAM: the pass that keeps layer4 and what comes after it, as the explainer runs it (PyTorch: the
    /// trunk under no_grad, autograd from layer4 on).</summary>
    [Benchmark]
    public int ForwardBackwardToLayer4()
    {
        using var pass = _model.ForwardFor(_input, [Layer4]);
        using var g = _model.Backward(pass, _seed, new BackwardRequest { Layers = [Layer4] });
        _backend.Synchronize();
        return g.Layers.Count;
    }

    [Benchmark]
    public int ForwardBackwardToInput()
    {
        using var pass = _model.Forward(_input);
        using var g = _model.Backward(pass, _seed, new BackwardRequest { Input = true });
        _backend.Synchronize();
        return g.Input!.Length;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _input.Dispose();
        _seed.Dispose();
        _model.Dispose();
        _backend.Dispose();
    }

    /// <summary>torchvision's resnet18 topology with ONNX-export node names, BN folded, He-initialized weights.</summary>
    internal static ModelFile Build(Random rng)
    {
        var nodes = new List<GraphNode>();
        var weights = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        HostTensor He(int fanIn, params int[] shape)
        {
            var t = new HostTensor(shape);
            double sd = Math.Sqrt(2.0 / fanIn);
            for (int i = 0; i < t.Length; i++)
                t.Data[i] = (float)((rng.NextDouble() * 2 - 1) * sd * Math.Sqrt(3));
            return t;
        }
        HostTensor Small(int n)
        {
            var t = new HostTensor([n]);
            for (int i = 0; i < n; i++)
                t.Data[i] = (float)((rng.NextDouble() * 2 - 1) * 0.05);
            return t;
        }
        string Conv(string name, string input, int cin, int cout, int k, int stride, int pad, int outSize)
        {
            string output = name + "_output_0";
            weights[name + ".weight"] = He(cin * k * k, cout, cin, k, k);
            weights[name + ".bias"] = Small(cout);
            nodes.Add(new GraphNode
            {
                Name = name, Op = Ops.Conv, Inputs = [input], Output = output,
                Params = new(StringComparer.Ordinal) { ["weight"] = name + ".weight", ["bias"] = name + ".bias" },
                Attrs = new(StringComparer.Ordinal)
                {
                    ["kernel"] = [k, k], ["strides"] = [stride, stride], ["pads"] = [pad, pad, pad, pad],
                    ["dilations"] = [1, 1], ["group"] = [1], ["out_channels"] = [cout],
                },
                Shape = [cout, outSize, outSize],
            });
            return output;
        }
        string Relu(string name, string input, int[] shape)
        {
            nodes.Add(new GraphNode { Name = name, Op = Ops.Relu, Inputs = [input], Output = name + "_output_0", Shape = shape });
            return name + "_output_0";
        }

        string x = Conv("/conv1/Conv", "input", 3, 64, 7, 2, 3, 112);
        x = Relu("/relu/Relu", x, [64, 112, 112]);
        nodes.Add(new GraphNode
        {
            Name = "/maxpool/MaxPool", Op = Ops.MaxPool, Inputs = [x], Output = "/maxpool/MaxPool_output_0",
            Attrs = new(StringComparer.Ordinal)
            {
                ["kernel"] = [3, 3], ["strides"] = [2, 2], ["pads"] = [1, 1, 1, 1], ["dilations"] = [1, 1],
                ["ceil_mode"] = [0],
            },
            Shape = [64, 56, 56],
        });
        x = "/maxpool/MaxPool_output_0";
        int cin = 64, size = 56;
        foreach (var (stage, cout) in new[] { (1, 64), (2, 128), (3, 256), (4, 512) })
        {
            for (int block = 0; block < 2; block++)
            {
                string p = $"/layer{stage}/layer{stage}.{block}";
                int stride = stage > 1 && block == 0 ? 2 : 1;
                int outSize = size / stride;
                int[] shape = [cout, outSize, outSize];
                string h = Conv(p + "/conv1/Conv", x, cin, cout, 3, stride, 1, outSize);
                h = Relu(p + "/relu/Relu", h, shape);
                h = Conv(p + "/conv2/Conv", h, cout, cout, 3, 1, 1, outSize);
                string skip = stride != 1 || cin != cout ? Conv(p + "/downsample/downsample.0/Conv", x, cin, cout, 1, stride, 0, outSize) : x;
                nodes.Add(new GraphNode { Name = p + "/Add", Op = Ops.Add, Inputs = [h, skip], Output = p + "/Add_output_0", Shape = shape });
                x = Relu(p + "/relu_1/Relu", p + "/Add_output_0", shape);
                cin = cout;
                size = outSize;
            }
        }
        nodes.Add(new GraphNode
        {
            Name = "/avgpool/GlobalAveragePool", Op = Ops.GlobalAvgPool, Inputs = [x],
            Output = "/avgpool/GlobalAveragePool_output_0", Shape = [512, 1, 1],
        });
        nodes.Add(new GraphNode
        {
            Name = "/Flatten", Op = Ops.Flatten, Inputs = ["/avgpool/GlobalAveragePool_output_0"], Output = "/Flatten_output_0",
            Attrs = new(StringComparer.Ordinal) { ["axis"] = [1] }, Shape = [512],
        });
        weights["fc.weight"] = He(512, 1000, 512);
        weights["fc.bias"] = Small(1000);
        nodes.Add(new GraphNode
        {
            Name = "/fc/Gemm", Op = Ops.Gemm, Inputs = ["/Flatten_output_0"], Output = "logits",
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
