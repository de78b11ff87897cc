using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>How the batch sits in an ONNX tensor whose engine tensor is (N, ...).</summary>
internal enum BatchKind
{
    /// <summary>ONNX axis <see cref="BatchLayout.Axis"/> is the batch itself (size N; 1 in the traced dims); the
    /// engine shape leaves it out.</summary>
    Pure,

    /// <summary>ONNX axis Axis has size N * Dims[Axis], the batch its outer factor (MultiheadAttention's
    /// (L, N * heads, d)); the engine keeps Dims[Axis].</summary>
    Outer,

    /// <summary>ONNX axis Axis has size Dims[Axis] * N, the batch its inner factor.</summary>
    Inner,
}

/// <summary>
/// An ONNX tensor in terms of its engine tensor: the ONNX dims as traced at batch 1 (<see cref="Dims"/>), and
/// where the batch sits. The engine tensor is (N, Dims without the Pure axis): its memory is the ONNX tensor's
/// with the batch moved to the front. Transposes and reshapes that move the batch (MultiheadAttention's
/// <c>(N, L, C) -> (L, N, C) -> (L, N * heads, d)</c>, Swin's windows <c>(N * nW, ws * ws, C)</c>) become engine
/// transposes and reshapes of the batch-free part; an operator may then act on any axis that does not hold the
/// batch.
/// </summary>
internal sealed record BatchLayout(long[] Dims, int Axis, BatchKind Kind)
{
    /// <summary>The engine shape without the batch.</summary>
    public int[] EngineShape => Kind == BatchKind.Pure
        ? Dims.Where((_, k) => k != Axis).Select(d => (int)d).ToArray()
        : Dims.Select(d => (int)d).ToArray();

    /// <summary>The engine axis of (N, ...) holding ONNX axis <paramref name="onnxAxis"/> (its batch-free part for
    /// the axis that holds the batch as a factor), or -1 for a pure batch axis.</summary>
    public int EngineAxis(int onnxAxis) =>
        Kind == BatchKind.Pure ? (onnxAxis == Axis ? -1 : onnxAxis > Axis ? onnxAxis : onnxAxis + 1) : onnxAxis + 1;

    /// <summary>Elements of the ONNX tensor outside (before) the batch, per batch-1 trace.</summary>
    public long Prefix => Dims.Take(Kind == BatchKind.Inner ? Axis + 1 : Axis).Aggregate(1L, (a, b) => a * b);

    /// <summary>The same memory with the batch moved off ONNX axis <paramref name="axis"/> where it is a factor of
    /// it: the outer factor of axis j is the inner factor of axis j - 1, and the other way round.</summary>
    public BatchLayout Avoid(int axis)
    {
        if (axis != Axis || Kind == BatchKind.Pure)
            return this;
        if (Kind == BatchKind.Outer && Axis >= 1)
            return this with { Axis = Axis - 1, Kind = BatchKind.Inner };
        if (Kind == BatchKind.Inner && Axis + 1 < Dims.Length)
            return this with { Axis = Axis + 1, Kind = BatchKind.Outer };
        return this;
    }

    /// <summary>True when equal in dims, axis and kind.</summary>
    public bool SameAs(BatchLayout o) => Axis == o.Axis && Kind == o.Kind && Dims.SequenceEqual(o.Dims);

    /// <summary>The dims as text, with the batch marked.</summary>
    public string Text => "(" + string.Join(", ", Dims.Select((d, k) => k != Axis ? d.ToString()
        : Kind switch { BatchKind.Pure => "N", BatchKind.Outer => $"N*{d}", _ => $"{d}*N" })) + ")";
}

internal sealed partial class OnnxGraphBuilder
{
    /// <summary>Layouts of the engine tensors whose ONNX tensor is not (N, shape...); absent means batch-first.</summary>
    private readonly Dictionary<string, BatchLayout> _layouts = new(StringComparer.Ordinal);

    private BatchLayout DefaultLayout(string x) => new([_batch, .. _shapes[x].Select(d => (long)d)], 0, BatchKind.Pure);

    /// <summary>The layout of engine tensor <paramref name="x"/>.</summary>
    private BatchLayout LayoutOf(string x) => _layouts.TryGetValue(x, out var l) ? l : DefaultLayout(x);

    private static bool IsDefault(BatchLayout l) => l.Axis == 0 && l.Kind == BatchKind.Pure;

    /// <summary>The computed tensor read by input <paramref name="i"/>, wherever its batch sits.</summary>
    private (string Name, BatchLayout Layout) ActAny(OnnxNode n, int i)
    {
        string x = ActRaw(n, i);
        return (x, LayoutOf(x));
    }

