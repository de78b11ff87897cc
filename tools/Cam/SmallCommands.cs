using System.Globalization;
using CamEngine.Backends;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using CamEngine.Tensors;

namespace CamEngine.Cli;

internal static class ConvertCommand
{
    private const string Help = """
        usage: cam convert MODEL.onnx -o MODEL.safetensors [options]

        Reads an ONNX model with CamEngine's own bounded protobuf reader, folds BatchNormalization into the
        preceding convolutions, and writes a CamEngine model (safetensors with the graph in its metadata).
        Unsupported operators are refused with the operator and node name (see models/README.md).

        options:
          -o, --out FILE        output file (required); written atomically
          --overwrite           replace FILE if it exists
          --mean R,G,B          input normalization mean (default ImageNet 0.485,0.456,0.406)
          --std R,G,B           input normalization std (default ImageNet 0.229,0.224,0.225)
          --resize N            resize the shorter image side to N before the centre crop
                                (default floor(size * 256 / 224))
          --scale S             pixel scale before the mean: a number or 1/N (default 1/255; 1 keeps 0..255)
          --channel-order ORDER rgb (default) or bgr
          --preprocess FILE     a preprocessing ONNX model (ML.NET's ResNetPreprocess.onnx style: Split/Concat
                                to BGR, Sub of a mean image, scalar scale, per-channel std) whose pixel
                                transform is recorded instead of --mean/--std/--scale/--channel-order; a mean
                                image is stored as the tensor preprocessing.mean_image
          --labels FILE         class labels, one per line, stored in the model
        """;

    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv, ["--out", "--mean", "--std", "--resize", "--labels", "--scale", "--channel-order", "--preprocess"], [Outputs.Flag],
            new Dictionary<string, string> { ["-o"] = "--out" });
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count != 1)
            throw new UsageException("expected exactly one ONNX file");
        string output = a.Get("--out") ?? throw new UsageException("missing -o OUTPUT.safetensors");
        string input = a.Positionals[0];
        if (!File.Exists(input))
            throw new CamEngineException($"no such file: {input}");
        string[]? labels = a.Get("--labels") is { } lf ? File.ReadAllLines(lf).Where(l => l.Length > 0).ToArray() : null;
        string? order = a.Get("--channel-order");
        if (order is not (null or Preprocessing.Rgb or Preprocessing.Bgr))
            throw new UsageException($"--channel-order must be rgb or bgr, got '{order}'");
        byte[]? preprocess = null;
        if (a.Get("--preprocess") is { } pf)
        {
            foreach (var o in new[] { "--mean", "--std", "--scale", "--channel-order" })
            {
                if (a.Has(o))
                    throw new UsageException($"--preprocess sets the pixel transform; drop {o}");
            }
            if (!File.Exists(pf))
                throw new CamEngineException($"no such file: {pf}");
            preprocess = ReadBounded(pf);
        }
        var options = new OnnxConvertOptions
        {
            Mean = a.GetFloats("--mean", 3),
            Std = a.GetFloats("--std", 3),
            ResizeShorter = a.Has("--resize") ? a.GetInt("--resize", 0, 1, 65536) : null,
            Scale = ParseScale(a.Get("--scale")),
            ChannelOrder = order,
            PreprocessOnnx = preprocess,
            Labels = labels,
        };
        Outputs.CheckWritable(output, a.Has(Outputs.Flag));
        var model = OnnxConverter.Convert(ReadBounded(input), options);
        model.Save(output);
        var g = model.Graph;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {output}: {g.Nodes.Count} nodes, {model.ParameterCount:N0} parameters, input {TensorShape.Format(g.InputShape)}, output {TensorShape.Format(g.OutputShape)}"));
        stdout.WriteLine($"suggested CAM layer: {g.DefaultTargetLayer().Output}");
        return 0;
    }

    /// <summary>A positive finite number, or 1/N.</summary>
    private static float? ParseScale(string? v)
    {
        if (v == null)
            return null;
        bool ok;
        float r;
        if (v.StartsWith("1/", StringComparison.Ordinal))
        {
            ok = float.TryParse(v.AsSpan(2), NumberStyles.Float, CultureInfo.InvariantCulture, out float d) && d > 0;
            r = 1f / d;
        }
        else
        {
            ok = float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out r);
        }
        if (!ok || !(r > 0) || !float.IsFinite(r))
            throw new UsageException($"--scale must be a positive number or 1/N, got '{v}'");
        return r;
    }

    private static byte[] ReadBounded(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > Array.MaxLength)
            throw new CamEngineException($"{path}: ONNX files above 2 GiB need external data, which is not supported");
        return File.ReadAllBytes(path);
    }
}

