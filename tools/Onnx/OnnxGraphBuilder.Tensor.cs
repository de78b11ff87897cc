using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// Reductions of batch-first tensors of any rank (up to <see cref="TensorShape.MaxRank"/> with the batch axis) and
/// Pow with a constant exponent. ONNX axes count the batch axis (0), which the engine never reduces. (Transpose,
/// Slice, Gather, LayerNormalization and MatMul of tensors whose batch may sit elsewhere are in
/// OnnxGraphBuilder.Batch.cs.)
/// </summary>
internal sealed partial class OnnxGraphBuilder
{
    /// <summary>An ONNX axis of <paramref name="x"/>'s full tensor (N, ...), made non-negative and checked.</summary>
    private int Axis(OnnxNode n, string x, long axis, string what)
    {
        int rank = _shapes[x].Length + 1;
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw Invalid(n, $"{what} {axis} is outside the {rank} axes of the input");
        return (int)a;
    }

    private void Reduce(OnnxNode n)
    {
        CheckAttrs(n, "axes", "keepdims", "noop_with_empty_axes");
        string x = Act(n, 0);
        long[] axes = n.Inputs.Count >= 2 && n.Inputs[1].Length > 0
            ? ConstInts(n, 1, "axes")
            : Attr(n, "axes", OnnxAttributeType.Ints)?.Ints.ToArray() ?? [];
        if (axes.Length == 0)
        {
            if (AttrInt(n, "noop_with_empty_axes", 0) != 0)
            {
                Alias(n, x);
                return;
            }
            throw Unsupported(n, $"{n.OpType} over every axis would reduce the batch axis; only axes 1 and above are supported");
        }
        var norm = axes.Select(a => Axis(n, x, a, "axis")).Distinct().Order().ToArray();
        if (norm[0] == 0)
            throw Unsupported(n, $"{n.OpType} over the batch axis is not supported");
        long keep = AttrInt(n, "keepdims", 1);
        string op = n.OpType switch { "ReduceMean" => Ops.ReduceMean, "ReduceSum" => Ops.ReduceSum, _ => Ops.ReduceMax };
        Emit(n, op, [x], new(), A(("axes", norm), ("keepdims", [keep != 0 ? 1 : 0])));
    }




    /// <summary>ONNX Pow with a computed base and a constant scalar exponent.</summary>
    private void PowNode(OnnxNode n)
    {
        CheckAttrs(n);
        var (x, pl) = ActAny(n, 0);
        float p = Scalar(n, 1, "exponent");
        if (!float.IsFinite(p))
            throw Unsupported(n, $"exponent {p} is not finite");
        if (p == 1f)
        {
            Alias(n, x);
            return;
        }
        EmitL(n, Ops.Pow, [x], new(), Floats(("exponent", p)), pl);
    }

}