    /// <summary>Refuses a tensor whose batch is not its first axis, for operators that assume (N, ...).</summary>
    private void RequireBatchFirst(OnnxNode n, string x)
    {
        if (_layouts.TryGetValue(x, out var l) && !IsDefault(l))
            throw Unsupported(n, $"the input '{x}' is {l.Text} with the batch not first; this operator needs a batch-first (N, ...) input");
    }

    private void SetLayout(string output, BatchLayout l)
    {
        if (IsDefault(l))
            _layouts.Remove(output);
        else
            _layouts[output] = l;
    }

    /// <summary>Emits an engine node whose output has ONNX layout <paramref name="layout"/> (its engine shape must
    /// agree).</summary>
    private void EmitL(OnnxNode n, string op, string[] inputs, Dictionary<string, string> pars, Dictionary<string, double[]> attrs,
        BatchLayout layout, string? intermediate = null)
    {
        Emit(n, op, inputs, pars, attrs, intermediate);
        string output = intermediate ?? n.Outputs[0];
        if (!TensorShape.Equal(_shapes[output], layout.EngineShape))
            throw Invalid(n, $"internal: engine shape {TensorShape.Format(_shapes[output])} disagrees with {layout.Text}");
        SetLayout(output, layout);
    }

    /// <summary>The output is input <paramref name="x"/> seen with layout <paramref name="l"/>: an alias when the
    /// layout is the same, else a view (an engine reshape, copying nothing).</summary>
    private void Relabel(OnnxNode n, string x, BatchLayout l)
    {
        if (l.SameAs(LayoutOf(x)) || (IsDefault(l) && IsDefault(LayoutOf(x)) && TensorShape.Equal(l.EngineShape, _shapes[x])))
        {
            Alias(n, x);
            return;
        }
        EmitL(n, Ops.Reshape, [x], new(), A(("shape", l.EngineShape)), l);
    }

    /// <summary>A unary element-wise op keeps its input's layout.</summary>
    private void UnaryL(OnnxNode n, string op, Dictionary<string, double[]>? attrs = null)
    {
        var (x, l) = ActAny(n, 0);
        EmitL(n, op, [x], new(), attrs ?? new(), l);
    }

    /// <summary>The engine axis of ONNX axis <paramref name="axis"/> of <paramref name="l"/>; refuses the batch's.</summary>
    private static int EngineAxisOf(OnnxNode n, BatchLayout l, long axis, string what)
    {
        int rank = l.Dims.Length;
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw Invalid(n, $"{what} {axis} is outside the {rank} axes of the input");
        if (a == l.Axis)
            throw Unsupported(n, $"{what} {axis} of {l.Text} holds the batch; only the other axes are supported");
        return l.EngineAxis((int)a);
    }

    private void TransposeL(OnnxNode n)
    {
        CheckAttrs(n, "perm");
        var (x, l) = ActAny(n, 0);
        int rank = l.Dims.Length;
        var perm = Attr(n, "perm", OnnxAttributeType.Ints)?.Ints.Select(p => (int)Math.Clamp(p, -1, rank)).ToArray()
                   ?? Enumerable.Range(0, rank).Reverse().ToArray();
        if (perm.Length != rank || perm.Order().Select((p, i) => p == i).Any(ok => !ok))
            throw Invalid(n, $"perm [{string.Join(",", perm)}] is not a permutation of {rank} axes");
        var dims = perm.Select(p => l.Dims[p]).ToArray();
        var outL = new BatchLayout(dims, Array.IndexOf(perm, l.Axis), l.Kind);
        // The engine permutes the batch-free axes the same way; the batch stays first.
        var enginePerm = new List<int> { 0 };
        for (int i = 0; i < rank; i++)
        {
            if (l.Kind == BatchKind.Pure && perm[i] == l.Axis)
                continue;
            enginePerm.Add(l.EngineAxis(perm[i]));
        }
        if (enginePerm.Count > TensorShape.MaxRank)
            throw Unsupported(n, $"rank {enginePerm.Count} is above {TensorShape.MaxRank}");
        if (enginePerm.Select((p, i) => p == i).All(ok => ok))
        {
            Relabel(n, x, outL);
            return;
        }
        EmitL(n, Ops.Transpose, [x], new(), A(("perm", enginePerm.ToArray())), outL);
    }

    /// <summary>Resolves ONNX Reshape's 0 and -1 against <paramref name="dims"/>, and checks the element count.</summary>
    private static long[] ResolveTarget(OnnxNode n, long[] dims, long[] target, bool allowZero)
    {
        var r = ResolveDims(n, dims, target, allowZero);
        if (r.Aggregate(1L, (a, b) => a * b) != dims.Aggregate(1L, (a, b) => a * b))
            throw Invalid(n, $"cannot reshape [{string.Join(",", dims)}] to [{string.Join(",", target)}]");
        return r;
    }

