using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>The pixel transform a preprocessing ONNX graph applies to planar RGB bytes (0..255), in the terms of
/// <see cref="CamEngine.Model.Preprocessing"/>: <c>(byte[src(c)] * Scale - Mean[c] - MeanImage[c]) / Std[c]</c>.</summary>
/// <param name="Scale">Product of the scalar Mul/Div constants applied before any mean.</param>
/// <param name="ChannelOrder">"rgb" or "bgr".</param>
/// <param name="Mean">Per-channel mean, in the output channel order.</param>
/// <param name="Std">Per-channel standard deviation, in the output channel order.</param>
/// <param name="MeanImage">A (C, H, W) mean image, or null.</param>
internal sealed record PixelTransform(float Scale, string ChannelOrder, float[] Mean, float[] Std, HostTensor? MeanImage);

/// <summary>
/// Recognises a preprocessing ONNX graph such as ML.NET's <c>ResNetPreprocess.onnx</c> (Split into R, G, B along
/// axis 1, Concat as B, G, R, Sub of a (1, 3, 224, 224) constant MeanImage) and turns it into a
/// <see cref="PixelTransform"/>. The graph's input is taken to be what ML.NET's ExtractPixels produces by default:
/// planar RGB bytes as floats 0..255. Accepted, in this order: channel reorders (Split with size-1 parts and Concat
/// along the channel axis, giving RGB or BGR), Mul/Div by a scalar constant (the pixel scale), one Sub of a
/// constant (a scalar, per-channel (C, 1, 1) or per-pixel (C, H, W) mean, each optionally with a leading 1),
/// one Mul/Div by a scalar or per-channel constant (the std), and Identity anywhere. Anything else is refused
/// with the node and the reason, since an engine that silently skipped a step would feed the model wrong inputs.
/// </summary>
internal static class OnnxPreprocessReader
{
    /// <summary>Where a tensor stands in the recognised sequence.</summary>
    private enum Stage
    {
        Pixels = 0,
        MeanSubtracted = 1,
        Normalized = 2,
    }

    /// <summary>A tensor of the preprocessing graph: which input channel each of its channels is, and its stage.</summary>
    private sealed record Value(int[] Channels, Stage Stage);

