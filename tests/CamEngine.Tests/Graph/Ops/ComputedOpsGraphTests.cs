using CamEngine.Backends;
using CamEngine.Graph;
using NUnit.Framework;
using static CamEngine.Tests.Graph.Ops.OpGraph;
using ModelOps = CamEngine.Model.Ops;

namespace CamEngine.Tests.Graph.Ops;

/// <summary>
/// The engine forms the converter lowers Split, Expand, Where and Pad onto, in small graphs on the reference
/// backend in double: the pad along one axis of any rank (forward against the definition, reverse and jets against
/// finite differences), and the broadcasting addition of a zero constant that Expand becomes (its reverse sums the
/// gradient over the broadcast axes).
/// </summary>
[TestFixture]
internal sealed class ComputedOpsGraphTests
{
    private static double[] Forward(OpGraph g, double[] x)
    {
        using var model = DeviceModel.Load(g.File(), new ReferenceBackend());
        return Run(model, x);
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void Pad_along_one_axis_places_the_input_between_constants_and_differentiates(int axis)
    {
        // x (N, 2, 3, 4) padded by [1, 2] along `axis` with 0.75; then tanh, so the jets of orders 2 and 3 are not zero.
        var g = new OpGraph([2, 3, 4]);
        string p = g.Add(ModelOps.Pad, A(("axis", [axis]), ("pads", [1, 2]), ("value", [0.75])));
        var x = g.RandomInput();
        var y = Forward(g, x);
        int[] xs = [2, 2, 3, 4];
        var ys = (int[])xs.Clone();
        ys[axis] += 3;
        Assert.That(y, Has.Length.EqualTo(ys.Aggregate(1, (a, b) => a * b)));
        for (int i = 0; i < y.Length; i++)
        {
            var idx = new int[4];
            for (int k = 3, t = i; k >= 0; k--)
            {
                idx[k] = t % ys[k];
                t /= ys[k];
            }
            idx[axis] -= 1;
            bool inside = idx[axis] >= 0 && idx[axis] < xs[axis];
            double expected = inside ? x[((idx[0] * 2 + idx[1]) * 3 + idx[2]) * 4 + idx[3]] : 0.75;
            Assert.That(y[i], Is.EqualTo(expected), $"element {i}");
        }
        g.Add(ModelOps.Tanh, inputs: [p]);
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Pad_along_an_axis_of_a_rank_5_tensor_differentiates_and_refuses_bad_attributes()
    {
        var g = new OpGraph([2, 3, 4]);
        g.Add(ModelOps.Reshape, A(("shape", [2, 3, 2, 2])));
        g.Add(ModelOps.Pad, A(("axis", [3]), ("pads", [0, 3]), ("value", [-1.5])));
        g.Add(ModelOps.Tanh);
        g.CheckReverse();
        g.CheckJets();
        var bad = new OpGraph([2, 3, 4]);
        Assert.That(Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Pad, A(("axis", [4]), ("pads", [1, 1]))))!.Message,
            Does.Contain("axis 4 must be 1..3"));
        Assert.That(Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Pad, A(("axis", [1]), ("pads", [-1, 1]))))!.Message,
            Does.Contain("pads must be between 0"));
        Assert.That(Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Pad, A(("axis", [1]), ("pads", [1, 1]), ("value", [double.NegativeInfinity]))))!.Message,
            Does.Contain("finite"));
    }

    [TestCase(1, -1)]
    [TestCase(2, -1)]
    [TestCase(1, 2)]
    [TestCase(2, 3)]
    public void Reflect_and_edge_pads_mirror_or_repeat_the_border_and_differentiate(int mode, int axis)
    {
        // x (N, 2, 3, 4); axis -1: the image form, pads [top 2, left 1, bottom 1, right 3]; else pads [2, 1] along it.
        var g = new OpGraph([2, 3, 4]);
        var attrs = axis < 0 ? A(("pads", [2, 1, 1, 3]), ("mode", [mode])) : A(("axis", [axis]), ("pads", [2, 1]), ("mode", [mode]));
        string p = g.Add(ModelOps.Pad, attrs);
        var x = g.RandomInput();
        var y = Forward(g, x);
        int[] xs = [2, 2, 3, 4];
        var ys = axis < 0 ? new[] { 2, 2, 6, 8 } : [.. xs];
        int[] before = axis < 0 ? [0, 0, 2, 1] : [0, 0, 0, 0];
        if (axis > 0)
        {
            ys[axis] += 3;
            before[axis] = 2;
        }
        // numpy's pad: reflect mirrors about the edge element, edge repeats it.
        int Src(int o, int k)
        {
            int h = o - before[k];
            if (mode == 2)
                return Math.Clamp(h, 0, xs[k] - 1);
            return h < 0 ? -h : h >= xs[k] ? 2 * xs[k] - 2 - h : h;
        }
        Assert.That(y, Has.Length.EqualTo(ys.Aggregate(1, (a, b) => a * b)));
        for (int i = 0; i < y.Length; i++)
        {
            var idx = new int[4];
            for (int k = 3, t = i; k >= 0; k--)
            {
                idx[k] = t % ys[k];
                t /= ys[k];
            }
            var src = Enumerable.Range(0, 4).Select(k => Src(idx[k], k)).ToArray();
            Assert.That(y[i], Is.EqualTo(x[((src[0] * 2 + src[1]) * 3 + src[2]) * 4 + src[3]]), $"element {i}");
        }
        g.Add(ModelOps.Tanh, inputs: [p]);
        g.CheckReverse();
        g.CheckJets();
        var bad = new OpGraph([2, 3, 4]);
        Assert.That(Assert.Throws<ArgumentException>(() => bad.Add(ModelOps.Pad, A(("axis", [2]), ("pads", [3, 0]), ("mode", [1]))))!.Message,
            Does.Contain("reflect pads must be smaller"));
    }

    [Test]
    public void Expand_as_the_addition_of_a_zero_constant_repeats_the_input_and_sums_its_gradient()
    {
        // x (N, 1, 4) + zeros (3, 1) = x repeated 3 times along axis 1; then x * x so the jets bend.
        var g = new OpGraph([1, 2, 4]);
        string r = g.Add(ModelOps.Reshape, A(("shape", [1, 8])));
        g.Weights["zeros"] = new CamEngine.Tensors.HostTensor([3, 1]);
        string e = g.Add(ModelOps.Add, pars: P(("constant", "zeros")), inputs: [r]);
        var x = g.RandomInput();
        var y = Forward(g, x);
        Assert.That(y, Has.Length.EqualTo(2 * 3 * 8));
        for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
        for (int j = 0; j < 8; j++)
            Assert.That(y[(n * 3 + c) * 8 + j], Is.EqualTo(x[n * 8 + j]));
        g.Add(ModelOps.Mul, inputs: [e, e]);
        g.CheckReverse();
        g.CheckJets();
    }
}