    /// <summary>Resolves ONNX Reshape's 0 (copy the input's dimension, unless <paramref name="allowZero"/>) and one
    /// -1 (inferred from the element count) against <paramref name="dims"/>; the caller checks the element count.</summary>
    private static long[] ResolveDims(OnnxNode n, long[] dims, long[] target, bool allowZero)
    {
        long total = dims.Aggregate(1L, (a, b) => a * b);
        var r = new long[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < r.Length; i++)
        {
            long d = target[i];
            if (d == 0 && !allowZero)
                d = i < dims.Length ? dims[i] : throw Invalid(n, $"shape entry {i} copies a dimension the input lacks");
            if (d == -1)
            {
                if (infer >= 0)
                    throw Invalid(n, "shape has two -1 entries");
                infer = i;
                continue;
            }
            if (d < 1)
                throw Unsupported(n, $"shape [{string.Join(",", target)}] has an entry {target[i]}");
            r[i] = d;
            known *= d;
        }
        if (infer >= 0)
        {
            if (known == 0 || total % known != 0)
                throw Invalid(n, $"cannot infer -1 in [{string.Join(",", target)}] for {total} elements");
            r[infer] = total / known;
        }
        return r;
    }

    /// <summary>
    /// Reshape of a computed tensor traced at batch 1. The batch keeps the elements before it (the prefix): the
    /// output's batch is a size-1 axis where the prefix ends (a pure batch axis: <c>reshape(n, ...)</c>), else the
    /// outer factor of the axis starting there (<c>(N * heads, L, d)</c>), else the inner factor of the axis ending
    /// there (<c>(L * N, C)</c>). Every choice is the same memory; it decides which axis later transposes move the
    /// batch with.
    /// </summary>
    private void ReshapeL(OnnxNode n, string x, BatchLayout l) =>
        ReshapeTo(n, x, l, ResolveTarget(n, l.Dims, ConstInts(n, 1, "shape"), AttrInt(n, "allowzero", 0) != 0));

    /// <summary>The output is <paramref name="x"/> with ONNX dims <paramref name="target"/> (same element count).</summary>
    private void ReshapeTo(OnnxNode n, string x, BatchLayout l, long[] target)
    {
        long prefix = l.Prefix;
        var cum = new long[target.Length + 1];
        cum[0] = 1;
        for (int j = 0; j < target.Length; j++)
            cum[j + 1] = cum[j] * target[j];
        BatchLayout? outL = null;
        for (int j = 0; j < target.Length && outL == null; j++)
        {
            if (cum[j] == prefix && target[j] == 1)
                outL = new BatchLayout(target, j, BatchKind.Pure);
        }
        for (int j = 0; j < target.Length && outL == null; j++)
        {
            if (cum[j] == prefix)
                outL = new BatchLayout(target, j, BatchKind.Outer);
        }
        for (int j = 0; j < target.Length && outL == null; j++)
        {
            if (cum[j + 1] == prefix)
                outL = new BatchLayout(target, j, BatchKind.Inner);
        }
        if (outL == null)
            throw Unsupported(n, $"Reshape of {l.Text} to [{string.Join(",", target)}] splits the elements before the batch "
                + $"({prefix}) across axes; the batch must stay a whole factor of one axis");
        if (outL.EngineShape.Length is < 1 or > TensorShape.MaxRank - 1)
            throw Unsupported(n, $"Reshape to {outL.Text} needs {outL.EngineShape.Length} axes besides the batch; 1 to {TensorShape.MaxRank - 1} are supported");
        if (TensorShape.Equal(outL.EngineShape, _shapes[x]))
        {
            Relabel(n, x, outL);
            return;
        }
        EmitL(n, Ops.Reshape, [x], new(), A(("shape", outL.EngineShape)), outL);
    }

