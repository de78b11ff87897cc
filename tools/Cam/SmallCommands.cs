using CamEngine.IO;
using System.CommandLine;
using System.Globalization;
using CamEngine.Methods;
using CamEngine.Onnx;

namespace CamEngine.Cli;

internal static class ConvertCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("convert",
            "Reads an ONNX model with CamEngine's own bounded protobuf reader, folds BatchNormalization into the preceding "
            + "convolutions, and writes a CamEngine model (safetensors with the graph in its metadata). Unsupported operators "
            + "are refused with the operator and node name (see models/README.md).");
        var onnx = new Argument<string>("MODEL.onnx") { Description = "the ONNX model" };
        var output = CliOptions.Text("--out", "FILE", "output file (required); written through a temp file, never over an existing one unless --overwrite", "-o");
        var overwrite = CliOptions.Flag("--overwrite", "replace FILE if it exists");
        var mean = CliOptions.Text("--mean", "R,G,B", "input normalization mean (default ImageNet 0.485,0.456,0.406)");
        var std = CliOptions.Text("--std", "R,G,B", "input normalization std (default ImageNet 0.229,0.224,0.225)");
        var resize = CliOptions.Text("--resize", "N", "resize the shorter image side to N before the centre crop (default floor(size * 256 / 224))");
        var scale = CliOptions.Text("--scale", "S", "pixel scale before the mean: a number or 1/N (default 1/255; 1 keeps 0..255)");
        var order = CliOptions.Text("--channel-order", "ORDER", "rgb (default) or bgr");
        var preprocess = CliOptions.Text("--preprocess", "FILE", "a preprocessing ONNX model (ML.NET's ResNetPreprocess.onnx style) whose pixel transform is recorded instead of --mean/--std/--scale/--channel-order");
        var labels = CliOptions.Text("--labels", "FILE", "class labels, one per line, stored in the model");
        command.Arguments.Add(onnx);
        foreach (var o in new Option[] { output, overwrite, mean, std, resize, scale, order, preprocess, labels })
            command.Options.Add(o);
        command.SetAction(r =>
        {
            string outPath = r.Get(output) ?? throw new UsageException("missing -o OUTPUT.safetensors");
            string input = r.GetValue(onnx)!;
            if (!File.Exists(input))
                throw new CamEngineException($"no such file: {PrintableText.Escape(input)}");
            string? channelOrder = r.Get(order) is { } co ? CliOptions.Choice("--channel-order", co, "rgb", "bgr") : null;
            byte[]? preprocessBytes = null;
            if (r.Get(preprocess) is { } pf)
            {
                foreach (var o in new[] { mean, std, scale, order })
                {
                    if (r.Has(o))
                        throw new UsageException($"--preprocess sets the pixel transform; drop {o.Name}");
                }
                preprocessBytes = BoundedReader.ReadAllBytes(pf, OnnxConversion.MaxFileBytes);
            }
            var options = new OnnxConvertOptions
            {
                Mean = r.GetFloats(mean, 3), Std = r.GetFloats(std, 3),
                ResizeShorter = r.Has(resize) ? r.GetInt(resize, 0, 1, 65536) : null,
                Scale = ParseScale(r.Get(scale)), ChannelOrder = channelOrder, PreprocessOnnx = preprocessBytes,
                Labels = r.Get(labels) is { } lf ? CamModel.ReadLabels(lf).Where(l => l.Length > 0).ToArray() : null,
            };
            var plan = new OutputPlan(Path.GetDirectoryName(Path.GetFullPath(outPath))!, r.GetValue(overwrite), resume: false);
            plan.Prepare();
            plan.CheckFree([Path.GetFileName(outPath)]);
            cli.Stage = "converting the model";
            var bytes = OnnxConversion.Convert(BoundedReader.ReadAllBytes(input, OnnxConversion.MaxFileBytes), options);
            var summary = CamModel.Inspect(bytes);
            cli.Stage = $"writing {PrintableText.Escape(outPath)}";
            plan.Write(Path.GetFileName(outPath), bytes);
            cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {PrintableText.Escape(outPath)}: {summary.Layers.Count} nodes, {summary.ParameterCount:N0} parameters, input {ModelSummary.FormatShape(summary.InputShape)}, output {ModelSummary.FormatShape(summary.OutputShape)}"));
            if (summary.SuggestedLayers.Count > 0)
                cli.Out.WriteLine($"suggested CAM layer: {PrintableText.Escape(summary.SuggestedLayers[0])}");
            return 0;
        });
        return command;
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
            throw new UsageException($"--scale must be a positive number or 1/N, got '{PrintableText.Escape(v)}'");
        return r;
    }
}

internal static partial class InfoCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("info",
            "Prints the layers (name, operator, output shape), the parameter count, the input preprocessing and the layers that make good CAM targets, best first (the head's input, then one stage output per grid), with their module paths and how --layout auto reads them.");
        var model = CliOptions.Model();
        command.Arguments.Add(model);
        command.SetAction(r =>
        {
            string path = r.GetValue(model)!;
            var s = CamModel.Inspect(path);
            var o = cli.Out;
            o.WriteLine($"model {PrintableText.Escape(path)}");
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"input {PrintableText.Escape(s.InputName)} (N,{string.Join(",", s.InputShape)}); output {PrintableText.Escape(s.OutputName)} {ModelSummary.FormatShape(s.OutputShape)}; {s.ParameterCount:N0} parameters"));
            o.WriteLine($"preprocessing: {PrintableText.Escape(s.Preprocessing)}");
            if (s.Labels == null)
                o.WriteLine("labels: none");
            else
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"labels: {s.Labels.Count} ({string.Join(", ", s.Labels.Take(5).Select(PrintableText.Escape))}{(s.Labels.Count > 5 ? ", ..." : "")})"));
            int width = Math.Max(10, s.Layers.Count == 0 ? 0 : s.Layers.Max(n => PrintableText.Escape(n.Name).Length));
            o.WriteLine($"{"layer (output tensor)".PadRight(width)}  {"op",-8}  shape");
            foreach (var n in s.Layers)
                o.WriteLine($"{PrintableText.Escape(n.Name).PadRight(width)}  {PrintableText.Escape(n.Op),-8}  {ModelSummary.FormatShape(n.Shape)}");
            WriteSuggestions(o, s);
            return 0;
        });
        return command;
    }
}

