using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// Split, Expand, Where (constant condition) and Pad of computed tensors of any batch layout, each lowered onto
/// existing engine ops: one slice per Split output, an addition of a zero constant for Expand (the addition's
/// reverse sums the gradient over the broadcast axes), mask products and a masked constant for Where, one pad (or
/// crop) per padded axis.
/// </summary>
internal sealed partial class OnnxGraphBuilder
{
    /// <summary>Split of a computed tensor along any axis but the batch's: the part sizes from the opset-11
    /// attribute or the opset-13 input, else equal parts (the last smaller when the axis does not divide, as
    /// opset 18's num_outputs). Each output read later is one engine slice (an alias when it is the whole).</summary>
    private void SplitL(OnnxNode n)
    {
        CheckAttrs(n, "axis", "split", "num_outputs");
        var (x, l) = ActAny(n, 0);
        int rank = l.Dims.Length;
        long axis = AttrInt(n, "axis", 0);
        int a = (int)(axis < 0 ? axis + rank : axis);
        if (a < 0 || a >= rank)
            throw Invalid(n, $"axis {axis} is outside the {rank} axes of the input");
        l = l.Avoid(a);
        if (a == l.Axis)
            throw Unsupported(n, $"Split along axis {axis} of {l.Text}, the batch axis, is not supported");
        int e = l.EngineAxis(a);
        long dim = l.Dims[a];
        int parts = n.Outputs.Count;
        long[] sizes;
        if (n.Inputs.Count >= 2 && n.Inputs[1].Length > 0)
        {
            sizes = ConstInts(n, 1, "split");
        }
        else if (Attr(n, "split", OnnxAttributeType.Ints) is { } sa)
        {
            sizes = sa.Ints.ToArray();
        }
        else
        {
            long num = AttrInt(n, "num_outputs", parts);
            if (num != parts)
                throw Invalid(n, $"num_outputs {num} differs from its {parts} outputs");
            long chunk = (dim + parts - 1) / parts;
            sizes = Enumerable.Range(0, parts).Select(i => Math.Min(chunk, dim - i * chunk)).ToArray();
        }
        if (sizes.Length != parts)
            throw Invalid(n, $"{sizes.Length} split sizes for {parts} outputs");
        if (sizes.Any(s => s < 0) || sizes.Sum() != dim)
            throw Invalid(n, $"split sizes [{string.Join(",", sizes)}] do not add up to the axis of {dim}");
        long start = 0;
        for (int i = 0; i < parts; i++)
        {
            string output = n.Outputs[i];
            long size = sizes[i];
            long at = start;
            start += size;
            if (output.Length == 0 || !_consumers.ContainsKey(output))
                continue;
            if (size == 0)
                throw Unsupported(n, $"output {i} '{output}' is empty (split size 0) and is read");
            var dims = (long[])l.Dims.Clone();
            dims[a] = size;
            var outL = l with { Dims = dims };
            if (size == dim)
            {
                if (_shapes.ContainsKey(output) || _inits.ContainsKey(output) || _alias.ContainsKey(output))
                    throw Invalid(n, $"output '{output}' is produced twice");
                _alias[output] = x;
                continue;
            }
            EmitL(n, Ops.Slice, [x], new(), A(("axis", [e]), ("start", [(int)at]), ("count", [(int)size])), outL, output);
        }
    }