    /// <summary>Reads <paramref name="onnx"/> for a model whose input is <paramref name="inputShape"/> (C, H, W).</summary>
    /// <exception cref="InvalidModelFileException">The bytes are not a consistent ONNX model.</exception>
    /// <exception cref="UnsupportedModelException">The graph does something other than the recognised steps.</exception>
    public static PixelTransform Read(ReadOnlySpan<byte> onnx, int[] inputShape, ProtoLimits? limits = null)
    {
        OnnxModel model;
        try
        {
            model = OnnxParser.ParseModel(onnx, limits);
        }
        catch (InvalidModelFileException e)
        {
            throw new InvalidModelFileException($"preprocessing ONNX: {e.Message}", e);
        }
        var g = model.Graph;
        var inits = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        foreach (var t in g.Initializers)
        {
            if (!inits.TryAdd(t.Name, t))
                throw Invalid($"two initializers are named '{t.Name}'");
        }
        var inputs = g.Inputs.Where(v => !inits.ContainsKey(v.Name)).ToList();
        if (inputs.Count != 1)
            throw Unsupported($"the graph has {inputs.Count} non-constant inputs; expected one image input");
        if (g.Outputs.Count != 1)
            throw Unsupported($"the graph has {g.Outputs.Count} outputs; expected one");
        int c = inputShape[0];
        CheckImageShape(inputs[0], inputShape, "input");
        CheckImageShape(g.Outputs[0], inputShape, "output");
        if (c is not (1 or 3))
            throw Unsupported($"the model takes {c} channels; only 1 or 3 can come from an image");

        var values = new Dictionary<string, Value>(StringComparer.Ordinal)
        {
            [inputs[0].Name] = new Value(Enumerable.Range(0, c).ToArray(), Stage.Pixels),
        };
        float scale = 1f;
        float[] mean = new float[c];
        float[] std = Enumerable.Repeat(1f, c).ToArray();
        HostTensor? meanImage = null;

        foreach (var n in g.Nodes)
        {
            string label = $"node '{n.Name}' ({n.OpType})";
            if (n.Domain is not ("" or "ai.onnx"))
                throw Unsupported($"{label}: operator domain '{n.Domain}' is not a preprocessing step");
            if (n.Outputs.Count == 0 || n.Outputs.Any(o => o.Length == 0 || values.ContainsKey(o) || inits.ContainsKey(o)))
                throw Invalid($"{label} has a missing or repeated output name");
            switch (n.OpType)
            {
                case "Identity":
                    values[n.Outputs[0]] = Input(n, values, 0, label);
                    break;
                case "Split":
                {
                    var x = Input(n, values, 0, label);
                    if (x.Stage != Stage.Pixels)
                        throw Unsupported($"{label}: channel reorders must come before the mean subtraction");
                    if (ChannelAxis(n, label) is false)
                        throw Unsupported($"{label}: only splits along the channel axis (1) are recognised");
                    long[] parts = SplitSizes(n, inits, x.Channels.Length, label);
                    if (parts.Length != n.Outputs.Count || parts.Any(p => p < 1) || parts.Sum() != x.Channels.Length)
                        throw Unsupported($"{label}: split sizes [{string.Join(",", parts)}] do not cover the {x.Channels.Length} channels with {n.Outputs.Count} outputs");
                    int at = 0;
                    for (int i = 0; i < parts.Length; i++)
                    {
                        values[n.Outputs[i]] = new Value(x.Channels[at..(at + (int)parts[i])], Stage.Pixels);
                        at += (int)parts[i];
                    }
                    break;
                }
                case "Concat":
                {
                    if (ChannelAxis(n, label) is not true)
                        throw Unsupported($"{label}: only concatenation along the channel axis (1) is recognised");
                    var channels = new List<int>();
                    for (int i = 0; i < n.Inputs.Count; i++)
                    {
                        var x = Input(n, values, i, label);
                        if (x.Stage != Stage.Pixels)
                            throw Unsupported($"{label}: channel reorders must come before the mean subtraction");
                        channels.AddRange(x.Channels);
                    }
                    values[n.Outputs[0]] = new Value([.. channels], Stage.Pixels);
                    break;
                }
                case "Sub":
                {
                    var x = Input(n, values, 0, label);
                    FullImage(x, c, label);
                    if (x.Stage != Stage.Pixels)
                        throw Unsupported($"{label}: only one mean subtraction, before any division, is recognised");
                    var k = Constant(n, inits, 1, label);
                    var kind = Broadcast(k, inputShape, label);
                    if (kind == ConstantKind.PerPixel)
                        meanImage = new HostTensor([.. inputShape], (float[])k.Floats!.Clone());
                    else
                        mean = PerChannel(k, kind, c);
                    values[n.Outputs[0]] = x with { Stage = Stage.MeanSubtracted };
                    break;
                }
                case "Mul" or "Div":
                {
                    var x = Input(n, values, 0, label);
                    FullImage(x, c, label);
                    var k = Constant(n, inits, 1, label);
                    var kind = Broadcast(k, inputShape, label);
                    var factor = PerChannel(k, kind, c);
                    if (factor.Any(f => f == 0))
                        throw Unsupported($"{label}: a factor of zero erases the image");
                    bool divide = n.OpType == "Div";
                    if (x.Stage == Stage.Pixels && kind == ConstantKind.Scalar)
                    {
                        scale = divide ? scale / factor[0] : scale * factor[0];
                        values[n.Outputs[0]] = x;
                    }
                    else if (x.Stage != Stage.Normalized && kind != ConstantKind.PerPixel)
                    {
                        // (v - mean) * f = (v - mean) / (1 / f); before a Sub, mean stays 0.
                        std = factor.Select(f => divide ? f : 1f / f).ToArray();
                        values[n.Outputs[0]] = x with { Stage = Stage.Normalized };
                    }
                    else
                    {
                        throw Unsupported($"{label}: only a scalar pixel scale before the mean and one per-channel std are recognised");
                    }
                    break;
                }
                default:
                    throw Unsupported($"{label} is not a recognised preprocessing step");
            }
        }

        if (!values.TryGetValue(g.Outputs[0].Name, out var output))
            throw Unsupported($"output '{g.Outputs[0].Name}' is not computed from the image input");
        FullImage(output, c, $"output '{g.Outputs[0].Name}'");
        string order = output.Channels.SequenceEqual(Enumerable.Range(0, c)) ? "rgb"
            : c == 3 && output.Channels.SequenceEqual([2, 1, 0]) ? "bgr"
            : throw Unsupported($"the channel order [{string.Join(",", output.Channels)}] is neither RGB nor BGR");
        if (!float.IsFinite(scale) || !(scale > 0) || std.Any(s => !float.IsFinite(s) || !(s > 0)) || mean.Any(m => !float.IsFinite(m)))
            throw Unsupported("the recognised scale, mean or std is not finite and positive");
        return new PixelTransform(scale, order, mean, std, meanImage);
    }

    private enum ConstantKind
    {
        Scalar,
        PerChannel,
        PerPixel,
    }

