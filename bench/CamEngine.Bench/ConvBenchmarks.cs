using BenchmarkDotNet.Attributes;
using CamEngine.Backends;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// Conv2d forward and backward-data on the ILGPU backend (the CPU accelerator here, CUDA on a GPU machine via
/// CAMENGINE_DEVICE). GlobalSetup checks the kernel against the reference backend before anything is timed.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*Conv*'
/// </summary>
[MemoryDiagnoser]
public class ConvBenchmarks
{
    private Backend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!, _dx = null!;
    private ConvShape _s;

    /// <summary>Channels in and out; spatial size; 3x3, stride 1, pad 1 (a ResNet stage-2 style layer).</summary>
    [Params(16, 64)]
    public int Channels { get; set; }

    [Params(28)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = Devices.Open(Environment.GetEnvironmentVariable(Devices.EnvironmentVariable) ?? "ilgpu-cpu");
        _s = new ConvShape(1, Channels, Size, Size, Channels, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        var rng = new Random(1);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var xs = R(Channels * Size * Size);
        var ws = R((int)_s.WeightLength);
        var bs = R(Channels);
        _x = _backend.Upload(xs, 1, Channels, Size, Size);
        _w = _backend.Upload(ws, Channels, Channels, 3, 3);
        _b = _backend.Upload(bs, Channels);
        _y = _backend.Allocate(1, Channels, _s.OH, _s.OW);
        _dx = _backend.Allocate(1, Channels, Size, Size);

        // Validate, then time.
        using var reference = new ReferenceBackend();
        using var xr = reference.Upload(xs, 1, Channels, Size, Size);
        using var wr = reference.Upload(ws, Channels, Channels, 3, 3);
        using var br = reference.Upload(bs, Channels);
        using var yr = reference.Allocate(1, Channels, _s.OH, _s.OW);
        reference.Conv2d(xr, wr, br, yr, _s);
        _backend.Conv2d(_x, _w, _b, _y, _s);
        var got = _backend.Download(_y);
        var want = ReferenceBackend.DownloadDouble(yr);
        for (int i = 0; i < got.Length; i++)
        {
            if (Math.Abs(got[i] - want[i]) > 1e-4 + 1e-4 * Math.Abs(want[i]))
                throw new InvalidOperationException($"conv mismatch at {i}: {got[i]} vs {want[i]}");
        }
        Console.WriteLine($"// validated against the reference backend on {_backend.DeviceDescription}; "
                          + $"{2.0 * _s.WeightLength * _s.OH * _s.OW / 1e6:F1} MFLOP per forward");
    }

    [Benchmark]
    public void Forward()
    {
        _backend.Conv2d(_x, _w, _b, _y, _s);
        _backend.Synchronize();
    }

    [Benchmark]
    public void BackwardData()
    {
        _backend.Conv2dBackwardData(_y, _w, _dx, _s);
        _backend.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _b, _y, _dx })
            t.Dispose();
        _backend.Dispose();
    }
}