    /// <summary>Expand of a computed tensor to a constant shape (numpy broadcasting both ways, a longer shape adds
    /// leading axes): the addition of a zero constant that is the target size along the broadcast axes and 1
    /// elsewhere. The batch axis is never broadcast.</summary>
    private void ExpandL(OnnxNode n)
    {
        CheckAttrs(n);
        if (n.Inputs.Count != 2)
            throw Invalid(n, $"needs 2 inputs, has {n.Inputs.Count}");
        var (x, l) = ActAny(n, 0);
        var target = ConstInts(n, 1, "shape");
        int rank = Math.Max(l.Dims.Length, target.Length);
        int extra = rank - l.Dims.Length;
        var padded = Enumerable.Repeat(1L, extra).Concat(l.Dims).ToArray();
        var outDims = Broadcast(n, padded, target);
        var pl = l with { Dims = padded, Axis = l.Axis + extra };
        if (outDims[pl.Axis] != padded[pl.Axis])
            throw Unsupported(n, $"Expand of {l.Text} to [{string.Join(",", target)}] would broadcast the batch axis");
        var outL = pl with { Dims = outDims };
        var zeros = outDims.Select((d, k) => padded[k] == 1 && d > 1 ? d : 1L).ToArray();
        if (pl.EngineShape.Length > TensorShape.MaxRank - 1)
            throw Unsupported(n, $"Expand to {outL.Text} needs more than {TensorShape.MaxRank - 1} axes besides the batch");
        string cur = x;
        if (zeros.All(d => d == 1))
        {
            Relabel(n, x, outL);
            return;
        }
        if (extra > 0)
        {
            cur = n.Outputs[0] + ":ranked";
            EmitL(n, Ops.Reshape, [x], new(), A(("shape", pl.EngineShape)), pl, cur);
        }
        var (name, _) = ConstantAgainst(n, pl, zeros, new float[zeros.Aggregate(1L, (p, q) => p * q)], "zeros");
        BinaryEmit(n, Ops.Add, [cur], name, false, outL);
    }

    /// <summary>
    /// Where with a constant condition c. Both X and Y computed: <c>X c + Y (1 - c)</c>. One side constant (A):
    /// the computed side times its mask plus the masked constant <c>K = where(c, A, 0)</c> (or <c>where(c, 0, A)</c>),
    /// built here, so a -inf of A (an attention mask) is never multiplied by 0 and an infinite A still gives
    /// infinity where it is selected. A computed condition is refused.
    /// </summary>
    private void WhereL(OnnxNode n)
    {
        CheckAttrs(n);
        if (n.Inputs.Count != 3)
            throw Invalid(n, $"needs 3 inputs, has {n.Inputs.Count}");
        var ct = Const(n, 0, "condition", true)!;
        var cond = ct.Ints ?? ct.Floats?.Select(v => v != 0 ? 1L : 0L).ToArray()
                   ?? throw Unsupported(n, $"the condition '{ct.Name}' has data type {ct.DataType}");
        bool cx = IsConst(n, 1), cy = IsConst(n, 2);
        if (!cx && !cy)
        {
            var (a, la) = ActAny(n, 1);
            var (b, lb) = ActAny(n, 2);
            if (la.Dims.Length != lb.Dims.Length || la.Axis != lb.Axis || la.Kind != lb.Kind)
                throw Unsupported(n, $"X {la.Text} and Y {lb.Text} differ in rank or in where the batch sits");
            string mx = n.Outputs[0] + ":x", my = n.Outputs[0] + ":y";
            var l1 = MaskedProduct(n, a, la, ct.Dims, cond.Select(v => v != 0 ? 1f : 0f).ToArray(), "mask", mx);
            var l2 = MaskedProduct(n, b, lb, ct.Dims, cond.Select(v => v != 0 ? 0f : 1f).ToArray(), "inverse_mask", my);
            BinaryEmit(n, Ops.Add, [mx, my], null, false, l1 with { Dims = Broadcast(n, l1.Dims, l2.Dims) });
            return;
        }
        int ci = cx ? 1 : 2;
        bool computedIsX = ci == 2;
        var (x, l) = ActAny(n, 3 - ci);
        var kt = Const(n, ci, computedIsX ? "Y" : "X", true)!;
        var kv = kt.Floats ?? kt.Ints?.Select(v => (float)v).ToArray()
                 ?? throw Unsupported(n, $"the constant '{kt.Name}' has data type {kt.DataType}");
        // The computed side's mask, and the constant where it is selected (zero elsewhere).
        var mask = cond.Select(v => (v != 0) == computedIsX ? 1f : 0f).ToArray();
        var kDims = Broadcast(n, ct.Dims, kt.Dims);
        var mc = ConstantFolding.BroadcastIndex(ct.Dims, kDims);
        var mk = ConstantFolding.BroadcastIndex(kt.Dims, kDims);
        var k = new float[mc.Length];
        for (int i = 0; i < k.Length; i++)
            k[i] = (cond[mc[i]] != 0) != computedIsX ? kv[mk[i]] : 0f;
        string mid = n.Outputs[0] + ":masked";
        var ml = MaskedProduct(n, x, l, ct.Dims, mask, "mask", mid);
        var (name, padded) = ConstantAgainst(n, ml, kDims, k, "selected");
        BinaryEmit(n, Ops.Add, [mid], name, false, ml with { Dims = Broadcast(n, ml.Dims, padded) });
    }

