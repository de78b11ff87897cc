using BenchmarkDotNet.Attributes;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Bench;

/// <summary>
/// Grad-CAM end to end (upload, forward, reverse pass to the layer, map, post-processing) on a bundled model,
/// batch 1 and 8, on the ILGPU backend. Run from the repository root:
/// dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*GradCam*'
/// </summary>
public class GradCamBenchmarks
{
    private Backend _backend = null!;
    private DeviceModel _model = null!;
    private HostTensor _input = null!;
    private Explainer _explainer = null!;

    [Params("tiny_resnet", "tiny_gapcnn")]
    public string Model { get; set; } = "";

    [Params(1, 8)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string path = Path.Combine(FindRoot(), "models", Model + ".safetensors");
        _backend = Devices.Open(Environment.GetEnvironmentVariable(Devices.EnvironmentVariable) ?? "ilgpu-cpu");
        _model = DeviceModel.Load(ModelFile.Load(path), _backend);
        var shape = _model.Graph.InputShape;
        var rng = new Random(3);
        int n = Batch * shape[0] * shape[1] * shape[2];
        _input = new HostTensor([Batch, .. shape], Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray());
        _explainer = new Explainer(_model);
        _explainer.Explain(_input, new GradCam()); // compile the kernels before timing
    }

    [Benchmark]
    public int GradCam() => _explainer.Explain(_input, new GradCam()).Count;

    [GlobalCleanup]
    public void Cleanup()
    {
        _model.Dispose();
        _backend.Dispose();
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("run the benchmarks from inside the repository (Engine.sln not found)");
    }
}
