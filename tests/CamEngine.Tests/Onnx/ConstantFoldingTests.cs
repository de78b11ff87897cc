using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Onnx;

/// <summary>
/// The converter's evaluation of all-constant nodes (<see cref="ConstantFolding"/>) on hand-computed cases: the
/// shape arithmetic that torchvision's ViT and Swin exports are made of (ViT's class-token expand shape, Swin's
/// Range / Mod / ScatterND masks and its relative-position bias gather), with ONNX's conventions (Python-signed
/// Mod unless fmod, Slice clamping and negative steps, numpy broadcasting).
/// </summary>
[TestFixture]
internal sealed class ConstantFoldingTests
{
    private static OnnxTensor I(long[] dims, params long[] v) => new("i", dims, 7, null, v) { Count = v.Length };

    private static OnnxTensor B(long[] dims, params long[] v) => new("b", dims, 9, null, v) { Count = v.Length };

    private static OnnxTensor F(long[] dims, params float[] v) => new("f", dims, 1, v, null) { Count = v.Length };

    private static OnnxAttribute Int(string name, long v) => new(name, OnnxAttributeType.Int, 0, v, "", null, [], [], []);

    private static OnnxAttribute Ints(string name, params long[] v) => new(name, OnnxAttributeType.Ints, 0, 0, "", null, [], v, []);

    private static OnnxTensor Eval(string op, OnnxTensor?[] inputs, params OnnxAttribute[] attrs) =>
        ConstantFolding.Evaluate(new OnnxNode("n", op, "", inputs.Select((_, i) => $"in{i}").ToArray(), ["out"], attrs), inputs);

    [Test]
    public void ViT_class_token_expand_shape_folds_to_ones_and_expands_the_token()
    {
        // expand(n, -1, -1) traced at n = 1: Where(Equal([1,-1,-1], -1 * ones(3)), ones(3), [1,-1,-1]) = [1, 1, 1].
        var ones = Eval("ConstantOfShape", [I([1], 3)], new OnnxAttribute("value", OnnxAttributeType.Tensor, 0, 0, "", I([1], 1), [], [], []));
        Assert.That(ones.Ints, Is.EqualTo(new long[] { 1, 1, 1 }));
        var minus = Eval("Mul", [ones, I([], -1)]);
        var shape = I([3], 1, -1, -1);
        var eq = Eval("Equal", [shape, minus]);
        Assert.That(eq.Ints, Is.EqualTo(new long[] { 0, 1, 1 }));
        Assert.That(eq.DataType, Is.EqualTo(9), "Equal gives a bool tensor");
        var where = Eval("Where", [eq, ones, shape]);
        Assert.That(where.Ints, Is.EqualTo(new long[] { 1, 1, 1 }));
        var token = Eval("Expand", [F([1, 1, 2], 0.5f, -2f), I([3], 2, 3, 1)]);
        Assert.That(token.Dims, Is.EqualTo(new long[] { 2, 3, 2 }));
        Assert.That(token.Floats, Is.EqualTo(Enumerable.Repeat(new[] { 0.5f, -2f }, 6).SelectMany(p => p).ToArray()));
    }

    [Test]
    public void Range_Mod_and_Not_follow_ONNX()
    {
        Assert.That(Eval("Range", [I([], 0), I([], 5), I([], 2)]).Ints, Is.EqualTo(new long[] { 0, 2, 4 }));
        Assert.That(Eval("Range", [I([], 5), I([], 0), I([], -2)]).Ints, Is.EqualTo(new long[] { 5, 3, 1 }));
        Assert.That(Eval("Range", [F([], 0f), F([], 1f), F([], 0.25f)]).Floats, Is.EqualTo(new[] { 0f, 0.25f, 0.5f, 0.75f }));
        // Python's sign convention (the divisor's) unless fmod = 1 (the dividend's).
        Assert.That(Eval("Mod", [I([4], -3, 5, 7, -8), I([], 4)]).Ints, Is.EqualTo(new long[] { 1, 1, 3, 0 }));
        Assert.That(Eval("Mod", [I([2], -3, 5), I([], 4)], Int("fmod", 1)).Ints, Is.EqualTo(new long[] { -3, 1 }));
        Assert.That(Eval("Mod", [I([1], 3), I([], -4)]).Ints, Is.EqualTo(new long[] { -1 }));
        Assert.That(Eval("Not", [B([3], 1, 0, 1)]).Ints, Is.EqualTo(new long[] { 0, 1, 0 }));
    }