    /// <summary>
    /// Slice of a computed tensor with constant starts, ends, axes and steps: one engine slice per cut axis. A
    /// step s > 1 (Swin's patch merging <c>x[..., 0::2, 0::2, :]</c>) splits the axis into (len / s, s) by a view,
    /// takes index start of the s axis, and drops it again; it needs the axis length to be a multiple of s and
    /// the slice to reach the end.
    /// </summary>
    private void SliceL(OnnxNode n)
    {
        CheckAttrs(n, "starts", "ends", "axes");
        var (x, l) = ActAny(n, 0);
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
        int rank = l.Dims.Length;
        foreach (long ax in axes)
            l = l.Avoid((int)(ax < 0 ? ax + rank : ax));
        var cuts = new List<(int OnnxAxis, long Start, long Count, long Step)>();
        var dims = (long[])l.Dims.Clone();
        for (int i = 0; i < starts.Length; i++)
        {
            long a = axes[i] < 0 ? axes[i] + rank : axes[i];
            if (a < 0 || a >= rank)
                throw Invalid(n, $"axis {axes[i]} is outside the {rank} axes of the input");
            long dim = l.Dims[a];
            (long s, long count) = ConstantFolding.SliceRange(starts[i], ends[i], steps[i], dim);
            if (count < 1)
                throw Unsupported(n, $"Slice [{starts[i]}, {ends[i]}) of axis {a} is empty");
            if (s == 0 && count == dim && steps[i] == 1)
                continue;
            if (a == l.Axis)
                throw Unsupported(n, "Slice of the batch axis is not supported");
            if (steps[i] < 1)
                throw Unsupported(n, $"Slice with step {steps[i]} is not supported (only positive steps)");
            if (steps[i] > 1 && (dim % steps[i] != 0 || s >= steps[i] || count != dim / steps[i]))
                throw Unsupported(n, $"Slice {s}::{steps[i]} of an axis of {dim} is supported only as every {steps[i]}th element to the end of an axis whose length is a multiple of {steps[i]}");
            cuts.Add(((int)a, s, count, steps[i]));
            dims[a] = count;
        }
        var outL = l with { Dims = dims };
        if (cuts.Count == 0)
        {
            Alias(n, x);
            return;
        }
        string cur = x;
        var curL = l;
        int step = 0;
        string Next(bool last) => last ? n.Outputs[0] : $"{n.Outputs[0]}:{step++}";
        for (int k = 0; k < cuts.Count; k++)
        {
            var (a, s, count, st) = cuts[k];
            bool last = k + 1 == cuts.Count;
            var afterDims = (long[])curL.Dims.Clone();
            afterDims[a] = count;
            var afterL = curL with { Dims = afterDims };
            int e = curL.EngineAxis(a);
            if (st == 1)
            {
                string o = Next(last);
                EmitL(n, Ops.Slice, [cur], new(), A(("axis", [e]), ("start", [(int)s]), ("count", [(int)count])), afterL, last ? null : o);
                cur = o;
                curL = afterL;
                continue;
            }
            // (.., len, ..) -> (.., len / st, st, ..) -> index s of the st axis -> (.., len / st, ..)
            var eng = _shapes[cur];
            int[] split = [.. eng[..(e - 1)], (int)count, (int)st, .. eng[e..]];
            if (split.Length > TensorShape.MaxRank - 1)
                throw Unsupported(n, $"a strided Slice of a tensor of rank {eng.Length + 1} needs rank {split.Length + 1}");
            string v = Next(false);
            Emit(n, Ops.Reshape, [cur], new(), A(("shape", split)), v);
            string p = Next(false);
            Emit(n, Ops.Slice, [v], new(), A(("axis", [e + 1]), ("start", [(int)s]), ("count", [1])), p);
            string o2 = Next(last);
            EmitL(n, Ops.Reshape, [p], new(), A(("shape", afterL.EngineShape)), afterL, last ? null : o2);
            cur = o2;
            curL = afterL;
        }
    }

    /// <summary>Gather of a computed tensor with constant indices: a scalar index (<c>x[:, 0]</c>, Swin's
    /// <c>qkv[0]</c>) is a one-element slice with the axis dropped; a run of consecutive indices is a slice.</summary>
    private void GatherL(OnnxNode n)
    {
        CheckAttrs(n, "axis");
        var (x, l) = ActAny(n, 0);
        var it = Const(n, 1, "indices", true)!;
        var idx = it.Ints ?? throw Unsupported(n, $"the indices '{it.Name}' must be an integer tensor");
        int rank = l.Dims.Length;
        long axis = AttrInt(n, "axis", 0);
        int a = (int)(axis < 0 ? axis + rank : axis);
        if (a < 0 || a >= rank)
            throw Invalid(n, $"axis {axis} is outside the {rank} axes of the input");
        l = l.Avoid(a);
        if (a == l.Axis)
            throw Unsupported(n, "Gather along the batch axis is not supported");
        int e = l.EngineAxis(a);
        long dim = l.Dims[a];
        var norm = idx.Select(v => v < 0 ? v + dim : v).ToArray();
        if (norm.Any(v => v < 0 || v >= dim))
            throw Invalid(n, $"an index is outside an axis of {dim}");
        if (it.Dims.Length > 1 || norm.Length == 0 || norm.Where((v, i) => v != norm[0] + i).Any())
            throw Unsupported(n, "Gather of a computed tensor is supported with a scalar index or a run of consecutive indices");
        bool scalar = it.Dims.Length == 0;
        var sliced = (long[])l.Dims.Clone();
        sliced[a] = norm.Length;
        var slicedL = l with { Dims = sliced };
        if (!scalar)
        {
            if (norm.Length == dim)
                Alias(n, x);
            else
                EmitL(n, Ops.Slice, [x], new(), A(("axis", [e]), ("start", [(int)norm[0]]), ("count", [norm.Length])), slicedL);
            return;
        }
        var dropped = l.Dims.Where((_, k) => k != a).ToArray();
        var outL = new BatchLayout(dropped, l.Axis > a ? l.Axis - 1 : l.Axis, l.Kind);
        string cur = x;
        if (dim != 1)
        {
            cur = n.Outputs[0] + ":slice";
            EmitL(n, Ops.Slice, [x], new(), A(("axis", [e]), ("start", [(int)norm[0]]), ("count", [1])), slicedL, cur);
        }
        if (outL.EngineShape.Length == 0)
            throw Unsupported(n, "Gather would leave only the batch axis");
        EmitL(n, Ops.Reshape, [cur], new(), A(("shape", outL.EngineShape)), outL);
    }

