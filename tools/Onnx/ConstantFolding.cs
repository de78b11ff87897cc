namespace CamEngine.Onnx;

/// <summary>
/// Evaluates ONNX nodes whose inputs are all constants (initializers, Constant outputs, or values folded before),
/// so that the shape arithmetic exporters emit (Swin has thousands of such nodes: Shape, Gather, Range, Equal,
/// Where, ScatterND, Mod, Expand, ...) and constant-only compute (a relative-position bias gathered from its
/// table, an attention mask) never reach the engine graph. Integer and boolean tensors are evaluated in 64-bit
/// integers, float tensors in float32 like the ONNX reference; broadcasting is numpy's.
/// Errors are <see cref="ArgumentException"/>s stating the problem; the converter adds the node.
/// </summary>
internal static class ConstantFolding
{
    /// <summary>Largest constant (elements) the converter evaluates or produces.</summary>
    public const long MaxElements = 1 << 24;

    /// <summary>The operators evaluated when every input is constant.</summary>
    public static readonly HashSet<string> Ops = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Max", "Min",
        "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where",
        "Cast", "Shape", "Size", "Gather", "Range", "ConstantOfShape", "ScatterND", "Expand", "Unsqueeze", "Squeeze",
        "Concat", "Slice", "Reshape", "Transpose", "Identity", "Flatten", "ReduceProd", "ReduceSum", "ReduceMax",
        "ReduceMin",
    };

    private static bool IsFloat(OnnxTensor t) => t.Floats != null;

    private static long[] Ints(OnnxTensor t, string role) =>
        t.Ints ?? throw new ArgumentException($"the {role} '{t.Name}' must be an integer tensor");

    private static long Count(long[] dims)
    {
        long c = 1;
        foreach (long d in dims)
        {
            if (d < 0)
                throw new ArgumentException($"dimension {d} is negative");
            c *= d;
            if (c > MaxElements)
                throw new ArgumentException($"a constant of shape [{string.Join(",", dims)}] is larger than {MaxElements} elements");
        }
        return c;
    }

    private static OnnxTensor Make(string name, long[] dims, int type, float[]? f, long[]? i) =>
        new(name, dims, type, f, i) { Count = f?.Length ?? i!.Length };

    private static OnnxTensor IntT(string name, long[] dims, long[] v, int type = (int)OnnxDataType.Int64) => Make(name, dims, type, null, v);

    private static OnnxTensor FloatT(string name, long[] dims, float[] v) => Make(name, dims, (int)OnnxDataType.Float, v, null);

    private static long[] Strides(long[] dims)
    {
        var s = new long[dims.Length];
        long acc = 1;
        for (int k = dims.Length - 1; k >= 0; k--)
        {
            s[k] = acc;
            acc *= dims[k];
        }
        return s;
    }

    /// <summary>numpy's broadcast shape.</summary>
    public static long[] Broadcast(params long[][] shapes)
    {
        int rank = shapes.Max(s => s.Length);
        var r = new long[rank];
        for (int k = 0; k < rank; k++)
        {
            long d = 1;
            foreach (var s in shapes)
            {
                int j = k - (rank - s.Length);
                if (j < 0 || s[j] == 1)
                    continue;
                if (d != 1 && d != s[j])
                    throw new ArgumentException($"shapes {string.Join(" and ", shapes.Select(x => $"[{string.Join(",", x)}]"))} do not broadcast");
                d = s[j];
            }
            r[k] = d;
        }
        return r;
    }

    /// <summary>For each element of the broadcast shape <paramref name="to"/>, the flat index into a tensor of
    /// shape <paramref name="from"/> (right-aligned, size-1 axes repeated).</summary>
    internal static long[] BroadcastIndex(long[] from, long[] to)
    {
        long n = Count(to);
        var map = new long[n];
        var fs = Strides(from);
        int off = to.Length - from.Length;
        var idx = new long[to.Length];
        for (long i = 0; i < n; i++)
        {
            long src = 0;
            for (int k = off; k < to.Length; k++)
            {
                if (from[k - off] != 1)
                    src += idx[k] * fs[k - off];
            }
            map[i] = src;
            for (int k = to.Length - 1; k >= 0; k--)
            {
                if (++idx[k] < to[k])
                    break;
                idx[k] = 0;
            }
        }
        return map;
    }

    private static int NormAxis(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1))
            throw new ArgumentException($"{what} {axis} is outside the {rank} axes");
        return (int)a;
    }

    private static long AttrInt(OnnxNode n, string name, long fallback) => n.Attr(name)?.I ?? fallback;

    /// <summary>Gathers the elements of <paramref name="t"/> at <paramref name="src"/> into a tensor of
    /// <paramref name="dims"/>, keeping the data type.</summary>
    private static OnnxTensor Pick(string name, OnnxTensor t, long[] dims, long[] src)
    {
        if (t.Floats != null)
        {
            var f = new float[src.Length];
            for (long i = 0; i < src.Length; i++)
                f[i] = t.Floats[src[i]];
            return Make(name, dims, t.DataType, f, null);
        }
        var v = new long[src.Length];
        var ints = Ints(t, "input");
        for (long i = 0; i < src.Length; i++)
            v[i] = ints[src[i]];
        return Make(name, dims, t.DataType, null, v);
    }

    /// <summary>Evaluates <paramref name="n"/> on its constant inputs (null for an absent optional input).</summary>
    public static OnnxTensor Evaluate(OnnxNode n, IReadOnlyList<OnnxTensor?> inputs)
    {
        string name = n.Outputs[0];
        OnnxTensor In(int i) => i < inputs.Count && inputs[i] != null ? inputs[i]! : throw new ArgumentException($"input {i} is missing");
        OnnxTensor? Opt(int i) => i < inputs.Count ? inputs[i] : null;
        long[]? AxesOf(int input)
        {
            if (Opt(input) is { } t)
                return Ints(t, "axes");
            return n.Attr("axes")?.Ints.ToArray();
        }

        switch (n.OpType)
        {
            case "Identity":
                return In(0) with { Name = name };
            case "Shape":
            {
                var dims = In(0).Dims;
                long start = AttrInt(n, "start", 0), end = AttrInt(n, "end", dims.Length);
                start = Math.Clamp(start < 0 ? start + dims.Length : start, 0, dims.Length);
                end = Math.Clamp(end < 0 ? end + dims.Length : end, start, dims.Length);
                var r = dims[(int)start..(int)end];
                return IntT(name, [r.Length], r);
            }
            case "Size":
                return IntT(name, [], [In(0).Count]);
            case "Cast":
            {
                var t = In(0);
                long to = AttrInt(n, "to", 0);
                switch ((OnnxDataType)to)
                {
                    case OnnxDataType.Float or OnnxDataType.Double:
                        return FloatT(name, t.Dims, t.Floats != null ? (float[])t.Floats.Clone() : Ints(t, "input").Select(v => (float)v).ToArray());
                    case OnnxDataType.Int64 or OnnxDataType.Int32:
                        return IntT(name, t.Dims, t.Ints != null ? (long[])t.Ints.Clone() : t.Floats!.Select(v => (long)v).ToArray(), (int)to);
                    case OnnxDataType.Bool:
                        return IntT(name, t.Dims, t.Ints != null ? t.Ints.Select(v => v != 0 ? 1L : 0L).ToArray() : t.Floats!.Select(v => v != 0 ? 1L : 0L).ToArray(), (int)to);
                    default:
                        throw new ArgumentException($"Cast to data type {to} is not evaluated");
                }
            }
            case "ConstantOfShape":
            {
                var dims = Ints(In(0), "shape");
                long count = Count(dims);
                var v = n.Attr("value")?.T;
                if (v == null || v.Floats != null)
                {
                    float f = v?.Floats is { Length: > 0 } fl ? fl[0] : 0f;
                    return Make(name, dims, v?.DataType ?? (int)OnnxDataType.Float, Enumerable.Repeat(f, (int)count).ToArray(), null);
                }
                long iv = v.Ints is { Length: > 0 } il ? il[0] : 0;
                return Make(name, dims, v.DataType, null, Enumerable.Repeat(iv, (int)count).ToArray());
            }
            case "Range":
            {
                var s = In(0);
                var l = In(1);
                var d = In(2);
                if (IsFloat(s) || IsFloat(l) || IsFloat(d))
                {
                    double fs = s.Floats?[0] ?? s.Ints![0], fl = l.Floats?[0] ?? l.Ints![0], fd = d.Floats?[0] ?? d.Ints![0];
                    if (fd == 0)
                        throw new ArgumentException("Range with delta 0");
                    long cnt = Math.Max(0, (long)Math.Ceiling((fl - fs) / fd));
                    Count([cnt]);
                    return FloatT(name, [cnt], Enumerable.Range(0, (int)cnt).Select(i => (float)(fs + i * fd)).ToArray());
                }
                long a = s.Ints![0], b = l.Ints![0], step = d.Ints![0];
                if (step == 0)
                    throw new ArgumentException("Range with delta 0");
                long c = Math.Max(0, (b - a + step + (step > 0 ? -1 : 1)) / step);
                Count([c]);
                var r = new long[c];
                for (long i = 0; i < c; i++)
                    r[i] = a + i * step;
                return IntT(name, [c], r, s.DataType);
            }
            case "Unsqueeze":
            {
                var t = In(0);
                var axes = AxesOf(1) ?? throw new ArgumentException("axes are missing");
                int rank = t.Dims.Length + axes.Length;
                var norm = axes.Select(a => NormAxis(a, rank)).ToHashSet();
                var dims = new List<long>();
                int j = 0;
                for (int k = 0; k < rank; k++)
                    dims.Add(norm.Contains(k) ? 1 : t.Dims[j++]);
                return t with { Name = name, Dims = dims.ToArray() };
            }
            case "Squeeze":
            {
                var t = In(0);
                var axes = AxesOf(1);
                var norm = axes?.Select(a => NormAxis(a, t.Dims.Length)).ToHashSet();
                var dims = new List<long>();
                for (int k = 0; k < t.Dims.Length; k++)
                {
                    bool drop = norm == null ? t.Dims[k] == 1 : norm.Contains(k);
                    if (drop && t.Dims[k] != 1)
                        throw new ArgumentException($"Squeeze of axis {k} of size {t.Dims[k]}");
                    if (!drop)
                        dims.Add(t.Dims[k]);
                }
                return t with { Name = name, Dims = dims.ToArray() };
            }
            case "Flatten":
            {
                var t = In(0);
                int axis = (int)AttrInt(n, "axis", 1);
                if (axis < 0)
                    axis += t.Dims.Length;
                long outer = t.Dims.Take(axis).Aggregate(1L, (x, y) => x * y);
                return t with { Name = name, Dims = [outer, t.Count / Math.Max(outer, 1)] };
            }
            case "Reshape":
            {
                var t = In(0);
                var target = (long[])Ints(In(1), "shape").Clone();
                bool allowZero = AttrInt(n, "allowzero", 0) != 0;
                int infer = -1;
                long known = 1;
                for (int k = 0; k < target.Length; k++)
                {
                    if (target[k] == 0 && !allowZero)
                        target[k] = k < t.Dims.Length ? t.Dims[k] : throw new ArgumentException($"shape entry {k} copies a missing dimension");
                    if (target[k] == -1)
                    {
                        if (infer >= 0)
                            throw new ArgumentException("shape has two -1 entries");
                        infer = k;
                        continue;
                    }
                    if (target[k] < 0)
                        throw new ArgumentException($"shape entry {target[k]}");
                    known *= target[k];
                }
                if (infer >= 0)
                    target[infer] = known == 0 ? 0 : t.Count / known;
                if (Count(target) != t.Count)
                    throw new ArgumentException($"cannot reshape [{string.Join(",", t.Dims)}] to [{string.Join(",", target)}]");
                return t with { Name = name, Dims = target };
            }
            case "Transpose":
            {
                var t = In(0);
                int rank = t.Dims.Length;
                var perm = n.Attr("perm")?.Ints.Select(p => NormAxis(p, rank, "perm entry")).ToArray()
                           ?? Enumerable.Range(0, rank).Reverse().ToArray();
                if (perm.Length != rank || perm.Distinct().Count() != rank)
                    throw new ArgumentException($"perm [{string.Join(",", perm)}] is not a permutation of {rank} axes");
                var dims = perm.Select(p => t.Dims[p]).ToArray();
                var st = Strides(t.Dims);
                long c = Count(dims);
                var src = new long[c];
                var idx = new long[rank];
                for (long i = 0; i < c; i++)
                {
                    long s = 0;
                    for (int k = 0; k < rank; k++)
                        s += idx[k] * st[perm[k]];
                    src[i] = s;
                    for (int k = rank - 1; k >= 0; k--)
                    {
                        if (++idx[k] < dims[k])
                            break;
                        idx[k] = 0;
                    }
                }
                return Pick(name, t, dims, src);
            }
            case "Expand":
            {
                var t = In(0);
                var dims = Broadcast(t.Dims, Ints(In(1), "shape"));
                return Pick(name, t, dims, BroadcastIndex(t.Dims, dims));
            }
            case "Concat":
            {
                var parts = Enumerable.Range(0, inputs.Count).Where(i => inputs[i] != null).Select(i => inputs[i]!).ToArray();
                if (parts.Length == 0)
                    throw new ArgumentException("needs at least one input");
                var first = parts[0];
                int rank = first.Dims.Length;
                int axis = NormAxis(AttrInt(n, "axis", 0), rank);
                bool isFloat = parts.Any(IsFloat);
                if (parts.Any(p => IsFloat(p) != isFloat))
                    throw new ArgumentException("Concat of float and integer constants");
                foreach (var p in parts)
                {
                    if (p.Dims.Length != rank || Enumerable.Range(0, rank).Any(k => k != axis && p.Dims[k] != first.Dims[k]))
                        throw new ArgumentException("Concat inputs differ outside the axis");
                }
                var dims = (long[])first.Dims.Clone();
                dims[axis] = parts.Sum(p => p.Dims[axis]);
                long outer = dims.Take(axis).Aggregate(1L, (a, b) => a * b);
                long inner = dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
                Count(dims);
                var fl = isFloat ? new List<float>() : null;
                var il = isFloat ? null : new List<long>();
                for (long o = 0; o < outer; o++)
                {
                    foreach (var p in parts)
                    {
                        long len = p.Dims[axis] * inner;
                        for (long j = 0; j < len; j++)
                        {
                            if (isFloat)
                                fl!.Add(p.Floats![o * len + j]);
                            else
                                il!.Add(p.Ints![o * len + j]);
                        }
                    }
                }
                return Make(name, dims, first.DataType, fl?.ToArray(), il?.ToArray());
            }
            case "Gather":
            {
                var t = In(0);
                var idx = In(1);
                var ind = Ints(idx, "indices");
                int rank = t.Dims.Length;
                int axis = NormAxis(AttrInt(n, "axis", 0), rank);
                long len = t.Dims[axis];
                long outer = t.Dims.Take(axis).Aggregate(1L, (a, b) => a * b);
                long inner = t.Dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
                long[] dims = [.. t.Dims.Take(axis), .. idx.Dims, .. t.Dims.Skip(axis + 1)];
                long c = Count(dims);
                var src = new long[c];
                long w = 0;
                for (long o = 0; o < outer; o++)
                {
                    foreach (long i0 in ind)
                    {
                        long i = i0 < 0 ? i0 + len : i0;
                        if (i < 0 || i >= len)
                            throw new ArgumentException($"index {i0} is outside an axis of {len}");
                        for (long j = 0; j < inner; j++)
                            src[w++] = (o * len + i) * inner + j;
                    }
                }
                return Pick(name, t, dims, src);
            }
            case "Slice":
            {
                var t = In(0);
                int rank = t.Dims.Length;
                long[] starts, ends, axes, steps;
                if (Opt(1) != null)
                {
                    starts = Ints(In(1), "starts");
                    ends = Ints(In(2), "ends");
                    axes = Opt(3) is { } a3 ? Ints(a3, "axes") : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                    steps = Opt(4) is { } a4 ? Ints(a4, "steps") : Enumerable.Repeat(1L, starts.Length).ToArray();
                }
                else
                {
                    starts = n.Attr("starts")?.Ints.ToArray() ?? throw new ArgumentException("starts are missing");
                    ends = n.Attr("ends")?.Ints.ToArray() ?? throw new ArgumentException("ends are missing");
                    axes = n.Attr("axes")?.Ints.ToArray() ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                    steps = Enumerable.Repeat(1L, starts.Length).ToArray();
                }
                var first = new long[rank];
                var step = Enumerable.Repeat(1L, rank).ToArray();
                var dims = (long[])t.Dims.Clone();
                for (int i = 0; i < starts.Length; i++)
                {
                    int ax = NormAxis(axes[i], rank);
                    var (s, cnt) = SliceRange(starts[i], ends[i], steps[i], t.Dims[ax]);
                    first[ax] = s;
                    step[ax] = steps[i];
                    dims[ax] = cnt;
                }
                var st = Strides(t.Dims);
                long c = Count(dims);
                var src = new long[c];
                var idx = new long[rank];
                for (long i = 0; i < c; i++)
                {
                    long s = 0;
                    for (int k = 0; k < rank; k++)
                        s += (first[k] + idx[k] * step[k]) * st[k];
                    src[i] = s;
                    for (int k = rank - 1; k >= 0; k--)
                    {
                        if (++idx[k] < dims[k])
                            break;
                        idx[k] = 0;
                    }
                }
                return Pick(name, t, dims, src);
            }
            case "ScatterND":
            {
                var data = In(0);
                var idx = In(1);
                var upd = In(2);
                if (n.Attr("reduction") is { } red && red.S is not ("" or "none"))
                    throw new ArgumentException($"ScatterND reduction '{red.S}' is not evaluated");
                var ind = Ints(idx, "indices");
                int k = (int)idx.Dims[^1];
                if (k > data.Dims.Length)
                    throw new ArgumentException("indices are longer than the data's rank");
                long slice = data.Dims.Skip(k).Aggregate(1L, (a, b) => a * b);
                var st = Strides(data.Dims);
                long updates = ind.Length / Math.Max(k, 1);
                if (upd.Count != updates * slice)
                    throw new ArgumentException("updates do not match the indices");
                var result = data with { Name = name, Floats = (float[]?)data.Floats?.Clone(), Ints = (long[]?)data.Ints?.Clone() };
                if (IsFloat(data) != IsFloat(upd))
                    throw new ArgumentException("ScatterND of mixed data types");
                for (long u = 0; u < updates; u++)
                {
                    long off = 0;
                    for (int j = 0; j < k; j++)
                    {
                        long v = ind[u * k + j];
                        if (v < 0)
                            v += data.Dims[j];
                        if (v < 0 || v >= data.Dims[j])
                            throw new ArgumentException($"index {ind[u * k + j]} is outside an axis of {data.Dims[j]}");
                        off += v * st[j];
                    }
                    for (long e = 0; e < slice; e++)
                    {
                        if (result.Floats != null)
                            result.Floats[off + e] = upd.Floats![u * slice + e];
                        else
                            result.Ints![off + e] = upd.Ints![u * slice + e];
                    }
                }
                return result;
            }
            case "Where":
            {
                var c = In(0);
                var x = In(1);
                var y = In(2);
                var cond = Ints(c, "condition");
                var dims = Broadcast(c.Dims, x.Dims, y.Dims);
                var mc = BroadcastIndex(c.Dims, dims);
                var mx = BroadcastIndex(x.Dims, dims);
                var my = BroadcastIndex(y.Dims, dims);
                if (IsFloat(x) != IsFloat(y))
                    throw new ArgumentException("Where of mixed data types");
                if (IsFloat(x))
                    return Make(name, dims, x.DataType, Enumerable.Range(0, mc.Length).Select(i => cond[mc[i]] != 0 ? x.Floats![mx[i]] : y.Floats![my[i]]).ToArray(), null);
                return Make(name, dims, x.DataType, null, Enumerable.Range(0, mc.Length).Select(i => cond[mc[i]] != 0 ? x.Ints![mx[i]] : y.Ints![my[i]]).ToArray());
            }
            case "Not":
                return IntT(name, In(0).Dims, Ints(In(0), "input").Select(v => v == 0 ? 1L : 0L).ToArray(), (int)OnnxDataType.Bool);
            case "Neg" or "Abs" or "Floor" or "Ceil" or "Sqrt":
            {
                var t = In(0);
                if (t.Floats != null)
                {
                    Func<float, float> f = n.OpType switch
                    {
                        "Neg" => v => -v, "Abs" => MathF.Abs, "Floor" => MathF.Floor, "Ceil" => MathF.Ceiling, _ => MathF.Sqrt,
                    };
                    return FloatT(name, t.Dims, t.Floats.Select(f).ToArray());
                }
                Func<long, long> g = n.OpType switch
                {
                    "Neg" => v => -v, "Abs" => Math.Abs, "Floor" or "Ceil" => v => v,
                    _ => throw new ArgumentException("Sqrt of an integer tensor"),
                };
                return t with { Name = name, Ints = t.Ints!.Select(g).ToArray() };
            }
            case "ReduceProd" or "ReduceSum" or "ReduceMax" or "ReduceMin":
                return Reduce(n, In(0), AxesOf(1), name);
            default:
                return Elementwise(n, In(0), In(1), name);
        }
    }

    /// <summary>ONNX Slice's clamping: the first index and the element count for one axis.</summary>
    public static (long Start, long Count) SliceRange(long start, long end, long step, long dim)
    {
        if (step == 0)
            throw new ArgumentException("Slice with step 0");
        long s = start < 0 ? start + dim : start, e = end < 0 ? end + dim : end;
        if (step > 0)
        {
            s = Math.Clamp(s, 0, dim);
            e = Math.Clamp(e, 0, dim);
            return (s, e > s ? (e - s + step - 1) / step : 0);
        }
        s = Math.Clamp(s, -1, dim - 1);
        e = Math.Clamp(e, -1, dim - 1);
        return (s, s > e ? (s - e - step - 1) / -step : 0);
    }

    private static OnnxTensor Reduce(OnnxNode n, OnnxTensor t, long[]? axes, string name)
    {
        int rank = t.Dims.Length;
        var set = (axes == null || axes.Length == 0 ? Enumerable.Range(0, rank) : axes.Select(a => NormAxis(a, rank))).ToHashSet();
        bool keep = AttrInt(n, "keepdims", 1) != 0;
        var outDims = Enumerable.Range(0, rank).Select(k => set.Contains(k) ? 1L : t.Dims[k]).ToArray();
        long c = Count(outDims);
        var acc = new double[c];
        var seen = new bool[c];
        var os = Strides(outDims);
        var idx = new long[rank];
        for (long i = 0; i < t.Count; i++)
        {
            long o = 0;
            for (int k = 0; k < rank; k++)
                o += (set.Contains(k) ? 0 : idx[k]) * os[k];
            double v = t.Floats != null ? t.Floats[i] : t.Ints![i];
            acc[o] = !seen[o] ? v : n.OpType switch
            {
                "ReduceProd" => acc[o] * v, "ReduceSum" => acc[o] + v, "ReduceMax" => Math.Max(acc[o], v), _ => Math.Min(acc[o], v),
            };
            seen[o] = true;
            for (int k = rank - 1; k >= 0; k--)
            {
                if (++idx[k] < t.Dims[k])
                    break;
                idx[k] = 0;
            }
        }
        var dims = keep ? outDims : Enumerable.Range(0, rank).Where(k => !set.Contains(k)).Select(k => t.Dims[k]).ToArray();
        return t.Floats != null
            ? Make(name, dims, t.DataType, acc.Select(v => (float)v).ToArray(), null)
            : Make(name, dims, t.DataType, null, acc.Select(v => (long)v).ToArray());
    }

    private static OnnxTensor Elementwise(OnnxNode n, OnnxTensor a, OnnxTensor b, string name)
    {
        var dims = Broadcast(a.Dims, b.Dims);
        var ma = BroadcastIndex(a.Dims, dims);
        var mb = BroadcastIndex(b.Dims, dims);
        long c = ma.Length;
        string op = n.OpType;
        bool compare = op is "Equal" or "Less" or "Greater" or "LessOrEqual" or "GreaterOrEqual";
        if (op is "And" or "Or")
        {
            var x = Ints(a, "operand");
            var y = Ints(b, "operand");
            var r = new long[c];
            for (long i = 0; i < c; i++)
                r[i] = op == "And" ? (x[ma[i]] != 0 && y[mb[i]] != 0 ? 1 : 0) : (x[ma[i]] != 0 || y[mb[i]] != 0 ? 1 : 0);
            return IntT(name, dims, r, (int)OnnxDataType.Bool);
        }
        if (a.Ints != null && b.Ints != null)
        {
            var x = a.Ints;
            var y = b.Ints;
            var r = new long[c];
            for (long i = 0; i < c; i++)
            {
                long p = x[ma[i]], q = y[mb[i]];
                r[i] = op switch
                {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    "Div" => q == 0 ? throw new ArgumentException("integer division by zero") : p / q,
                    "Mod" => q == 0 ? throw new ArgumentException("integer modulo by zero") : IntMod(p, q, AttrInt(n, "fmod", 0) != 0),
                    "Pow" => (long)Math.Pow(p, q),
                    "Max" => Math.Max(p, q),
                    "Min" => Math.Min(p, q),
                    "Equal" => p == q ? 1 : 0,
                    "Less" => p < q ? 1 : 0,
                    "Greater" => p > q ? 1 : 0,
                    "LessOrEqual" => p <= q ? 1 : 0,
                    "GreaterOrEqual" => p >= q ? 1 : 0,
                    _ => throw new ArgumentException($"operator {op} is not evaluated on constants"),
                };
            }
            return IntT(name, dims, r, compare ? (int)OnnxDataType.Bool : a.DataType);
        }
        if (a.Floats == null || b.Floats == null)
            throw new ArgumentException($"{op} of a float and an integer constant");
        {
            var x = a.Floats;
            var y = b.Floats;
            if (compare)
            {
                var r = new long[c];
                for (long i = 0; i < c; i++)
                {
                    float p = x[ma[i]], q = y[mb[i]];
                    r[i] = op switch
                    {
                        "Equal" => p == q, "Less" => p < q, "Greater" => p > q, "LessOrEqual" => p <= q, _ => p >= q,
                    } ? 1 : 0;
                }
                return IntT(name, dims, r, (int)OnnxDataType.Bool);
            }
            var f = new float[c];
            for (long i = 0; i < c; i++)
            {
                float p = x[ma[i]], q = y[mb[i]];
                f[i] = op switch
                {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    "Div" => p / q,
                    "Mod" => AttrInt(n, "fmod", 0) != 0 ? p % q : p - q * MathF.Floor(p / q),
                    "Pow" => MathF.Pow(p, q),
                    "Max" => MathF.Max(p, q),
                    "Min" => MathF.Min(p, q),
                    _ => throw new ArgumentException($"operator {op} is not evaluated on constants"),
                };
            }
            return FloatT(name, dims, f);
        }
    }

    /// <summary>Integer remainder: the sign of the divisor (Python's %), or of the dividend with fmod.</summary>
    private static long IntMod(long p, long q, bool fmod)
    {
        long r = p % q;
        if (!fmod && r != 0 && (r < 0) != (q < 0))
            r += q;
        return r;
    }
}