    [Test]
    public void Gather_ScatterND_Slice_Transpose_and_Concat_move_the_right_elements()
    {
        // Swin's relative-position bias: table (3, 2) gathered along axis 0 by indices (2, 2) -> (2, 2, 2).
        var table = F([3, 2], 0, 1, 10, 11, 20, 21);
        var g = Eval("Gather", [table, I([2, 2], 2, 0, -2, 2)], Int("axis", 0));
        Assert.That(g.Dims, Is.EqualTo(new long[] { 2, 2, 2 }));
        Assert.That(g.Floats, Is.EqualTo(new float[] { 20, 21, 0, 1, 10, 11, 20, 21 }));
        var g1 = Eval("Gather", [table, I([], 1)], Int("axis", 1));
        Assert.That(g1.Dims, Is.EqualTo(new long[] { 3 }));
        Assert.That(g1.Floats, Is.EqualTo(new float[] { 1, 11, 21 }));

        var s = Eval("ScatterND", [F([2, 3], 0, 0, 0, 0, 0, 0), I([2, 2], 1, 2, 0, 0), F([2], 5, 6)]);
        Assert.That(s.Floats, Is.EqualTo(new float[] { 6, 0, 0, 0, 0, 5 }));
        var rows = Eval("ScatterND", [I([2, 2], 1, 2, 3, 4), I([1, 1], 1), I([1, 2], 8, 9)]);
        Assert.That(rows.Ints, Is.EqualTo(new long[] { 1, 2, 8, 9 }));

        // x[::-1, 1:] with INT64_MAX / INT64_MIN ends, as exporters write them.
        var x = I([3, 3], 1, 2, 3, 4, 5, 6, 7, 8, 9);
        var sl = Eval("Slice", [x, I([2], -1, 1), I([2], long.MinValue, long.MaxValue), I([2], 0, 1), I([2], -1, 1)]);
        Assert.That(sl.Dims, Is.EqualTo(new long[] { 3, 2 }));
        Assert.That(sl.Ints, Is.EqualTo(new long[] { 8, 9, 5, 6, 2, 3 }));
        var step = Eval("Slice", [x, I([1], 0), I([1], 3), I([1], 1), I([1], 2)]);
        Assert.That(step.Ints, Is.EqualTo(new long[] { 1, 3, 4, 6, 7, 9 }));

        var t = Eval("Transpose", [I([2, 3], 1, 2, 3, 4, 5, 6)], Ints("perm", 1, 0));
        Assert.That(t.Ints, Is.EqualTo(new long[] { 1, 4, 2, 5, 3, 6 }));
        var c = Eval("Concat", [I([2, 1], 1, 2), I([2, 2], 3, 4, 5, 6)], Int("axis", 1));
        Assert.That(c.Ints, Is.EqualTo(new long[] { 1, 3, 4, 2, 5, 6 }));
        var u = Eval("Unsqueeze", [I([2], 4, 5), I([2], 0, -1)]);
        Assert.That(u.Dims, Is.EqualTo(new long[] { 1, 2, 1 }));
        Assert.That(Eval("Squeeze", [u, null]).Dims, Is.EqualTo(new long[] { 2 }));
        var r = Eval("Reshape", [I([2, 3], 1, 2, 3, 4, 5, 6), I([2], 0, -1)]);
        Assert.That(r.Dims, Is.EqualTo(new long[] { 2, 3 }));
    }

    [Test]
    public void Float_arithmetic_broadcasts_like_numpy_and_casts_truncate()
    {
        var y = Eval("Sub", [F([2, 1], 1, 2), F([3], 10, 20, 30)]);
        Assert.That(y.Dims, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(y.Floats, Is.EqualTo(new float[] { -9, -19, -29, -8, -18, -28 }));
        Assert.That(Eval("Cast", [F([2], 2.7f, -2.7f)], Int("to", 7)).Ints, Is.EqualTo(new long[] { 2, -2 }));
        Assert.That(Eval("Cast", [I([2], 0, 3)], Int("to", 9)).Ints, Is.EqualTo(new long[] { 0, 1 }));
        Assert.That(Eval("Shape", [F([2, 5], new float[10])], Int("start", -1)).Ints, Is.EqualTo(new long[] { 5 }));
    }

    [Test]
    public void Bad_constants_are_refused_with_the_problem()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => Eval("Add", [I([2], 1, 2), I([3], 1, 2, 3)]))!.Message,
            Does.Contain("do not broadcast"));
        Assert.That(Assert.Throws<ArgumentException>(() => Eval("Gather", [I([2], 1, 2), I([], 5)]))!.Message,
            Does.Contain("outside an axis of 2"));
        Assert.That(Assert.Throws<ArgumentException>(() => Eval("Range", [I([], 0), I([], 5), I([], 0)]))!.Message,
            Does.Contain("delta 0"));
        Assert.That(Assert.Throws<ArgumentException>(() => Eval("ConstantOfShape", [I([2], 1 << 20, 1 << 20)]))!.Message,
            Does.Contain("larger than"));
    }
}