    /// <summary>MatMul of two computed tensors (attention's q k^T and p v): one batch layout, the batch among the
    /// leading axes at the same place in both (after right-aligning them); the other leading axes broadcast as
    /// numpy's (a size-1 or missing axis is repeated).</summary>
    private void MatMulComputed(OnnxNode n)
    {
        var (a, la) = ActAny(n, 0);
        var (b, lb) = ActAny(n, 1);
        int ra = la.Dims.Length, rb = lb.Dims.Length;
        la = la.Avoid(ra - 1).Avoid(ra - 2);
        lb = lb.Avoid(rb - 1).Avoid(rb - 2);
        int r = Math.Max(ra, rb);
        int axA = la.Axis + r - ra, axB = lb.Axis + r - rb;
        if (ra < 3 || rb < 3 || axA != axB || la.Kind != lb.Kind || la.Axis >= ra - 2 || lb.Axis >= rb - 2
            || la.Dims[la.Axis] != lb.Dims[lb.Axis])
            throw Unsupported(n, $"MatMul of {la.Text} by {lb.Text}: both operands must be computed, with the batch among the "
                + "leading axes at the same place");
        if (la.Dims[^1] != lb.Dims[^2])
            throw Invalid(n, $"MatMul of {la.Text} by {lb.Text}: inner dimensions differ");
        var lead = Broadcast(n, la.Dims[..^2], lb.Dims[..^2]);
        var outL = new BatchLayout([.. lead, la.Dims[^2], lb.Dims[^1]], axA, la.Kind);
        if (outL.EngineShape.Length > TensorShape.MaxRank - 1)
            throw Unsupported(n, $"MatMul to {outL.Text} needs more than {TensorShape.MaxRank - 1} axes besides the batch");
        EmitL(n, Ops.BatchMatMul, [a, b], new(), new(), outL);
    }

    /// <summary>MatMul of a computed tensor by a constant 2-D weight over its last axis, any batch layout.</summary>
    private void MatMulWeight(OnnxNode n, string x, BatchLayout l)
    {
        l = l.Avoid(l.Dims.Length - 1);
        var bt = Const(n, 1, "weight B", true)!;
        if (bt.Dims.Length != 2)
            throw Unsupported(n, $"MatMul weight '{bt.Name}' must be a 2-D constant, has {bt.Dims.Length} dimensions");
        EngineAxisOf(n, l, -1, "the contracted axis");
        var w = Floats(n, bt, "weight B");
        var outL = l with { Dims = [.. l.Dims[..^1], w.Shape[1]] };
        var pars = new Dictionary<string, string>(StringComparer.Ordinal) { ["weight"] = Weight(n, bt, w) };
        if (outL.EngineShape.Length == 1 && IsDefault(l))
        {
            var attrs = new Dictionary<string, double[]>(StringComparer.Ordinal) { ["transB"] = [0], ["alpha"] = [1], ["beta"] = [1] };
            Emit(n, Ops.Gemm, [x], pars, attrs);
            return;
        }
        EmitL(n, Ops.MatMul, [x], pars, new(), outL);
    }