internal static partial class InfoCommand
{
    /// <summary>The suggested layers, best first: the module path that names each (what --layer takes, as a forward
    /// hook names the module), its output tensor, and how --layout auto reads it.</summary>
    internal static void WriteSuggestions(TextWriter o, ModelSummary s)
    {
        var shown = s.Suggestions.Take(5).ToList();
        o.WriteLine(shown.Count == 0 ? "suggested CAM layers: none (no layer is a spatial or token grid)" : "suggested CAM layers (--layer), best first:");
        foreach (var x in shown)
        {
            string grid = string.Create(CultureInfo.InvariantCulture, $"{x.Layout} ({x.Channels}, {x.Height}, {x.Width})");
            o.WriteLine(x.Module != null
                ? $"  {PrintableText.Escape(x.Module)}  ({PrintableText.Escape(x.Tensor)}, {grid})"
                : $"  {PrintableText.Escape(x.Tensor)}  ({grid})");
        }
    }
}

internal static class MethodsCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("methods",
            "Lists every explanation method (the names --method takes) with a line on what it computes and its paper, and under it "
            + "the parameters `cam explain --param KEY=VALUE` sets, with their defaults. --method also takes pytorch-grad-cam's and "
            + "TorchCAM's class names (GradCAMPlusPlus, KPCA_CAM, SmoothGradCAMpp...), case ignored.");
        command.SetAction(_ =>
        {
            int width = MethodCatalog.All.Max(m => m.Name.Length);
            foreach (var m in MethodCatalog.All)
            {
                cli.Out.WriteLine($"{m.Name.PadRight(width)}  {m.Summary}. {m.Paper}");
                foreach (var p in m.Parameters)
                    cli.Out.WriteLine($"{"",-4}{(p.Key + "=" + p.Default),-16}  {p.Description}");
            }
            return 0;
        });
        return command;
    }
}

internal static class DevicesCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("devices",
            "Lists the managed CPU backend and every accelerator ILGPU sees: the --device kind that opens it, its memory (host memory for "
            + "the CPU backends), and whether --device auto uses it (the first CUDA device, else the first OpenCL device, else the managed "
            + "CPU backend `cpu`; `ilgpu-cpu` is ILGPU's CPU accelerator, which runs the GPU kernels slowly).");
        command.SetAction(_ =>
        {
            foreach (var d in Program.SafeDevices())
                cli.Out.WriteLine(d);
            var auto = CamModel.ListDevices().FirstOrDefault(d => d.UsedByAuto);
            if (auto != null)
                cli.Out.WriteLine($"auto selects: {auto.Kind} ({auto.Name})");
            return 0;
        });
        return command;
    }
}

internal static class PredictCommand
{
    public static Command Build(CliContext cli)
    {
        var command = new Command("predict",
            "Prints the K highest raw scores (logits) and softmax probabilities per image. For a model whose output is an embedding "
            + "(no labels, no linear head: e.g. the ResNet-18 featurizer) it says so and prints the K largest embedding values, without probabilities.");
        var model = CliOptions.Model();
        command.Arguments.Add(model);
        var inputs = InputArgs.AddTo(command, shard: false);
        var top = CliOptions.Text("--top", "K", "classes per image, highest first (default 5)");
        var labels = CliOptions.Labels();
        var device = CliOptions.Device();
        var batch = CliOptions.Text("--batch", "N", "images per forward pass (default 8)");
        foreach (var o in new Option[] { top, labels, device, batch })
            command.Options.Add(o);
        command.SetAction(r =>
        {
            int k = r.GetInt(top, 5, 1, 1_000_000);
            int n = r.GetInt(batch, 8, 1, 4096);
            var (_, files) = inputs.Resolve(r);
            using var run = new RunHarness(cli, "predict", r.GetValue(model)!, Shard.All);
            var m = run.LoadModel(r.Get(device), n, r.Get(labels));
            bool embedding = m.IsEmbedding;
            if (embedding)
            {
                cli.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"the model's output is a {m.OutputShape.Aggregate(1, (a, b) => a * b)}-d embedding, not class scores: the largest values are shown, without probabilities"));
            }
            foreach (var chunk in run.Batches(files, n))
            {
                run.Stage("classifying");
                var ranked = m.Predict(chunk.Select(c => c.Input).ToList(), k);
                for (int i = 0; i < chunk.Count; i++)
                {
                    cli.Out.WriteLine(PrintableText.Escape(chunk[i].Stem));
                    foreach (var p in ranked[i])
                    {
                        string label = p.Label != null ? " " + PrintableText.Escape(p.Label) : "";
                        cli.Out.WriteLine(embedding
                            ? string.Create(CultureInfo.InvariantCulture, $"  channel {p.ClassIndex,4}: {p.Logit:G5}")
                            : string.Create(CultureInfo.InvariantCulture, $"  {p.ClassIndex,5}{label}: logit {p.Logit:G5}, p {p.Probability:F4}"));
                    }
                }
            }
            return 0;
        });
        return command;
    }
}
