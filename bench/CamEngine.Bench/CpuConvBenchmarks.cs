using BenchmarkDotNet.Attributes;
using CamEngine.Backends;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// ResNet-18's conv layers (batch 1, 224x224 input), forward and backward-data, on the managed CPU backend
/// (<c>cpu</c>) and ILGPU's CPU accelerator (<c>ilgpu-cpu</c>). GlobalSetup checks both results against the
/// reference backend before anything is timed; GFLOP/s = the MFLOP printed at setup / the mean time.
/// Run: dotnet run -c Release --project bench/CamEngine.Bench -- --filter '*CpuConv*' --job Short
/// (CAMENGINE_BENCH_DEVICES=cpu skips the slow ILGPU accelerator.)
/// </summary>
public class CpuConvBenchmarks
{
    private Backend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!, _dx = null!;
    private ConvShape _s;

    /// <summary>Backend: <c>cpu</c> (managed SIMD) or <c>ilgpu-cpu</c>.</summary>
    [ParamsSource(nameof(DeviceList))]
    public string Device { get; set; } = "";

    /// <summary>The backends compared: CAMENGINE_BENCH_DEVICES (comma-separated), default <c>cpu,ilgpu-cpu</c>.</summary>
    public static IEnumerable<string> DeviceList =>
        (Environment.GetEnvironmentVariable("CAMENGINE_BENCH_DEVICES") ?? "cpu,ilgpu-cpu")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A ResNet-18 layer.</summary>
    [Params("stem7x7s2", "c64s56", "c128s28", "c256s14", "c512s7", "proj1x1s2")]
    public string Layer { get; set; } = "";

    /// <summary>The geometry of each named layer (N, C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G).</summary>
    internal static ConvShape Shape(string layer) => layer switch
    {
        "stem7x7s2" => new ConvShape(1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1),
        "c64s56" => new ConvShape(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "c128s28" => new ConvShape(1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "c256s14" => new ConvShape(1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "c512s7" => new ConvShape(1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "proj1x1s2" => new ConvShape(1, 64, 56, 56, 128, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
        _ => throw new ArgumentException($"unknown layer {layer}"),
    };

    /// <summary>Flops of one forward (or backward-data) pass: 2 * K * C/G * KH * KW * N * OH * OW.</summary>
    internal static double Flops(ConvShape s) => 2.0 * s.WeightLength * s.N * s.OH * s.OW;

    [GlobalSetup]
    public void Setup()
    {
        _s = Shape(Layer);
        var s = _s;
        _backend = Devices.Open(Device);
        var rng = new Random(1);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var xs = R(s.N * s.C * s.H * s.W);
        var ws = R((int)s.WeightLength);
        var bs = R(s.K);
        var dys = R(s.N * s.K * s.OH * s.OW);
        _x = _backend.Upload(xs, s.N, s.C, s.H, s.W);
        _w = _backend.Upload(ws, s.K, s.CPerGroup, s.KH, s.KW);
        _b = _backend.Upload(bs, s.K);
        _y = _backend.Upload(dys, s.N, s.K, s.OH, s.OW);
        _dx = _backend.Allocate(s.N, s.C, s.H, s.W);

        // Validate, then time: forward into a scratch output, backward-data from _y (holding dy).
        using var reference = new ReferenceBackend();
        using var xr = reference.Upload(xs, s.N, s.C, s.H, s.W);
        using var wr = reference.Upload(ws, s.K, s.CPerGroup, s.KH, s.KW);
        using var br = reference.Upload(bs, s.K);
        using var dyr = reference.Upload(dys, s.N, s.K, s.OH, s.OW);
        using var yr = reference.Allocate(s.N, s.K, s.OH, s.OW);
        using var dxr = reference.Allocate(s.N, s.C, s.H, s.W);
        reference.Conv2d(xr, wr, br, yr, s);
        reference.Conv2dBackwardData(dyr, wr, dxr, s);
        using (var y = _backend.Allocate(s.N, s.K, s.OH, s.OW))
        {
            _backend.Conv2d(_x, _w, _b, y, s);
            Check(_backend.Download(y), ReferenceBackend.DownloadDouble(yr), "forward");
        }
        _backend.Conv2dBackwardData(_y, _w, _dx, s);
        Check(_backend.Download(_dx), ReferenceBackend.DownloadDouble(dxr), "backward-data");
        Console.WriteLine($"// {Layer} validated against the reference backend on {_backend.DeviceDescription}; "
                          + $"{Flops(s) / 1e6:F1} MFLOP per forward or backward-data");
    }

    private static void Check(float[] got, double[] want, string what)
    {
        for (int i = 0; i < got.Length; i++)
        {
            if (!(Math.Abs(got[i] - want[i]) <= 1e-3 + 1e-4 * Math.Abs(want[i])))
                throw new InvalidOperationException($"conv {what} mismatch at {i}: {got[i]} vs {want[i]}");
        }
    }

    [Benchmark]
    public void Forward()
    {
        _backend.Conv2d(_x, _w, _b, Out, _s);
        _backend.Synchronize();
    }

    private Tensor? _out;

    private Tensor Out => _out ??= _backend.Allocate(_s.N, _s.K, _s.OH, _s.OW);

    [Benchmark]
    public void BackwardData()
    {
        _backend.Conv2dBackwardData(_y, _w, _dx, _s);
        _backend.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _b, _y, _dx, _out })
            t?.Dispose();
        _backend.Dispose();
    }
}