internal static class InfoCommand
{
    private const string Help = """
        usage: cam info MODEL.safetensors

        Prints the layers (name, operator, output shape), the parameter count, the input preprocessing and the
        layers that make good CAM targets (the last spatial layers).
        """;

    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv, [], []);
        if (a.Has("--help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (a.Positionals.Count != 1)
            throw new UsageException("expected exactly one model file");
        var model = ModelFile.Load(a.Positionals[0]);
        var g = model.Graph;
        var p = g.Preprocessing;
        stdout.WriteLine($"model {a.Positionals[0]}");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"input {g.InputName} (N,{string.Join(",", g.InputShape)}); output {g.OutputName} {TensorShape.Format(g.OutputShape)}; {model.ParameterCount:N0} parameters"));
        string pixels = p.Scale == Preprocessing.DefaultScale ? "RGB / 255" : string.Create(CultureInfo.InvariantCulture, $"RGB * {p.Scale}");
        if (p.ChannelOrder == Preprocessing.Bgr)
            pixels += " as BGR";
        if (p.MeanImage != null)
            pixels += $", minus mean image '{p.MeanImage}'";
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"preprocessing: resize shorter side to {p.ResizeShorter}, centre crop {p.Height}x{p.Width}, {pixels}, mean [{string.Join(", ", p.Mean)}], std [{string.Join(", ", p.Std)}]"));
        int width = Math.Max(10, g.Nodes.Max(n => n.Output.Length));
        stdout.WriteLine($"{"layer (output tensor)".PadRight(width)}  {"op",-8}  shape");
        foreach (var n in g.Nodes)
            stdout.WriteLine($"{n.Output.PadRight(width)}  {n.Op,-8}  {TensorShape.Format(n.Shape)}");
        stdout.WriteLine($"suggested CAM layers: {string.Join(", ", g.SuggestedLayers().Take(3))}");
        return 0;
    }
}

internal static class MethodsCommand
{
    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv, [], []);
        if (a.Has("--help"))
        {
            stdout.WriteLine("usage: cam methods\n\nLists every explanation method (the names --method takes) with a line on what it\n" +
                             "computes and its paper, and under it the parameters `cam explain --param KEY=VALUE` sets, with their defaults.");
            return 0;
        }
        if (a.Positionals.Count != 0)
            throw new UsageException($"unexpected argument '{a.Positionals[0]}'");
        int width = MethodCatalog.All.Max(m => m.Name.Length);
        foreach (var m in MethodCatalog.All)
        {
            stdout.WriteLine($"{m.Name.PadRight(width)}  {m.Summary}. {m.Paper}");
            foreach (var p in m.Parameters)
                stdout.WriteLine($"{"",-4}{(p.Key + "=" + p.Default),-16}  {p.Description}");
        }
        return 0;
    }
}

internal static class DevicesCommand
{
    public static int Run(string[] argv, TextWriter stdout)
    {
        var a = Args.Parse(argv, [], []);
        if (a.Has("--help"))
        {
            stdout.WriteLine("""
                usage: cam devices

                Lists the managed CPU backend and every accelerator ILGPU sees: the --device kind that opens it, its
                memory (host memory for the CPU backends), and whether --device auto uses it (the first CUDA device,
                else the first OpenCL device, else the managed CPU backend `cpu`; `ilgpu-cpu` is ILGPU's CPU
                accelerator, which runs the GPU kernels slowly). Then opens the auto device and names it.
                """);
            return 0;
        }
        if (a.Positionals.Count != 0)
            throw new UsageException($"unexpected argument '{a.Positionals[0]}'");
        foreach (var d in Program.SafeDevices())
            stdout.WriteLine(d);
        using var backend = Devices.Open("auto");
        stdout.WriteLine($"auto selects: {backend.Name} ({backend.DeviceDescription})");
        return 0;
    }
}
