using BenchmarkDotNet.Attributes;
using CamEngine.Autodiff;
using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Training;

namespace CamEngine.Bench;

/// <summary>
/// Reverse-pass and higher-order query costs relative to a forward pass, on a network with ResNet-18-sized
/// stages (3x3 convs of 64, 64 and 128 channels at 56, 28 and 14 pixels, max-pooling between them, GAP, linear
/// head), batch 1, on the backend named by CAMENGINE_DEVICE (default: ILGPU's CPU accelerator).
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*Autodiff*' --job Short
/// </summary>
public class AutodiffBenchmarks
{
    private Backend _backend = null!;
    private DeviceModel _model = null!;
    private Tensor _input = null!;
    private Tensor _seed = null!;
    private ForwardPass _pass = null!;
    private string _layer = "";
    private int[] _directions = [];

    [GlobalSetup]
    public void Setup()
    {
        _backend = Devices.Open(Environment.GetEnvironmentVariable(Devices.EnvironmentVariable) ?? "ilgpu-cpu");
        var file = GapCnn.Create(3, 56, [64, 64, 128], 10, seed: 1, Preprocessing.ImageNet(56, 56));
        _model = DeviceModel.Load(file, _backend);
        var rng = new Random(2);
        _input = _backend.Upload(Enumerable.Range(0, 3 * 56 * 56).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), 1, 3, 56, 56);
        _pass = _model.Forward(_input);
        var seed = new float[10];
        seed[3] = 1;
        _seed = _backend.Upload(seed, 1, 10);
        _layer = "/block3/relu/Relu_output_0";
        _directions = Enumerable.Range(0, 64).Select(i => i * 397 % (128 * 14 * 14)).ToArray();
        // Validate, then time: the jet and reverse paths of the exact diagonal agree.
        var score = ScoreFunction.LogSoftmax(3);
        var a = HigherOrder.Diagonal(_model, _pass, 0, _layer, score, _directions);
        var b = HigherOrder.Diagonal(_model, _pass, 0, _layer, score, _directions, forceJets: true);
        for (int i = 0; i < _directions.Length; i++)
        {
            if (Math.Abs(a.Third[i] - b.Third[i]) > 1e-3 * Math.Abs(a.Third[i]) + 1e-9)
                throw new InvalidOperationException($"diagonal paths disagree at {i}: {a.Third[i]} vs {b.Third[i]}");
        }
    }

    [Benchmark(Baseline = true)]
    public void Forward()
    {
        using var p = _model.Forward(_input);
        _backend.Synchronize();
    }

    [Benchmark]
    public void BackwardToInput()
    {
        using var g = _model.Backward(_pass, _seed, new BackwardRequest { Input = true });
        _backend.Synchronize();
    }

    [Benchmark]
    public void BackwardToLayer()
    {
        using var g = _model.Backward(_pass, _seed, new BackwardRequest { Layers = [_layer] });
        _backend.Synchronize();
    }

    [Benchmark]
    public void BackwardWithWeights()
    {
        using var g = _model.Backward(_pass, _seed, new BackwardRequest { Parameters = true });
        _backend.Synchronize();
    }

    /// <summary>Exact diagonal d^1..3 of log-softmax at the last block for 64 elements, one third-order jet each.</summary>
    [Benchmark]
    public double DiagonalThirdOrderJets64() =>
        HigherOrder.Diagonal(_model, _pass, 0, _layer, ScoreFunction.LogSoftmax(3), _directions, forceJets: true).Third[0];

    /// <summary>The same query for every element of the layer (25,088) by the reverse path: 10 reverse passes.</summary>
    [Benchmark]
    public double DiagonalThirdOrderReverseAll() =>
        HigherOrder.Diagonal(_model, _pass, 0, _layer, ScoreFunction.LogSoftmax(3)).Third[0];

    [GlobalCleanup]
    public void Cleanup()
    {
        _pass.Dispose();
        _input.Dispose();
        _seed.Dispose();
        _model.Dispose();
        _backend.Dispose();
    }
}