    /// <summary>Emits <paramref name="output"/> = x times the constant <paramref name="mask"/> (ONNX dims
    /// <paramref name="maskDims"/>, right-aligned); returns the product's layout.</summary>
    private BatchLayout MaskedProduct(OnnxNode n, string x, BatchLayout l, long[] maskDims, float[] mask, string stem, string output)
    {
        var (name, padded) = ConstantAgainst(n, l, maskDims, mask, stem);
        var outL = l with { Dims = Broadcast(n, l.Dims, padded) };
        BinaryEmit(n, Ops.Mul, [x], name, false, outL, output);
        return outL;
    }

    /// <summary>A constant of ONNX dims <paramref name="dims"/> right-aligned against a tensor of layout
    /// <paramref name="l"/> (size 1 on its batch axis) registered as a weight of the engine shape (leading 1s
    /// dropped) that a broadcasting binary op takes; returns its name and its dims padded to l's rank.</summary>
    private (string Name, long[] Padded) ConstantAgainst(OnnxNode n, BatchLayout l, long[] dims, float[] data, string stem)
    {
        var (padded, eng) = AlignConstant(n, l, dims, $"a constant of shape [{string.Join(",", dims)}]");
        return (NewWeight(NodeLabel(n) + "." + stem, new HostTensor(eng, data)), padded);
    }

    /// <summary>ONNX dims <paramref name="dims"/> of a constant right-aligned against a tensor of layout
    /// <paramref name="l"/>: the dims padded to l's rank with leading 1s (size 1 on its batch axis, else refused naming
    /// <paramref name="what"/>), and the engine shape a broadcasting binary op takes (leading 1s dropped, implied by
    /// right alignment).</summary>
    private static (long[] Padded, int[] Engine) AlignConstant(OnnxNode n, BatchLayout l, long[] dims, string what)
    {
        int rank = l.Dims.Length;
        if (dims.Length > rank)
            throw Unsupported(n, $"{what} has more axes than the input {l.Text}");
        var padded = Enumerable.Repeat(1L, rank - dims.Length).Concat(dims).ToArray();
        if (padded[l.Axis] != 1)
            throw Unsupported(n, $"{what} would broadcast over the batch axis of {l.Text}");
        int[] eng = new BatchLayout(padded, l.Axis, l.Kind).EngineShape;
        int lead = 0;
        while (lead < eng.Length - 1 && eng[lead] == 1)
            lead++;
        eng = eng[lead..];
        return (padded, eng.Length == 0 ? [1] : eng);
    }

