using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Model;
using CamEngine.Tests.Graph.Ops;
using NUnit.Framework;

namespace CamEngine.Tests.Graph;

/// <summary>
/// The executor's conv fusion: on a lean forward pass a conv applies the residual addition and the ReLU or clip after
/// it, or the SiLU (sigmoid and multiplication, either operand order) after it (<see cref="Backend.Conv2dFused"/>),
/// when the intermediate tensors are not needed. The fused forward equals the
/// unfused one (<see cref="DeviceModel.Forward"/>, which pins every tensor) on the managed CPU backend and on ILGPU's
/// CPU accelerator, plain and shaped like a GPU (whose tiled conv applies the epilogue in its output stage), and a
/// requested layer inside a chain stops the fusion there and is read back with its unfused value.
/// </summary>
[TestFixture]
internal sealed class ConvFusionTests
{
    private static Dictionary<string, double[]> Conv(int k, int kernel, int pad) => OpGraph.A(
        ("kernel", [kernel, kernel]), ("strides", [1, 1]), ("pads", [pad, pad, pad, pad]), ("dilations", [1, 1]),
        ("group", [1]), ("out_channels", [k]));

    private static (ModelFile File, string[] Names) Residual()
    {
        var g = new OpGraph([3, 6, 5], seed: 31);
        string Conv2(string input, int c, int k, int kernel, int pad, string tag) => g.Add(CamEngine.Model.Ops.Conv, Conv(k, kernel, pad),
            OpGraph.P(("weight", g.Weight(tag + ".w", [k, c, kernel, kernel])), ("bias", g.Weight(tag + ".b", [k]))), [input]);
        var c1 = Conv2("input", 3, 4, 3, 1, "c1");
        var r1 = g.Add(CamEngine.Model.Ops.Relu); // conv + ReLU: the older FusedRelu path
        var c2 = Conv2(r1, 4, 4, 3, 1, "c2");
        var s2 = g.Add(CamEngine.Model.Ops.Add, inputs: [c2, r1]); // residual after the conv: fused with the ReLU below
        var r2 = g.Add(CamEngine.Model.Ops.Relu);
        var c3 = Conv2(r2, 4, 4, 1, 0, "c3");
        var k3 = g.Add(CamEngine.Model.Ops.Clip, OpGraph.A(("min", [0]), ("max", [0.5]))); // conv + clip
        var c4 = Conv2(k3, 4, 4, 3, 1, "c4");
        var s4 = g.Add(CamEngine.Model.Ops.Add, inputs: [k3, c4]); // residual first: the addition still writes over the conv output
        var k4 = g.Add(CamEngine.Model.Ops.Clip, OpGraph.A(("min", [-0.2]), ("max", [0.3])));
        var c5 = Conv2(k4, 4, 20, 3, 1, "c5");
        var g5 = g.Add(CamEngine.Model.Ops.Sigmoid); // SiLU as exported: x * sigmoid(x), fused into the conv
        var m5 = g.Add(CamEngine.Model.Ops.Mul, inputs: [c5, g5]);
        var c6 = Conv2(m5, 20, 4, 1, 0, "c6");
        var g6 = g.Add(CamEngine.Model.Ops.Sigmoid);
        g.Add(CamEngine.Model.Ops.Mul, inputs: [g6, c6]); // the sigmoid first
        g.Add(CamEngine.Model.Ops.GlobalAvgPool);
        g.Add(CamEngine.Model.Ops.Flatten, OpGraph.A(("axis", [1])));
        g.Add(CamEngine.Model.Ops.Gemm, OpGraph.A(("transB", [1]), ("alpha", [1]), ("beta", [1])),
            OpGraph.P(("weight", g.Weight("fc.w", [3, 4])), ("bias", g.Weight("fc.b", [3]))));
        return (g.File(), [c1, r1, c2, s2, r2, c3, k3, c4, s4, k4, c5, g5, m5]);
    }

