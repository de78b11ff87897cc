using CamEngine.Backends;
using CamEngine.Backends.Cpu;
using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Tests.Graph.Ops;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// <see cref="Backend.Conv2dMaxPool"/>: a stem (conv, activation, 3x3 stride-2 max pool) whose conv rows the CPU
/// backend pools as it makes them (<see cref="PlanarConv.ForwardMaxPool"/>: bands of pool rows, a ring of three conv
/// rows, each band's last pool row made after all bands from a side buffer) gives the bits of the conv then the pool
/// run one after the other, on geometries with one band and many, odd channel counts, pool rows shorter than a vector,
/// both pool paddings, a batch split into chunks; other pools and the ILGPU backends (plain, and shaped as a GPU, whose
/// tiled conv applies the ReLU in its output stage) take the two passes with the same bits. In a graph, a lean forward
/// runs the conv, its ReLU and the pool as one node unless the conv's or ReLU's value is requested.
/// </summary>
[TestFixture]
internal sealed class ConvMaxPoolTests
{
    // n, c, h, w, k, kernel, stride, pad, pool pad, activation, bias
    [TestCase(1, 3, 64, 64, 10, 7, 2, 3, 1, EpilogueActivation.Relu, true)] // a stem: 32x32 conv rows, 8 bands
    [TestCase(3, 3, 45, 39, 7, 7, 2, 3, 1, EpilogueActivation.Relu, true)] // odd sizes: pool rows of 10 (scalar), 3 images
    [TestCase(2, 2, 40, 70, 5, 3, 1, 1, 0, EpilogueActivation.None, false)] // stride-1 conv, unpadded pool
    [TestCase(1, 3, 10, 40, 6, 3, 2, 1, 1, EpilogueActivation.Clip, true)] // 5 conv rows, 3 pool rows: one band
    [TestCase(1, 4, 12, 36, 8, 3, 2, 1, 1, EpilogueActivation.Silu, true)] // 6 conv rows, 3 pool rows; SiLU
    [TestCase(2, 1, 46, 33, 4, 5, 1, 2, 1, EpilogueActivation.Relu, true)] // 23 pool rows: a short last band
    public void Stem_pooled_as_it_is_made_gives_the_bits_of_conv_then_pool(
        int n, int c, int h, int w, int k, int kernel, int stride, int pad, int poolPad, EpilogueActivation act, bool bias)
    {
        var s = new ConvShape(n, c, h, w, k, kernel, kernel, stride, stride, pad, pad, pad, pad, 1, 1, 1);
        var p = Pool(s, poolPad, 3, 2);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            Assert.That(CpuConv.ChooseForm(s, CpuSimd.Vector512), Is.EqualTo(ConvForm.Planar), "the planar form");
            Assert.That(PlanarConv.PoolFuses(s, p), "the fused path");
        }
        var (fused, plain) = Run(TestDevice.Cpu, s, p, act, bias, 5);
        Assert.That(fused, Is.EqualTo(plain), "fused vs conv then pool");
        Assert.That(plain.Distinct().Count(), Is.GreaterThan(Math.Min(20, plain.Length / 4)), "the outputs are not trivial");
    }

    [Test]
    public void Non_finite_inputs_pool_as_they_do_unfused()
    {
        var s = new ConvShape(2, 3, 40, 38, 7, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1);
        var p = Pool(s, 1, 3, 2);
        var (fused, plain) = Run(TestDevice.Cpu, s, p, EpilogueActivation.Relu, true, 9, nonFinite: true);
        Assert.That(fused, Is.EqualTo(plain));
        Assert.That(plain.Count(float.IsNaN), Is.GreaterThan(0), "a NaN reaches the output");
        Assert.That(plain.Count(float.IsFinite), Is.GreaterThan(plain.Length / 2), "away from it the outputs are finite");
    }

    [Test]
    public void A_batch_in_several_chunks_gives_the_same_bits()
    {
        var s = new ConvShape(3, 3, 30, 34, 5, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1);
        var p = Pool(s, 1, 3, 2);
        long saved = ConvPlan.ChunkFloats;
        try
        {
            ConvPlan.ChunkFloats = 1; // one image a chunk
            Assert.That(ConvPlan.ChunkImages(s, 0), Is.EqualTo(1));
            var (fused, plain) = Run(TestDevice.Cpu, s, p, EpilogueActivation.Relu, true, 6);
            Assert.That(fused, Is.EqualTo(plain));
        }
        finally
        {
            ConvPlan.ChunkFloats = saved;
        }
    }

    [TestCase("cpu", 2, 2)] // a 2x2 pool: the two passes
    [TestCase("ilgpu", 3, 2)]
    [TestCase("tiled", 3, 2)] // ILGPU's CPU accelerator shaped as a GPU: its tiled conv's output stage
    public void Other_pools_and_backends_take_the_two_passes(string backend, int window, int stride)
    {
        var s = new ConvShape(2, 3, 30, 36, 5, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1);
        var p = Pool(s, window == 3 ? 1 : 0, window, stride);
        Assert.That(PlanarConv.PoolFuses(s, p), Is.EqualTo(window == 3));
        using var tiled = backend == "tiled" ? IlgpuBackend.CreateTiledCpu() : null;
        var (fused, plain) = Run(tiled ?? TestDevice.Named(backend), s, p, EpilogueActivation.Relu, true, 7);
        Assert.That(fused, Is.EqualTo(plain));
    }

    [Test]
    public void A_pool_that_does_not_read_the_conv_output_is_refused()
    {
        var b = TestDevice.Cpu;
        var s = new ConvShape(1, 3, 20, 20, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        var p = new PoolShape(1, 4, 19, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false);
        using var x = b.Allocate(1, 3, 20, 20);
        using var w = b.Allocate(4, 3, 3, 3);
        using var y = b.Allocate(1, 4, p.OH, p.OW);
        var e = Assert.Throws<ArgumentException>(() => b.Conv2dMaxPool(x, w, null, y, s, EpilogueActivation.Relu, 0, 0, p));
        Assert.That(e!.Message, Does.Contain("does not read the conv's output"));
    }

    private static PoolShape Pool(ConvShape s, int pad, int window, int stride) =>
        new(s.N, s.K, s.OH, s.OW, window, window, stride, stride, pad, pad, pad, pad, 1, 1, false, false);

    /// <summary>The fused call's output and that of Conv2dFused then MaxPoolValues, on <paramref name="b"/>.</summary>
    private static (float[] Fused, float[] Plain) Run(Backend b, ConvShape s, PoolShape p, EpilogueActivation act, bool withBias, int seed,
        bool nonFinite = false)
    {
        var rng = new Random(seed);
        var data = TensorAssert.Random(rng, s.N * s.C * s.H * s.W);
        if (nonFinite)
        {
            data[s.H * s.W / 2 + 7] = float.NaN; // image 0, channel 0, mid-plane
            data[^5] = float.PositiveInfinity; // the last image's last channel, near its end
        }
        var weights = TensorAssert.Random(rng, (int)s.WeightLength);
        var biases = TensorAssert.Random(rng, s.K);
        using var x = b.Upload(data, s.N, s.C, s.H, s.W);
        using var w = b.Upload(weights, s.K, s.C, s.KH, s.KW);
        using var bias = withBias ? b.Upload(biases, s.K) : null;
        using var y = b.Allocate(p.N, p.C, p.OH, p.OW);
        b.Conv2dMaxPool(x, w, bias, y, s, act, -0.5f, 0.75f, p);
        using var conv = b.Allocate(s.N, s.K, s.OH, s.OW);
        using var y2 = b.Allocate(p.N, p.C, p.OH, p.OW);
        b.Conv2dFused(x, w, bias, null, conv, s, act, -0.5f, 0.75f);
        b.MaxPoolValues(conv, y2, p);
        return (b.Download(y), b.Download(y2));
    }

    [TestCase("cpu")]
    [TestCase("ilgpu")]
    [TestCase("tiled")]
    public void A_lean_forward_pools_the_stem_in_one_node_unless_its_values_are_requested(string kind)
    {
        using var tiled = kind == "tiled" ? IlgpuBackend.CreateTiledCpu() : null;
        var backend = tiled ?? TestDevice.Named(kind);
        var g = new OpGraph([3, 40, 44], seed: 23);
        var conv = g.Add(CamEngine.Model.Ops.Conv, OpGraph.A(("kernel", [7, 7]), ("strides", [2, 2]), ("pads", [3, 3, 3, 3]),
                ("dilations", [1, 1]), ("group", [1]), ("out_channels", [5])),
            OpGraph.P(("weight", g.Weight("c1.w", [5, 3, 7, 7])), ("bias", g.Weight("c1.b", [5]))), ["input"]);
        var relu = g.Add(CamEngine.Model.Ops.Relu);
        var pool = g.Add(CamEngine.Model.Ops.MaxPool, OpGraph.A(("kernel", [3, 3]), ("strides", [2, 2]), ("pads", [1, 1, 1, 1]),
            ("dilations", [1, 1]), ("ceil_mode", [0])));
        var conv2 = g.Add(CamEngine.Model.Ops.Conv, OpGraph.A(("kernel", [3, 3]), ("strides", [1, 1]), ("pads", [1, 1, 1, 1]),
                ("dilations", [1, 1]), ("group", [1]), ("out_channels", [4])),
            OpGraph.P(("weight", g.Weight("c2.w", [4, 5, 3, 3])), ("bias", g.Weight("c2.b", [4]))), [pool]);
        var pool2 = g.Add(CamEngine.Model.Ops.MaxPool, OpGraph.A(("kernel", [3, 3]), ("strides", [2, 2]), ("pads", [1, 1, 1, 1]),
            ("dilations", [1, 1]), ("ceil_mode", [0]))); // straight after a conv, no ReLU
        g.Add(CamEngine.Model.Ops.GlobalAvgPool);
        g.Add(CamEngine.Model.Ops.Flatten, OpGraph.A(("axis", [1])));
        g.Add(CamEngine.Model.Ops.Gemm, OpGraph.A(("transB", [1]), ("alpha", [1]), ("beta", [1])),
            OpGraph.P(("weight", g.Weight("fc.w", [3, 4])), ("bias", g.Weight("fc.b", [3]))));
        using var model = DeviceModel.Load(g.File(), backend);
        string convNode = model.Graph.Nodes.Single(nd => nd.Output == conv).Name;
        string conv2Node = model.Graph.Nodes.Single(nd => nd.Output == conv2).Name;
        Assert.That(model.PooledConvNames(null), Is.EqualTo(new[] { convNode, conv2Node }), "both convs compute their pools");

        var data = TensorAssert.Random(new Random(8), 2 * 3 * 40 * 44);
        using var x = backend.Upload(data, 2, 3, 40, 44);
        using var full = model.Forward(x);
        using (var lean = model.ForwardOutput(x))
            Assert.That(backend.Download(lean.Output), Is.EqualTo(backend.Download(full.Output)), "logits, pooled vs plain");

        // The pool's own output requested: still one node, and readable.
        Assert.That(model.PooledConvNames([pool]), Is.EqualTo(new[] { convNode }));
        using (var upTo = model.ForwardFor(x, [pool]))
            Assert.That(backend.Download(upTo[pool]), Is.EqualTo(backend.Download(full[pool])), "requested pool output");
        // The ReLU's or the conv's value requested: no longer fused there, and readable.
        Assert.That(model.PooledConvNames([relu]), Is.Empty);
        using (var upTo = model.ForwardFor(x, [relu]))
            Assert.That(backend.Download(upTo[relu]), Is.EqualTo(backend.Download(full[relu])), "requested ReLU output");
        Assert.That(model.PooledConvNames([conv]), Is.Empty);
        Assert.That(model.PooledConvNames([conv2]), Is.EqualTo(new[] { convNode }));
    }
}
