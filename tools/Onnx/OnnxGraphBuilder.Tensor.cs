using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// The ONNX operators of tensors of any rank (up to <see cref="TensorShape.MaxRank"/> with the batch axis):
/// reductions, Transpose and Slice of computed tensors, LayerNormalization, MatMul of a computed tensor by a
/// constant weight over its last axis, Pow with a constant exponent. ONNX axes count the batch axis (0), which
/// the engine never reduces, slices or moves.
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

    private void TensorLayoutOp(OnnxNode n)
    {
        if (n.OpType == "Transpose")
        {
            CheckAttrs(n, "perm");
            string x = Act(n, 0);
            int rank = _shapes[x].Length + 1;
            if (rank > TensorShape.MaxRank)
                throw Unsupported(n, $"rank {rank} is above {TensorShape.MaxRank}");
            var perm = Attr(n, "perm", OnnxAttributeType.Ints)?.Ints.Select(p => (int)Math.Clamp(p, -1, rank)).ToArray()
                       ?? Enumerable.Range(0, rank).Reverse().ToArray();
            if (perm.Length != rank || perm.Order().Select((p, i) => p == i).Any(ok => !ok))
                throw Invalid(n, $"perm [{string.Join(",", perm)}] is not a permutation of {rank} axes");
            if (perm[0] != 0)
                throw Unsupported(n, $"Transpose with perm [{string.Join(",", perm)}] moves the batch axis; only perm[0] = 0 is supported");
            if (perm.Select((p, i) => p == i).All(ok => ok))
            {
                Alias(n, x);
                return;
            }
            Emit(n, Ops.Transpose, [x], new(), A(("perm", perm)));
            return;
        }
        SliceNode(n);
    }

    /// <summary>ONNX Slice of a computed tensor with constant starts, ends, axes and unit steps: one engine slice
    /// per axis that is not taken whole; ONNX's clamping of out-of-range starts and ends.</summary>
    private void SliceNode(OnnxNode n)
    {
        CheckAttrs(n, "starts", "ends", "axes");
        string x = Act(n, 0);
        long[] starts, ends, axes, steps;
        if (n.Inputs.Count >= 3)
        {
            starts = ConstInts(n, 1, "starts");
            ends = ConstInts(n, 2, "ends");
            axes = n.Inputs.Count >= 4 && n.Inputs[3].Length > 0 ? ConstInts(n, 3, "axes") : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps = n.Inputs.Count >= 5 && n.Inputs[4].Length > 0 ? ConstInts(n, 4, "steps") : Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        else
        {
            starts = Attr(n, "starts", OnnxAttributeType.Ints)?.Ints.ToArray() ?? throw Invalid(n, "starts are missing");
            ends = Attr(n, "ends", OnnxAttributeType.Ints)?.Ints.ToArray() ?? throw Invalid(n, "ends are missing");
            axes = Attr(n, "axes", OnnxAttributeType.Ints)?.Ints.ToArray() ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps = Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw Invalid(n, "starts, ends, axes and steps differ in length");
        var cuts = new List<(int Axis, int Start, int Count)>();
        for (int i = 0; i < starts.Length; i++)
        {
            int axis = Axis(n, x, axes[i], "axis");
            long dim = axis == 0 ? _batch : _shapes[x][axis - 1];
            if (steps[i] != 1)
                throw Unsupported(n, $"Slice with step {steps[i]} is not supported (only step 1)");
            long s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
            s = Math.Clamp(s, 0, dim);
            e = Math.Clamp(e, 0, dim);
            if (e <= s)
                throw Unsupported(n, $"Slice [{starts[i]}, {ends[i]}) of axis {axis} is empty");
            if (s == 0 && e == dim)
                continue;
            if (axis == 0)
                throw Unsupported(n, "Slice of the batch axis is not supported");
            cuts.Add((axis, (int)s, (int)(e - s)));
        }
        if (cuts.Count == 0)
        {
            Alias(n, x);
            return;
        }
        string cur = x;
        for (int k = 0; k < cuts.Count; k++)
        {
            var (axis, start, count) = cuts[k];
            string? mid = k + 1 < cuts.Count ? $"{n.Outputs[0]}:axis{axis}" : null;
            Emit(n, Ops.Slice, [cur], new(), A(("axis", [axis]), ("start", [start]), ("count", [count])), mid);
            cur = mid ?? n.Outputs[0];
        }
    }

    /// <summary>ONNX LayerNormalization (opset 17): normalized over the axes from attr axis; Scale and the optional
    /// B become the op's parameters (B absent: zeros). Only the first output (Y) may be used.</summary>
    private void LayerNormalization(OnnxNode n)
    {
        CheckAttrs(n, "axis", "epsilon", "stash_type");
        string x = Act(n, 0);
        int axis = Axis(n, x, AttrInt(n, "axis", -1), "axis");
        if (axis == 0)
            throw Unsupported(n, "LayerNormalization over the batch axis is not supported");
        float eps = AttrFloat(n, "epsilon", 1e-5f);
        if (!(eps > 0) || !float.IsFinite(eps))
            throw Invalid(n, $"epsilon {eps} must be positive and finite");
        var st = Const(n, 1, "scale", true)!;
        var scale = Floats(n, st, "scale");
        var bt = Const(n, 2, "bias", false);
        string bias = bt != null
            ? Weight(n, bt, Floats(n, bt, "bias"))
            : NewWeight(NodeLabel(n) + ".bias", new HostTensor(scale.Shape));
        var pars = new Dictionary<string, string>(StringComparer.Ordinal) { ["scale"] = Weight(n, st, scale), ["bias"] = bias };
        var attrs = A(("axis", [axis]));
        attrs["epsilon"] = [eps];
        Emit(n, Ops.LayerNorm, [x], pars, attrs);
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

    /// <summary>MatMul of a computed (N, ..., K) tensor by a constant 2-D (K, M) weight.</summary>
    private void MatMulOverLastAxis(OnnxNode n, string x)
    {
        var bt = Const(n, 1, "weight B", true)!;
        if (bt.Dims.Length != 2)
            throw Unsupported(n, $"MatMul weight '{bt.Name}' must be a 2-D constant, has {bt.Dims.Length} dimensions");
        var w = Floats(n, bt, "weight B");
        Emit(n, Ops.MatMul, [x], new(StringComparer.Ordinal) { ["weight"] = Weight(n, bt, w) }, new());
    }
}
