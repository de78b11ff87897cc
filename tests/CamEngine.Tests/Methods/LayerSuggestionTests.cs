using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// The layers <c>cam info</c> suggests (<see cref="LayerLayouts.Suggest"/>): first the head's input (the layer users
/// pick: ResNet <c>layer4</c>, ConvNeXt <c>features</c>, ShuffleNet <c>conv5</c>, MNASNet <c>layers</c>; ViT the last
/// block's <c>ln_1</c>, Swin <c>norm</c>), then the stage outputs, on every CNN family fixture and on hand-made
/// ViT- and Swin-shaped graphs.
/// </summary>
[TestFixture]
public sealed class LayerSuggestionTests
{
    // family, opset, the module paths of the suggestions in order (the first is the default layer).
    [TestCase("resnet18", 17, "layer4,layer3,layer2,layer1,relu")]
    [TestCase("resnet50", 11, "layer4,layer3,layer2,layer1,relu")]
    [TestCase("convnext", 17, "features,features.5,features.3,features.1")]
    [TestCase("convnext", 13, "features,features.5,features.3,features.1")]
    [TestCase("shufflenet_v2", 17, "conv5,stage3,stage2,maxpool,conv1")]
    [TestCase("mnasnet", 11, "layers,layers.11,layers.9,layers.8,layers.8.0.layers.2")]
    [TestCase("mobilenet_v2", 17, "features,features.13,features.6,features.3,features.1")]
    [TestCase("efficientnet_b0", 17, "features,features.5,features.3.0.block.1,features.2.0.block.1,features.1")]
    [TestCase("vgg11_bn", 17, "avgpool,features.27,features.20,features.13,features.6,features.2")]
    [TestCase("squeezenet1_1", 11, "classifier.2,features.7,features.4,features.1")]
    [TestCase("densenet121", 17, "/Relu_output_0,features.transition2.conv,features.transition1.conv,features.relu0")]
    public void Families_suggest_the_head_input_then_the_stage_outputs(string family, int opset, string modules)
    {
        var g = OnnxConverter.ConvertFile(Path.Combine(FixturePaths.Root, "families", $"{family}.opset{opset}.onnx")).Graph;
        var suggested = g.SuggestedLayers().ToList();
        var expected = modules.Split(',').Select(m => g.ResolveLayer(m).Output).ToList();
        Assert.That(suggested, Is.EqualTo(expected));
        Assert.That(g.DefaultTargetLayer().Output, Is.EqualTo(expected[0]));
        var layouts = LayerLayouts.Of(g);
        var sides = suggested.Select(l => layouts.Read(g.FindByOutput(l)!, LayerLayout.Auto)).Select(r => r.Height * r.Width).ToList();
        Assert.That(sides, Is.Ordered, "coarsest grid first");
        Assert.That(sides.Distinct().Count(), Is.EqualTo(sides.Count), "one layer per grid");
    }

    private static GraphNode N(string name, string op, string[] inputs, int[] shape, Dictionary<string, double[]>? attrs = null) =>
        new() { Name = name, Op = op, Inputs = inputs, Output = name, Shape = shape, Attrs = attrs ?? [] };

    private static ModelGraph Graph(params GraphNode[] nodes) => new()
    {
        InputName = "x", InputShape = [3, 16, 16], OutputName = nodes[^1].Output, Nodes = nodes,
        Preprocessing = new Preprocessing { Height = 16, Width = 16, ResizeShorter = 16, Mean = [0, 0, 0], Std = [1, 1, 1] },
    };

    // One ViT block on 1 + 4x4 tokens of 8 channels: ln_1, attention (2 heads), residual, ln_2, MLP, residual.
    private static IEnumerable<GraphNode> VitBlock(string p, string x) =>
    [
        N(p + "ln_1", Ops.LayerNorm, [x], [17, 8]),
        N(p + "qkv", Ops.MatMul, [p + "ln_1"], [17, 24]),
        N(p + "heads", Ops.Reshape, [p + "qkv"], [17, 6, 4]),
        N(p + "q", Ops.Transpose, [p + "heads"], [6, 17, 4], new() { ["perm"] = [0, 2, 1, 3] }),
        N(p + "scores", "batched-matmul", [p + "q", p + "q"], [6, 17, 17]),
        N(p + "softmax", Ops.Softmax, [p + "scores"], [6, 17, 17]),
        N(p + "mix", "batched-matmul", [p + "softmax", p + "q"], [6, 17, 4]),
        N(p + "merge", Ops.Reshape, [p + "mix"], [17, 8]),
        N(p + "attn_out", Ops.Add, [x, p + "merge"], [17, 8]),
        N(p + "ln_2", Ops.LayerNorm, [p + "attn_out"], [17, 8]),
        N(p + "fc1", Ops.MatMul, [p + "ln_2"], [17, 16]),
        N(p + "fc2", Ops.MatMul, [p + "fc1"], [17, 8]),
        N(p + "out", Ops.Add, [p + "attn_out", p + "fc2"], [17, 8]),
    ];