    /// <summary>
    /// Pad of a computed tensor, mode constant with any finite value, reflect or edge, on any axes but the batch's (the pads from
    /// the attribute, or the input with the optional opset-18 axes). A batch-first image padded on H and W only is
    /// one engine pad of both; otherwise each padded axis is one engine pad along it, and a negative pad crops
    /// (an engine slice). All-zero pads are the identity in any mode.
    /// </summary>
    private void PadL(OnnxNode n)
    {
        CheckAttrs(n, "mode", "pads", "value");
        string mode = Attr(n, "mode", OnnxAttributeType.String)?.S ?? "constant";
        var (x, l) = ActAny(n, 0);
        int rank = l.Dims.Length;
        long[] pads;
        long[]? axes = null;
        float value = AttrFloat(n, "value", 0f);
        if (n.Inputs.Count >= 2 && n.Inputs[1].Length > 0)
        {
            pads = ConstInts(n, 1, "pads");
            if (n.Inputs.Count >= 3 && n.Inputs[2].Length > 0)
                value = Scalar(n, 2, "constant_value");
            if (n.Inputs.Count >= 4 && n.Inputs[3].Length > 0)
                axes = ConstInts(n, 3, "axes");
        }
        else
        {
            pads = Attr(n, "pads", OnnxAttributeType.Ints)?.Ints.ToArray() ?? throw Invalid(n, "pads are missing");
        }
        var ax = axes?.Select(v => v < 0 ? v + rank : v).ToArray() ?? Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        if (ax.Any(v => v < 0 || v >= rank) || ax.Distinct().Count() != ax.Length)
            throw Invalid(n, $"axes [{string.Join(",", axes!)}] are not distinct axes of the {rank} of the input");
        if (pads.Length != 2 * ax.Length)
            throw Invalid(n, $"pads has {pads.Length} values for {ax.Length} axes");
        var before = new long[rank];
        var after = new long[rank];
        for (int i = 0; i < ax.Length; i++)
        {
            before[ax[i]] = pads[i];
            after[ax[i]] = pads[i + ax.Length];
        }
        if (before.All(p => p == 0) && after.All(p => p == 0))
        {
            Alias(n, x);
            return;
        }
        int engineMode = mode switch
        {
            "constant" => 0,
            "reflect" => 1,
            "edge" => 2,
            _ => throw Unsupported(n, $"Pad mode '{mode}' is not supported (only constant, reflect and edge)"),
        };
        if (engineMode != 0 && pads.Any(p => p < 0))
            throw Unsupported(n, $"negative pads [{string.Join(",", pads)}] (cropping) are supported in constant mode only");
        if (engineMode != 0)
            value = 0f;
        if (!float.IsFinite(value))
            throw Unsupported(n, $"pad value {value} is not finite");
        if (pads.Any(p => Math.Abs(p) > MaxSpatial))
            throw Unsupported(n, $"pads [{string.Join(",", pads)}] must be between {-MaxSpatial} and {MaxSpatial}");
        for (int k = 0; k < rank; k++)
        {
            if (before[k] == 0 && after[k] == 0)
                continue;
            l = l.Avoid(k);
            if (k == l.Axis)
                throw Unsupported(n, $"padding axis {k} of {l.Text}, the batch axis, is not supported");
            if (before[k] + after[k] + l.Dims[k] < 1)
                throw Unsupported(n, $"pads [{before[k]}, {after[k]}] leave nothing of axis {k} ({l.Dims[k]})");
        }
        if (IsDefault(l) && rank == 4 && before[1] == 0 && after[1] == 0 && before.Skip(2).Concat(after.Skip(2)).All(p => p >= 0))
        {
            var hw = A(("pads", [(int)before[2], (int)before[3], (int)after[2], (int)after[3]]));
            hw["value"] = [value];
            if (engineMode != 0)
                hw["mode"] = [engineMode];
            Emit(n, Ops.Pad, [x], new(), hw);
            return;
        }
        // One crop and/or pad per axis.
        var steps = new List<(int Axis, bool Crop, long P, long Q)>();
        for (int k = 0; k < rank; k++)
        {
            long b = before[k], f = after[k];
            if (b < 0 || f < 0)
                steps.Add((k, true, Math.Max(0, -b), l.Dims[k] - Math.Max(0, -b) - Math.Max(0, -f)));
            if (b > 0 || f > 0)
                steps.Add((k, false, Math.Max(0, b), Math.Max(0, f)));
        }
        string cur = x;
        var curL = l;
        for (int s = 0; s < steps.Count; s++)
        {
            var (k, crop, p, q) = steps[s];
            bool last = s + 1 == steps.Count;
            string? o = last ? null : $"{n.Outputs[0]}:{s}";
            var dims = (long[])curL.Dims.Clone();
            dims[k] = crop ? q : dims[k] + p + q;
            var nextL = curL with { Dims = dims };
            int e = curL.EngineAxis(k);
            if (crop)
            {
                EmitL(n, Ops.Slice, [cur], new(), A(("axis", [e]), ("start", [(int)p]), ("count", [(int)q])), nextL, o);
            }
            else
            {
                var attrs = A(("axis", [e]), ("pads", [(int)p, (int)q]));
                attrs["value"] = [value];
                if (engineMode != 0)
                    attrs["mode"] = [engineMode];
                EmitL(n, Ops.Pad, [cur], new(), attrs, nextL, o);
            }
            cur = o ?? n.Outputs[0];
            curL = nextL;
        }
    }
}