    private static void CheckImageShape(OnnxValueInfo v, int[] shape, string role)
    {
        var d = v.Dims;
        if (v.ElemType != (int)OnnxDataType.Float || d == null || d.Length != 4
            || d[1] != shape[0] || d[2] != shape[1] || d[3] != shape[2] || d[0] is not (null or 1))
        {
            string got = d == null ? "no shape" : "(" + string.Join(",", d.Select(x => x?.ToString() ?? "?")) + ")";
            throw Unsupported($"{role} '{v.Name}' is {got}; expected float (1,{string.Join(",", shape)}) to match the model input");
        }
    }

    private static Value Input(OnnxNode n, Dictionary<string, Value> values, int i, string label)
    {
        if (i >= n.Inputs.Count || !values.TryGetValue(n.Inputs[i], out var v))
            throw Unsupported($"{label}: input {i} is not the image or a tensor computed from it");
        return v;
    }

    private static void FullImage(Value x, int c, string label)
    {
        if (x.Channels.Length != c || x.Channels.Distinct().Count() != c)
            throw Unsupported($"{label}: applies to channels [{string.Join(",", x.Channels)}], not to a whole {c}-channel image");
    }

    /// <summary>True for axis 1 (or -3 of a 4-D tensor), false otherwise; null when the attribute is absent.</summary>
    private static bool? ChannelAxis(OnnxNode n, string label)
    {
        var a = n.Attr("axis");
        if (a == null)
            return n.OpType == "Split" ? false : throw Invalid($"{label} has no axis");
        return a.I is 1 or -3;
    }

    private static long[] SplitSizes(OnnxNode n, Dictionary<string, OnnxTensor> inits, int channels, string label)
    {
        if (n.Attr("split") is { } a)
            return [.. a.Ints];
        if (n.Inputs.Count > 1 && n.Inputs[1].Length > 0)
        {
            var t = inits.GetValueOrDefault(n.Inputs[1])
                ?? throw Unsupported($"{label}: the split sizes must be a constant initializer");
            return t.Ints ?? throw Unsupported($"{label}: the split sizes must be integers");
        }
        int outputs = n.Outputs.Count;
        if (outputs < 1 || channels % outputs != 0)
            throw Unsupported($"{label}: {channels} channels do not split evenly into {outputs} outputs");
        return Enumerable.Repeat((long)(channels / outputs), outputs).ToArray();
    }

    private static OnnxTensor Constant(OnnxNode n, Dictionary<string, OnnxTensor> inits, int i, string label)
    {
        if (n.Inputs.Count != 2)
            throw Unsupported($"{label}: expected the image and one constant");
        var t = inits.GetValueOrDefault(n.Inputs[i])
            ?? throw Unsupported($"{label}: operand '{n.Inputs[i]}' must be a constant initializer (image first, constant second)");
        if (t.Floats == null)
            throw Unsupported($"{label}: constant '{t.Name}' has data type {t.DataType}; expected float");
        foreach (float v in t.Floats)
        {
            if (!float.IsFinite(v))
                throw Invalid($"{label}: constant '{t.Name}' holds a non-finite value ({v})");
        }
        return t;
    }

    /// <summary>Classifies a constant that broadcasts against (1, C, H, W) without changing its shape.</summary>
    private static ConstantKind Broadcast(OnnxTensor t, int[] chw, string label)
    {
        var d = t.Dims.AsEnumerable();
        if (t.Dims.Length == 4)
        {
            if (t.Dims[0] != 1)
                throw Unsupported($"{label}: constant '{t.Name}' has batch dimension {t.Dims[0]}");
            d = t.Dims.Skip(1);
        }
        long[] s = [.. d];
        if (t.Count == 1 && s.All(x => x == 1))
            return ConstantKind.Scalar;
        if (s.Length == 3 && s[0] == chw[0] && s[1] == 1 && s[2] == 1)
            return ConstantKind.PerChannel;
        if (s.Length == 3 && s[0] == chw[0] && s[1] == chw[1] && s[2] == chw[2])
            return ConstantKind.PerPixel;
        throw Unsupported($"{label}: constant '{t.Name}' of shape ({string.Join(",", t.Dims)}) is not a scalar, (C,1,1) or (C,H,W) = ({string.Join(",", chw)})");
    }

    private static float[] PerChannel(OnnxTensor t, ConstantKind kind, int c) =>
        kind == ConstantKind.Scalar ? Enumerable.Repeat(t.Floats![0], c).ToArray() : (float[])t.Floats!.Clone();

    private static InvalidModelFileException Invalid(string message) => new($"preprocessing ONNX: {message}");

    private static UnsupportedModelException Unsupported(string message) =>
        new($"preprocessing ONNX is not recognised: {message}; recognised steps are Split/Concat channel reorders "
            + "to RGB or BGR, Mul/Div by a scalar pixel scale, Sub of a constant mean (scalar, (C,1,1) or (C,H,W)), "
            + "Mul/Div by a per-channel std, and Identity");
}