    [Test]
    public void A_ViT_suggests_the_last_blocks_ln_1_read_as_tokens_with_the_class_token_dropped()
    {
        var nodes = new List<GraphNode>
        {
            N("conv_proj", Ops.Conv, ["x"], [8, 4, 4]),
            N("flat", Ops.Reshape, ["conv_proj"], [8, 16]),
            N("tokens", Ops.Transpose, ["flat"], [16, 8], new() { ["perm"] = [0, 2, 1] }),
            N("with_cls", Ops.Concat, ["tokens"], [17, 8], new() { ["axis"] = [1] }), // the class token is a parameter
        };
        nodes.AddRange(VitBlock("b0/", "with_cls"));
        nodes.AddRange(VitBlock("b1/", "b0/out"));
        nodes.Add(N("ln", Ops.LayerNorm, ["b1/out"], [17, 8]));
        nodes.Add(N("cls", Ops.Slice, ["ln"], [1, 8]));
        nodes.Add(N("head", Ops.Gemm, ["cls"], [10]));
        var g = Graph([.. nodes]);
        var suggested = g.SuggestedLayers().ToList();
        Assert.That(suggested, Is.EqualTo(new[] { "b1/ln_1", "b0/ln_1" }), "the final ln feeds only the class token to the head");
        var r = LayerLayouts.Of(g).Read(g.FindByOutput("b1/ln_1")!, LayerLayout.Auto);
        Assert.That(r.Layout, Is.EqualTo(LayerLayout.Tokens(1)), r.Describe());
        Assert.That((r.Channels, r.Height, r.Width), Is.EqualTo((8, 4, 4)));
    }

    [Test]
    public void A_Swin_suggests_its_final_norm_read_channels_last()
    {
        var g = Graph(
            N("patch", Ops.Conv, ["x"], [8, 4, 4]),
            N("nhwc", Ops.Transpose, ["patch"], [4, 4, 8], new() { ["perm"] = [0, 2, 3, 1] }),
            N("embed_norm", Ops.LayerNorm, ["nhwc"], [4, 4, 8]),
            N("windows", Ops.Reshape, ["embed_norm"], [4, 4, 8]),
            N("attn", "window-attention", ["windows"], [4, 4, 8]),
            N("block", Ops.Add, ["embed_norm", "attn"], [4, 4, 8]),
            N("merge", Ops.Slice, ["block"], [2, 2, 8]),                 // patch merging: the grid is lost ...
            N("merge_cat", Ops.Concat, ["merge"], [2, 2, 32], new() { ["axis"] = [3] }),
            N("merge_norm", Ops.LayerNorm, ["merge_cat"], [2, 2, 32]),  // ... and a LayerNorm over the last axis says nhwc
            N("reduce", Ops.MatMul, ["merge_norm"], [2, 2, 16]),
            N("norm", Ops.LayerNorm, ["reduce"], [2, 2, 16]),
            N("nchw", Ops.Transpose, ["norm"], [16, 2, 2], new() { ["perm"] = [0, 3, 1, 2] }),
            N("pool", Ops.GlobalAvgPool, ["nchw"], [16, 1, 1]),
            N("flat", Ops.Flatten, ["pool"], [16]),
            N("head", Ops.Gemm, ["flat"], [10]));
        var suggested = g.SuggestedLayers().ToList();
        Assert.That(suggested[0], Is.EqualTo("norm"), "the norm, not the permute after it");
        var r = LayerLayouts.Of(g).Read(g.FindByOutput("norm")!, LayerLayout.Auto);
        Assert.That(r.Layout, Is.EqualTo(LayerLayout.Nhwc), r.Describe());
        Assert.That((r.Channels, r.Height, r.Width), Is.EqualTo((16, 2, 2)));
        Assert.That(suggested, Does.Contain("block"), "the 4x4 stage's residual output");
    }
}
