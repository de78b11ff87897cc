using System.Globalization;
using CamEngine.Model;

namespace CamEngine;

/// <summary>One layer of a model as <see cref="ModelSummary"/> lists it.</summary>
/// <param name="Name">The layer's output tensor (what <see cref="Methods.ExplainOptions.Layers"/> takes).</param>
/// <param name="Op">The operator (Conv, Relu, Gemm...).</param>
/// <param name="Shape">The output shape of one image.</param>
public sealed record LayerInfo(string Name, string Op, IReadOnlyList<int> Shape);

/// <summary>A layer <c>cam info</c> suggests for CAM methods, with how <c>--layout auto</c> reads it.</summary>
/// <param name="Tensor">The layer's output tensor.</param>
/// <param name="Module">The shortest module path that names it (what a forward hook would name), or null.</param>
/// <param name="Layout">How <c>--layout auto</c> reads it: nchw, nhwc or tokens:K.</param>
/// <param name="Channels">Channels of the (C, h, w) grid methods see.</param>
/// <param name="Height">Grid height.</param>
/// <param name="Width">Grid width.</param>
public sealed record LayerSuggestion(string Tensor, string? Module, string Layout, int Channels, int Height, int Width);

/// <summary>
/// What a model file holds, read without opening a device (<see cref="CamModel.Inspect(string)"/>): its layers,
/// input, output, parameter count, preprocessing and labels; <c>cam info</c> prints it.
/// </summary>
public sealed class ModelSummary
{
    internal ModelSummary(ModelFile file)
        : this(file.Graph, file.ParameterCount)
    {
    }

    internal ModelSummary(ModelGraph g, long parameterCount)
    {
        Graph = g;
        InputName = g.InputName;
        InputShape = g.InputShape;
        OutputName = g.OutputName;
        OutputShape = g.OutputShape;
        ParameterCount = parameterCount;
        Layers = g.Nodes.Select(n => new LayerInfo(n.Output, n.Op, n.Shape)).ToList();
        SuggestedLayers = g.SuggestedLayers().ToList();
        var layouts = Methods.LayerLayouts.Of(g);
        Suggestions = SuggestedLayers.Select(layer =>
        {
            var node = g.FindByOutput(layer)!;
            string? module = ModelGraph.ModulePaths(node.Name).FirstOrDefault(p => g.ResolveLayer(p).Output == layer);
            var r = layouts.Read(node, Methods.LayerLayout.Auto);
            return new LayerSuggestion(layer, module, r.Layout.ToString(), r.Channels, r.Height, r.Width);
        }).ToList();
        Labels = g.Labels;
        var p = g.Preprocessing;
        string pixels = p.Scale == Model.Preprocessing.DefaultScale ? "RGB / 255" : string.Create(CultureInfo.InvariantCulture, $"RGB * {p.Scale}");
        if (p.ChannelOrder == Model.Preprocessing.Bgr)
            pixels += " as BGR";
        if (p.MeanImage != null)
            pixels += $", minus mean image '{p.MeanImage}'";
        Preprocessing = string.Create(CultureInfo.InvariantCulture,
            $"resize shorter side to {p.ResizeShorter}, centre crop {p.Height}x{p.Width}, {pixels}, mean [{string.Join(", ", p.Mean)}], std [{string.Join(", ", p.Std)}]");
    }

    /// <summary>The input tensor's name.</summary>
    public string InputName { get; }

    /// <summary>One image's input shape (C, H, W).</summary>
    public IReadOnlyList<int> InputShape { get; }

    /// <summary>The output tensor's name.</summary>
    public string OutputName { get; }

    /// <summary>One image's output shape.</summary>
    public IReadOnlyList<int> OutputShape { get; }

    /// <summary>Weights and biases, counted.</summary>
    public long ParameterCount { get; }

    /// <summary>Every layer in execution order.</summary>
    public IReadOnlyList<LayerInfo> Layers { get; }

    /// <summary>Layers that make good CAM targets, deepest first; the first is the default layer.</summary>
    public IReadOnlyList<string> SuggestedLayers { get; }

    /// <summary>The graph (for the command line's layer descriptions).</summary>
    internal ModelGraph Graph { get; }

    /// <summary><see cref="SuggestedLayers"/> with their module paths and how <c>--layout auto</c> reads each.</summary>
    public IReadOnlyList<LayerSuggestion> Suggestions { get; }

    /// <summary>The class labels stored in the model; null when it has none.</summary>
    public IReadOnlyList<string>? Labels { get; }

    /// <summary>How photos become inputs, in words (resize, crop, scale, channel order, mean, std).</summary>
    public string Preprocessing { get; }

    /// <summary>A shape as text: <c>(3,224,224)</c>.</summary>
    /// <param name="shape">The shape.</param>
    public static string FormatShape(IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return Tensors.TensorShape.Format(shape.ToArray());
    }
}