    /// <summary>Gemm of a 2-D ONNX input whose rows are not just the batch (MultiheadAttention's out_proj on
    /// (L * N, C)): a MatMul over the last axis by alpha op(B), then the bias beta C as a constant Add.</summary>
    private void GemmRows(OnnxNode n, string x, BatchLayout l)
    {
        l = l.Avoid(1);
        long transB = AttrInt(n, "transB", 0);
        float alpha = AttrFloat(n, "alpha", 1f), beta = AttrFloat(n, "beta", 1f);
        EngineAxisOf(n, l, 1, "the contracted axis");
        var bt = Const(n, 1, "weight B", true)!;
        var w = Floats(n, bt, "weight B");
        if (w.Shape.Length != 2)
            throw Invalid(n, $"weight B '{bt.Name}' must be 2-D");
        int k = transB == 1 ? w.Shape[1] : w.Shape[0], m = transB == 1 ? w.Shape[0] : w.Shape[1];
        var km = new float[k * m];
        for (int i = 0; i < k; i++)
        for (int j = 0; j < m; j++)
            km[i * m + j] = alpha * (transB == 1 ? w.Data[j * k + i] : w.Data[i * m + j]);
        var outL = l with { Dims = [l.Dims[0], m] };
        var ct = Const(n, 2, "bias C", false);
        string wn = NewWeight(NodeLabel(n) + ".weight", new HostTensor([k, m], km));
        if (ct == null)
        {
            EmitL(n, Ops.MatMul, [x], new(StringComparer.Ordinal) { ["weight"] = wn }, new(), outL);
            return;
        }
        var c = Floats(n, ct, "bias C");
        if (c.Length != m && c.Length != 1)
            throw Unsupported(n, $"bias C '{ct.Name}' has shape {c.ShapeText}; only [{m}] or a scalar is supported");
        var bias = Enumerable.Range(0, m).Select(j => beta * c.Data[c.Length == 1 ? 0 : j]).ToArray();
        string mid = n.Outputs[0] + ":matmul";
        EmitL(n, Ops.MatMul, [x], new(StringComparer.Ordinal) { ["weight"] = wn }, new(), outL, mid);
        string bn = NewWeight(NodeLabel(n) + ".bias", new HostTensor([m], bias));
        EmitL(n, Ops.Add, [mid], new(StringComparer.Ordinal) { ["constant"] = bn }, new(), outL);
    }

    /// <summary>Softmax over the last axis of a tensor of any layout (opset 13+, or the last axis for older
    /// opsets whose flattening then covers one axis); another axis is moved last and back by transposes.</summary>
    private void SoftmaxL(OnnxNode n)
    {
        CheckAttrs(n, "axis");
        var (x, l) = ActAny(n, 0);
        int rank = l.Dims.Length;
        long axis = AttrInt(n, "axis", _opset >= 13 ? -1 : 1);
        if (axis < 0)
            axis += rank;
        if (axis < 0 || axis >= rank)
            throw Invalid(n, $"axis {AttrInt(n, "axis", -1)} is outside the {rank} axes of the input");
        if (_opset < 13 && axis != rank - 1)
        {
            // Softmax-1/11 flattens the axes from `axis` on: one softmax over their product.
            if (axis < 1 || l.Axis >= axis || !IsDefault(l))
                throw Unsupported(n, $"Softmax (opset {_opset}) over axes {axis}.. of {l.Text} is not supported");
            var flat = new BatchLayout([l.Dims[0], l.Dims.Skip((int)axis).Aggregate(1L, (p, q) => p * q)], 0, BatchKind.Pure);
            if (axis != 1)
                throw Unsupported(n, $"Softmax (opset {_opset}) over axes {axis}.. is not supported (only axis 1 or the last)");
            string v = n.Outputs[0] + ":flat";
            EmitL(n, Ops.Reshape, [x], new(), A(("shape", flat.EngineShape)), flat, v);
            string s = n.Outputs[0] + ":softmax";
            EmitL(n, Ops.Softmax, [v], new(), new(), flat, s);
            EmitL(n, Ops.Reshape, [s], new(), A(("shape", l.EngineShape)), l);
            return;
        }
        l = l.Avoid((int)axis);
        int e = EngineAxisOf(n, l, axis, "axis");
        int er = l.EngineShape.Length + 1;
        if (e == er - 1)
        {
            EmitL(n, Ops.Softmax, [x], new(), new(), l);
            return;
        }
        // Move the axis last, softmax, move it back.
        var perm = Enumerable.Range(0, er).Where(k => k != e).Append(e).ToArray();
        var inv = new int[er];
        for (int k = 0; k < er; k++)
            inv[perm[k]] = k;
        string t1 = n.Outputs[0] + ":moved", t2 = n.Outputs[0] + ":softmax";
        Emit(n, Ops.Transpose, [x], new(), A(("perm", perm)), t1);
        Emit(n, Ops.Softmax, [t1], new(), new(), t2);
        EmitL(n, Ops.Transpose, [t2], new(), A(("perm", inv)), l);
    }

