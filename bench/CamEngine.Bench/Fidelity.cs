using System.Globalization;
using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Model;

namespace CamEngine.Bench;

/// <summary>
/// How far the CPU backend's logits are from the double-precision reference backend's on one model, per conv form:
/// the per-layer choice, then every layer forced to the direct form, then every 3x3 stride-1 layer forced to Winograd
/// (the rest as chosen). Prints max |cpu - reference| over the logits divided by max |reference logit| (the fidelity
/// budget is 1e-4), and the same for the input gradient of logit 281 summed over the batch.
/// Run: dotnet CamEngine.Bench.dll fidelity MODEL.safetensors [batch]
/// </summary>
internal static class Fidelity
{
    public static void Run(string[] args)
    {
        if (args.Length < 2)
            throw new ArgumentException("usage: fidelity MODEL.safetensors [batch]");
        int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1;
        var file = ModelFile.Load(args[1]);
        using var reference = new ReferenceBackend();
        using var cpu = new CpuBackend();
        using var refModel = DeviceModel.Load(file, reference);
        using var cpuModel = DeviceModel.Load(file, cpu);
        var inShape = refModel.Graph.InputShape;
        int classes = refModel.Graph.OutputShape.Aggregate(1, (a, b) => a * b);
        var rng = new Random(3);
        var data = Enumerable.Range(0, batch * inShape.Aggregate(1, (a, b) => a * b))
            .Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var seedData = new float[batch * classes];
        for (int i = 0; i < batch; i++)
            seedData[i * classes + 281 % classes] = 1f;

        (double[] Logits, double[] Grad) Reference()
        {
            using var x = reference.Upload(data, [batch, .. inShape]);
            using var seed = reference.Upload(seedData, batch, classes);
            using var pass = refModel.Forward(x);
            using var g = refModel.Backward(pass, seed, new BackwardRequest { Input = true });
            return (ReferenceBackend.DownloadDouble(pass.Output), ReferenceBackend.DownloadDouble(g.Input!));
        }
        (float[] Logits, float[] Grad) Cpu()
        {
            using var x = cpu.Upload(data, [batch, .. inShape]);
            using var seed = cpu.Upload(seedData, batch, classes);
            using var pass = cpuModel.Forward(x);
            using var g = cpuModel.Backward(pass, seed, new BackwardRequest { Input = true });
            return (cpu.Download(pass.Output), cpu.Download(g.Input!));
        }

        var t0 = DateTime.UtcNow;
        var (rl, rg) = Reference();
        Console.WriteLine($"fidelity {Path.GetFileName(args[1])} batch {batch}: reference (double) pass in {(DateTime.UtcNow - t0).TotalSeconds:F0} s");
        foreach (var form in new ConvForm?[] { null, ConvForm.Direct, ConvForm.Winograd })
        {
            CpuConv.FormOverride = form;
            try
            {
                var (cl, cg) = Cpu();
                Console.WriteLine(FormattableString.Invariant(
                    $"fidelity {Path.GetFileName(args[1])} batch {batch} forms {(form?.ToString() ?? "chosen per layer"),-18} logits {Rel(cl, rl):E2}  input gradient {Rel(cg, rg):E2}  (of the largest)"));
            }
            finally
            {
                CpuConv.FormOverride = null;
            }
        }
    }

    private static double Rel(float[] a, double[] r)
    {
        double scale = r.Max(Math.Abs), diff = 0;
        for (int i = 0; i < a.Length; i++)
            diff = Math.Max(diff, Math.Abs(a[i] - r[i]));
        return diff / scale;
    }
}