    private static IEnumerable<TestCaseData> Backends()
    {
        yield return new TestCaseData("cpu").SetName("Fused_forward_equals_unfused_on_cpu");
        yield return new TestCaseData("ilgpu").SetName("Fused_forward_equals_unfused_on_ilgpu_cpu");
        yield return new TestCaseData("tiled").SetName("Fused_forward_equals_unfused_on_ilgpu_cpu_shaped_as_gpu");
    }

    [TestCaseSource(nameof(Backends))]
    public void Fused_forward_equals_unfused_and_requested_layers_stay_readable(string kind)
    {
        using var tiled = kind == "tiled" ? IlgpuBackend.CreateTiledCpu() : null;
        Backend backend = kind switch { "cpu" => TestDevice.Cpu, "ilgpu" => TestDevice.Ilgpu, _ => tiled! };
        double tol = kind == "tiled" ? 1e-5 : 0;
        var (file, names) = Residual();
        using var model = DeviceModel.Load(file, backend);
        Assert.That(model.FusedConvs(null), Is.EqualTo(new[] { "n2_conv", "n5_conv", "n7_conv", "n10_conv", "n13_conv" }),
            "fused on ForwardOutput");

        var data = TensorAssert.Random(new Random(4), 2 * 3 * 6 * 5);
        using var x = backend.Upload(data, 2, 3, 6, 5);
        using var full = model.Forward(x);
        var ilgpu = backend as IlgpuBackend;
        long reads = ilgpu?.HostReads ?? 0, writes = ilgpu?.HostWrites ?? 0;
        using var lean = model.ForwardOutput(x);
        if (ilgpu != null)
        {
            Assert.That(ilgpu.HostReads, Is.EqualTo(reads), "no device-to-host copy inside the fused pass");
            Assert.That(ilgpu.HostWrites, Is.EqualTo(writes), "no host-to-device copy inside the fused pass");
        }
        TensorAssert.Close(backend.Download(lean.Output), backend.Download(full.Output), tol, tol, "logits, fused vs unfused");

        // A requested intermediate (the addition before a ReLU) stops that fusion at the addition and is readable.
        string s2 = names[3], k3 = names[6];
        Assert.That(model.FusedConvs([s2]), Is.EqualTo(new[] { "n2_conv" }), "fused up to the requested addition");
        using (var upTo = model.ForwardFor(x, [s2]))
            TensorAssert.Close(backend.Download(upTo[s2]), backend.Download(full[s2]), tol, tol, "requested addition");
        // A requested chain output (a clip) keeps the fusion before it, and reads the fused value.
        Assert.That(model.FusedConvs([k3]), Is.EqualTo(new[] { "n2_conv", "n5_conv" }), "fused before the requested clip");
        using (var upTo = model.ForwardFor(x, [k3]))
            TensorAssert.Close(backend.Download(upTo[k3]), backend.Download(full[k3]), tol, tol, "requested clip output");
        Assert.That(model.FusedConvs([names[5]]), Is.EqualTo(new[] { "n2_conv" }), "a requested conv output is not fused");

        // SiLU: a requested SiLU output keeps its fusion and reads the fused value; a requested conv output or sigmoid
        // inside it stops that fusion.
        string c5 = names[10], g5 = names[11], m5 = names[12];
        Assert.That(model.FusedConvs([m5]), Is.EqualTo(new[] { "n2_conv", "n5_conv", "n7_conv", "n10_conv" }), "fused up to the requested SiLU");
        using (var upTo = model.ForwardFor(x, [m5]))
            TensorAssert.Close(backend.Download(upTo[m5]), backend.Download(full[m5]), tol, tol, "requested SiLU output");
        Assert.That(model.FusedConvs([c5]), Is.EqualTo(new[] { "n2_conv", "n5_conv", "n7_conv" }), "a requested conv before a SiLU");
        Assert.That(model.FusedConvs([g5]), Is.EqualTo(new[] { "n2_conv", "n5_conv", "n7_conv" }), "a requested sigmoid");
        using (var upTo = model.ForwardFor(x, [g5]))
            TensorAssert.Close(backend.Download(upTo[g5]), backend.Download(full[g5]), tol, tol, "requested sigmoid");
    }
}