    /// <summary>LayerNormalization over trailing axes that do not hold the batch.</summary>
    private void LayerNormalizationL(OnnxNode n)
    {
        CheckAttrs(n, "axis", "epsilon", "stash_type");
        var (x, l) = ActAny(n, 0);
        long axis = AttrInt(n, "axis", -1);
        int rank = l.Dims.Length;
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw Invalid(n, $"axis {axis} is outside the {rank} axes of the input");
        for (int k = (int)a; k < rank; k++)
            l = l.Avoid(k);
        if (l.Axis >= a)
            throw Unsupported(n, $"LayerNormalization over axes {a}.. of {l.Text} would normalize over the batch");
        int e = l.EngineAxis((int)a);
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
        var attrs = A(("axis", [e]));
        attrs["epsilon"] = [eps];
        EmitL(n, Ops.LayerNorm, [x], pars, attrs, l);
    }

    /// <summary>Concat along a non-batch axis of computed tensors of one layout, and at most one constant
    /// (ViT's class token, broadcast over the batch: its size-1 batch axis is dropped).</summary>
    private void ConcatL(OnnxNode n)
    {
        CheckAttrs(n, "axis");
        int first = Enumerable.Range(0, n.Inputs.Count).First(i => !IsConst(n, i));
        var (_, l) = ActAny(n, first);
        int rank = l.Dims.Length;
        long axis = AttrInt(n, "axis", 1);
        int a = (int)(axis < 0 ? axis + rank : axis);
        l = l.Avoid(a);
        int e = EngineAxisOf(n, l, a, "axis");
        var names = new List<string>();
        long total = 0;
        string? constant = null;
        int constantAt = -1;
        for (int i = 0; i < n.Inputs.Count; i++)
        {
            if (IsConst(n, i))
            {
                if (constant != null)
                    throw Unsupported(n, "Concat with more than one constant input is not supported");
                var t = Const(n, i, "constant input", true)!;
                var h = Floats(n, t, "constant input");
                if (t.Dims.Length != rank)
                    throw Unsupported(n, $"the constant '{t.Name}' has rank {t.Dims.Length}, the computed inputs {rank}");
                for (int k = 0; k < rank; k++)
                {
                    if (k == a)
                        continue;
                    bool ok = k == l.Axis ? t.Dims[k] == 1 && l.Kind == BatchKind.Pure : t.Dims[k] == l.Dims[k];
                    if (!ok)
                        throw Unsupported(n, $"the constant '{t.Name}' [{string.Join(",", t.Dims)}] does not match {l.Text} outside the axis "
                            + "(its batch axis must be 1: one value for every image)");
                }
                var eng = new BatchLayout(t.Dims, l.Axis, BatchKind.Pure).EngineShape;
                constant = NewWeight(NodeLabel(n) + ".constant", new HostTensor(eng, h.Data));
                constantAt = i;
                total += t.Dims[a];
                continue;
            }
            var (x, lx) = ActAny(n, i);
            lx = lx.Avoid(a);
            if (lx.Axis != l.Axis || lx.Kind != l.Kind || lx.Dims.Length != rank
                || Enumerable.Range(0, rank).Any(k => k != a && lx.Dims[k] != l.Dims[k]))
                throw Unsupported(n, $"Concat of {l.Text} and {lx.Text}: inputs differ outside the axis or in where the batch sits");
            names.Add(x);
            total += lx.Dims[a];
        }
        var dims = (long[])l.Dims.Clone();
        dims[a] = total;
        var outL = l with { Dims = dims };
        if (names.Count == 1 && constant == null)
        {
            Alias(n, names[0]);
            return;
        }
        var attrs = e == 1 ? new Dictionary<string, double[]>(StringComparer.Ordinal) : A(("axis", [e]));
        var pars = new Dictionary<string, string>(StringComparer.Ordinal);
        if (constant != null)
        {
            pars["constant"] = constant;
            attrs["constant_at"] = [constantAt];
        }
        EmitL(n, Ops.Concat, names.ToArray(), pars, attrs, outL);
    }

