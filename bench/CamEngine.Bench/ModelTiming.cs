using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;

namespace CamEngine.Bench;

/// <summary>
/// The engine side of bench/resnet50_torch.py (and any converted model): loads MODEL, times the output-only forward
/// (inference) and the forward that keeps LAYER and what follows plus the reverse pass to LAYER (what Grad-CAM
/// needs; seed 1 on class 281 of every image) on random inputs at batch 1
/// and 8, median of 20 calls (batch 1) or 5 (batch 8) after warm-up, printed in the script's format.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- model MODEL.safetensors LAYER [device]
/// </summary>
internal static class ModelTiming
{
    public static void Run(string[] args)
    {
        if (args.Length < 3)
            throw new ArgumentException("usage: model MODEL.safetensors LAYER [device]");
        string path = args[1], layer = args[2], device = args.Length > 3 ? args[3] : "cpu";
        using var backend = Devices.Open(device);
        using var model = DeviceModel.Load(ModelFile.Load(path), backend);
        var inShape = model.Graph.InputShape;
        int classes = model.Graph.OutputShape.Aggregate(1, (a, b) => a * b);
        foreach (int batch in new[] { 1, 8 })
        {
            var rng = new Random(3);
            int n = batch * inShape.Aggregate(1, (a, b) => a * b);
            using var input = backend.Upload(Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(),
                [batch, .. inShape]);
            var seedData = new float[batch * classes];
            for (int i = 0; i < batch; i++)
                seedData[i * classes + 281 % classes] = 1f;
            using var seed = backend.Upload(seedData, batch, classes);
            // As the engine runs them: inference keeps only the output, Grad-CAM keeps the layer and what follows.
            int Forward()
            {
                using var pass = model.ForwardOutput(input);
                backend.Synchronize();
                return pass.Output.Length;
            }
            int ToLayer()
            {
                using var pass = model.ForwardFor(input, [layer]);
                using var g = model.Backward(pass, seed, new BackwardRequest { Layers = [layer] });
                backend.Synchronize();
                return g.Layers.Count;
            }
            // Steady state (tiered JIT, packed weights, scratch buffers), as TorchLike does.
            for (int i = 0; i < Math.Max(2, 16 / batch); i++)
                ToLayer();
            int reps = batch == 1 ? 20 : 5;
            long bytes0 = GC.GetTotalAllocatedBytes(true);
            int gcs0 = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2);
            double f = TorchLike.Median(reps, Forward);
            Console.WriteLine(System.FormattableString.Invariant(
                $"  (forward calls: {(GC.GetTotalAllocatedBytes(true) - bytes0) / 1e6 / (reps + 3):F2} MB managed allocation per call, {GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2) - gcs0} collections)"));
            long bytes = GC.GetTotalAllocatedBytes(true);
            int gcs = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2);
            double l = TorchLike.Median(reps, ToLayer);
            Console.WriteLine(System.FormattableString.Invariant(
                $"  (Grad-CAM calls: {(GC.GetTotalAllocatedBytes(true) - bytes) / 1e6 / (reps + 3):F2} MB managed allocation per call, {GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2) - gcs} collections)"));
            Console.WriteLine(System.FormattableString.Invariant(
                $"batch {batch}: forward {f:F1} ms, Grad-CAM (forward+backward to layer4) {l:F1} ms"));
        }
        Console.WriteLine($"on {backend.DeviceDescription}; VmHWM {TorchLike.PeakRss()}");
    }
}
