using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Model;

/// <summary>Issue 18: a 9 MB model of 60,000 ReLU nodes grew to 13.9 GB. The graph is bounded by node count when
/// it is read, and by its planned activations before anything runs.</summary>
public sealed class GraphBudgetTests
{
    /// <summary>The tiny model's conv followed by <paramref name="relus"/> ReLUs at (4, <paramref name="side"/>,
    /// <paramref name="side"/>), then its head.</summary>
    private static ModelFile ReluChain(int relus, int side)
    {
        var tiny = TinyModel.Graph();
        var nodes = new List<GraphNode>();
        var conv = tiny.Nodes[0];
        nodes.Add(new GraphNode { Name = conv.Name, Op = conv.Op, Inputs = conv.Inputs, Output = conv.Output, Params = conv.Params, Attrs = conv.Attrs, Shape = [4, side, side] });
        string last = conv.Output;
        for (int i = 0; i < relus; i++)
        {
            string output = $"relu{i}";
            nodes.Add(new GraphNode { Name = $"/relu{i}", Op = Ops.Relu, Inputs = [last], Output = output, Shape = [4, side, side] });
            last = output;
        }
        var gap = tiny.Nodes[2];
        nodes.Add(new GraphNode { Name = gap.Name, Op = gap.Op, Inputs = [last], Output = gap.Output, Attrs = gap.Attrs, Shape = gap.Shape });
        nodes.AddRange(tiny.Nodes.Skip(3));
        var graph = new ModelGraph
        {
            InputName = tiny.InputName, InputShape = [3, side, side], OutputName = tiny.OutputName,
            Preprocessing = Preprocessing.ImageNet(side, side), Labels = tiny.Labels, Nodes = nodes,
        };
        return new ModelFile(graph, TinyModel.Weights());
    }

    [Test]
    public void A_graph_of_60000_relus_is_refused_when_read_before_its_nodes_are_parsed()
    {
        var file = ReluChain(60_000, 8);
        using var ms = new MemoryStream();
        // Save validates; write the same bytes the way a hostile tool would, without validating.
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ModelFile.FormatKey] = ModelFile.FormatValue,
            [ModelFile.GraphKey] = file.Graph.ToJson(),
        };
        Safetensors.Write(ms, meta, file.Weights);
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFile.FromBytes(ms.ToArray()))!;
        Assert.That(file.Graph.Nodes, Has.Count.EqualTo(60_004));
        Assert.That(e.Message, Is.EqualTo($"the graph has 60004 nodes, more than the {GraphBudget.MaxNodes} this engine accepts"));
        Assert.That(() => file.Validate(), Throws.TypeOf<InvalidModelFileException>().With.Message.Contains("60004 nodes"));
    }

    [Test]
    public void Planned_activations_count_the_input_and_every_node_output()
    {
        var graph = TinyModel.Graph();
        // input 3x8x8, conv and relu 4x8x8, gap 4, flatten 4, gemm 5: (192 + 256 + 256 + 4 + 4 + 5) * 4 bytes.
        Assert.That(GraphBudget.ActivationBytesPerImage(graph), Is.EqualTo((192 + 256 + 256 + 4 + 4 + 5) * 4));
    }

    [Test]
    public void A_model_whose_activations_exceed_the_budget_is_refused_with_the_numbers_before_any_pass()
    {
        // 100 ReLUs (104 nodes) at 4x2048x2048 plan 6.4 GiB per image; a device budget is at most 4 GiB. Were any pass run,
        // it would take gigabytes and minutes; the refusal comes first.
        var file = ReluChain(100, 2048);
        file.Validate();
        using var model = DeviceModel.Load(file, TestDevice.Cpu);
        var input = new HostTensor(1, 3, 2048, 2048);
        var e = Assert.Throws<DeviceMemoryException>(() => new Explainer(model).Explain(input, new GradCam(),
            new ExplainOptions { MemoryBudgetBytes = 1 }))!;
        Assert.That(e.Message, Does.StartWith("out of memory before starting: explaining one image needs 6.4 GiB of activations over 104 nodes, more than the memory budget of "));
        Assert.That(TestDevice.Cpu.MemoryBudgetBytes, Is.LessThanOrEqualTo(4L << 30));
    }
}