    /// <summary>Add, Sub, Mul, Div of two computed tensors of one batch layout, or of a computed tensor and a
    /// constant right-aligned against its ONNX dims (the constant is 1 on the batch axis). Engine operands with more
    /// than 3 axes besides the batch are viewed with adjacent axes merged where both broadcast alike.</summary>
    private void BinaryL(OnnxNode n)
    {
        CheckAttrs(n);
        if (n.Inputs.Count != 2)
            throw Invalid(n, $"needs 2 inputs, has {n.Inputs.Count}");
        string op = n.OpType switch { "Add" => Ops.Add, "Sub" => Ops.Sub, "Mul" => Ops.Mul, _ => Ops.Div };
        bool c0 = IsConst(n, 0), c1 = IsConst(n, 1);
        if (!c0 && !c1)
        {
            var (a, la) = ActAny(n, 0);
            var (b, lb) = ActAny(n, 1);
            if (la.Dims.Length != lb.Dims.Length || la.Axis != lb.Axis || la.Kind != lb.Kind
                || (la.Kind == BatchKind.Outer || la.Kind == BatchKind.Inner) && la.Dims[la.Axis] != lb.Dims[la.Axis])
                throw Unsupported(n, $"operands {la.Text} and {lb.Text} differ in rank or in where the batch sits");
            var dims = Broadcast(n, la.Dims, lb.Dims);
            BinaryEmit(n, op, [a, b], null, false, la with { Dims = dims });
            return;
        }
        int ci = c0 ? 0 : 1;
        var (x, l) = ActAny(n, 1 - ci);
        var t = Const(n, ci, "constant operand", true)!;
        var h = Floats(n, t, "constant operand");
        var (padded, eng) = AlignConstant(n, l, t.Dims, $"constant '{t.Name}' of shape {h.ShapeText}");
        var outL = l with { Dims = Broadcast(n, l.Dims, padded) };
        string name = TensorShape.Equal(eng, h.Shape) ? Weight(n, t, h) : NewWeight(NodeLabel(n) + ".constant", new HostTensor(eng, h.Data));
        BinaryEmit(n, op, [x], name, ci == 0, outL);
    }

    private static long[] Broadcast(OnnxNode n, long[] a, long[] b)
    {
        try
        {
            return ConstantFolding.Broadcast(a, b);
        }
        catch (ArgumentException e)
        {
            throw Invalid(n, e.Message);
        }
    }

    private void BinaryEmit(OnnxNode n, string op, string[] xs, string? constant, bool constantFirst, BatchLayout outL,
        string? output = null)
    {
        string result = output ?? n.Outputs[0];
        var pars = new Dictionary<string, string>(StringComparer.Ordinal);
        if (constant != null)
            pars["constant"] = constant;
        var attrs = constantFirst ? A(("constant_first", [1])) : new();
        var outShape = outL.EngineShape;
        if (outShape.Length <= 3)
        {
            EmitL(n, op, xs, pars, attrs, outL, output);
            return;
        }
        // Merge runs of adjacent axes along which every operand is either whole or broadcast (size 1) alike.
        var shapes = xs.Select(x => _shapes[x]).ToList();
        if (constant != null)
        {
            var c = _weights[constant].Shape;
            shapes.Add([.. Enumerable.Repeat(1, outShape.Length - c.Length), .. c]);
        }
        int r = outShape.Length;
        var groups = new List<(int Start, int End)>();
        for (int k = 0; k < r; k++)
        {
            if (groups.Count > 0)
            {
                var (s0, _) = groups[^1];
                bool same = shapes.All(s => Status(s, outShape, s0, k) >= 0);
                if (same)
                {
                    groups[^1] = (s0, k + 1);
                    continue;
                }
            }
            groups.Add((k, k + 1));
        }
        if (groups.Count > 3)
            throw Unsupported(n, $"element-wise {n.OpType} of {string.Join(" and ", shapes.Select(s => TensorShape.Format(s)))} needs more than 3 axes besides the batch");
        int[] Merge(int[] s) => groups.Select(g => s[g.Start..g.End].Aggregate(1, (p, q) => p * q)).ToArray();
        var views = new string[xs.Length];
        for (int i = 0; i < xs.Length; i++)
        {
            views[i] = $"{result}:view{i}";
            Emit(n, Ops.Reshape, [xs[i]], new(), A(("shape", Merge(_shapes[xs[i]]))), views[i]);
        }
        if (constant != null)
        {
            var c = _weights[constant];
            var merged = Merge(shapes[^1]);
            pars["constant"] = NewWeight(constant + ".merged", new HostTensor(merged, c.Data));
        }
        string mid = result + ":merged";
        Emit(n, op, views, pars, attrs, mid);
        EmitL(n, Ops.Reshape, [mid], new(), A(("shape", outShape)), outL, output);
    }

    /// <summary>Whether axes [s0, k] of operand shape s can be one axis against the output: 0 or 1 when they are
    /// all whole or all broadcast (axes of output size 1 go either way), -1 otherwise.</summary>
    private static int Status(int[] s, int[] outShape, int s0, int k)
    {
        int status = -1;
        for (int j = s0; j <= k; j++)
        {
            if (outShape[j] == 1)
                continue;
            int st = s[j] == outShape[j] ? 1 : 0;
            if (status >= 0 && st != status)
                return -1;
            status = st;
        }
        return Math.Max(status, 0);
    }
}
