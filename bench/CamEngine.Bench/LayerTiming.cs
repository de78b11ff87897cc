using System.Diagnostics;
using System.Globalization;
using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Kernels;

namespace CamEngine.Bench;

/// <summary>
/// `layer`: one conv layer on the CPU backend, in each form asked for, four ways: hot (the same call again), cold
/// (after writing a 64 MB sweep, as a forward finds a layer whose weights it last read a pass ago) and with only the
/// weights cold (the sweep, then x and y read back into cache, as a forward finds a layer whose input the layer
/// before just wrote), and after a 100 ms sleep (the workers parked, as at the start of a call). Medians of 40 rounds, the forms interleaved round by round. With DOTNET_PROCESSOR_COUNT=1 it
/// runs on one thread.
/// Run: dotnet CamEngine.Bench.dll layer N C K H KH STRIDE [FORM,FORM...] [--pool] (square planes, pad KH/2; --pool: with
/// the ReLU and a 3x3/2 max pool in the same call, as a ResNet stem; forms from
/// <see cref="ConvForm"/>, the layer's own choice always first)
/// </summary>
internal static unsafe class LayerTiming
{
    /// <summary>The layer of `layer` and `loop conv` from its six numbers N C K H KH STRIDE: square planes, pad KH/2.</summary>
    internal static ConvShape Shape(string[] six)
    {
        int[] v = six.Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
        int n = v[0], c = v[1], k = v[2], h = v[3], kh = v[4], stride = v[5], pad = kh / 2;
        return new ConvShape(n, c, h, h, k, kh, kh, stride, stride, pad, pad, pad, pad, 1, 1, 1);
    }

    /// <summary>x, w and b of the layer, uniform in [-1, 1) from <paramref name="rng"/> in that order.</summary>
    internal static (Tensor X, Tensor W, Tensor B) Operands(Backend backend, ConvShape s, Random rng)
    {
        float[] Random(long count) => Enumerable.Range(0, checked((int)count)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = backend.Upload(Random((long)s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        var w = backend.Upload(Random((long)s.K * s.C * s.KH * s.KW), s.K, s.C, s.KH, s.KW);
        var b = backend.Upload(Random(s.K), s.K);
        return (x, w, b);
    }

    /// <summary>A conv form by its name (<see cref="ConvForm"/>), with the names it takes in the error.</summary>
    internal static ConvForm ParseForm(string name) =>
        Enum.TryParse<ConvForm>(name, out var f) && Enum.IsDefined(f) ? f
        : throw new ArgumentException($"a form is one of {string.Join(", ", Enum.GetNames<ConvForm>())}, got '{name}'");

    public static void Run(string[] args)
    {
        if (args.Length < 7)
            throw new ArgumentException("usage: layer N C K H KH STRIDE [FORM,FORM...] [--pool]");
        var s = Shape(args[1..7]);
        int n = s.N, c = s.C, k = s.K, kh = s.KH;
        var forms = new List<ConvForm?> { null };
        bool pooled = args.Skip(7).Contains("--pool");
        var formArgs = args.Skip(7).Where(a => a != "--pool").ToArray();
        if (formArgs.Length > 0)
            forms.AddRange(formArgs[0].Split(',').Select(f => (ConvForm?)ParseForm(f)));
        // With --pool: the conv, ReLU and a 3x3/2 max pool (pad 1) in one call, as a ResNet stem runs.
        var p = new PoolShape(n, k, s.OH, s.OW, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false);
        using var backend = Devices.Open("cpu");
        var (x, w, b) = Operands(backend, s, new Random(5));
        using var xd = x;
        using var wd = w;
        using var bd = b;
        using var y = pooled ? backend.Allocate(n, k, (s.OH - 1) / 2 + 1, (s.OW - 1) / 2 + 1) : backend.Allocate(n, k, s.OH, s.OW);
        var sweep = new float[16 << 20];
        var xm = backend.HostMemory(x)!.Value;
        var ym = backend.HostMemory(y)!.Value;
        float Touch(Memory<float> m)
        {
            var span = m.Span;
            float acc = 0;
            for (int j = 0; j < span.Length; j += 16)
                acc += span[j];
            return acc;
        }
        float sink = 0;
        double flops = 2.0 * n * k * s.OH * s.OW * c * kh * kh;
        void Run()
        {
            if (pooled)
                backend.Conv2dMaxPool(x, w, b, y, s, EpilogueActivation.Relu, 0f, 0f, p);
            else
                backend.Conv2d(x, w, b, y, s);
        }
        Console.WriteLine($"layer {c}->{k} {kh}x{kh}/{s.StrideH} {s.H}->{s.OH}{(pooled ? " + ReLU + max pool 3x3/2" : "")} batch {n}, {backend.DeviceDescription}; "
                          + $"chosen form {CpuConv.ChooseForm(s, CpuSimd.Vector512)}; ms hot / cold / weights cold / after a 100 ms sleep, medians of 40");
        void Sweep()
        {
            for (int j = 0; j < sweep.Length; j += 16)
                sweep[j] += 1f;
        }
        // Per form: hot, cold, weights cold, after a sleep.
        var times = forms.Select(_ => Enumerable.Range(0, 4).Select(_ => new List<double>()).ToArray()).ToArray();
        double Timed()
        {
            long t0 = Stopwatch.GetTimestamp();
            Run();
            return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        for (int round = 0; round < 42; round++)
        for (int o = 0; o < forms.Count; o++)
        {
            int i = (round + o) % forms.Count;
            CpuConv.FormOverride = forms[i];
            try
            {
                Run();
                double th = Timed();
                Sweep();
                double tc = Timed();
                Sweep();
                // x and y back into cache: read where they lie.
                sink += Touch(xm) + Touch(ym);
                double tw = Timed();
                Thread.Sleep(100);
                double ts = Timed();
                if (round >= 2)
                {
                    times[i][0].Add(th);
                    times[i][1].Add(tc);
                    times[i][2].Add(tw);
                    times[i][3].Add(ts);
                }
            }
            finally
            {
                CpuConv.FormOverride = null;
            }
        }
        GC.KeepAlive(sink);
        static double M(List<double> l) => l.Order().ElementAt(l.Count / 2);
        for (int i = 0; i < forms.Count; i++)
        {
            var m = times[i].Select(M).ToArray();
            Console.WriteLine(FormattableString.Invariant(
                $"  {(forms[i]?.ToString() ?? "chosen"),-9} {m[0],7:F3} {m[1],7:F3} {m[2],7:F3} {m[3],7:F3}   GFLOP/s {flops / m[0] / 1e6:F0} / {flops / m[1] / 1e6:F0} / {flops / m[2] / 1e6:F0}"));
        }
    }
}
