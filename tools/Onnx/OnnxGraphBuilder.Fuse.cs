using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Onnx;

/// <summary>
/// The chains exporters write for one operator, fused into that operator once the graph is converted
/// (<see cref="OnnxConvertOptions.FuseDecomposedOperators"/>):
/// <code>
/// LayerNorm (opsets before 17):  m = ReduceMean(x)  d = x - m  v = ReduceMean(d^2)  n = d / Sqrt(v + eps)  [n * scale + bias]
///                                -> layernorm(x) over the reduced trailing axes, epsilon eps (scale 1 and bias 0 where absent)
/// exact GELU:                    (x * (Erf(x / sqrt 2) + 1)) * 0.5, or (x * 0.5) * (Erf(x / sqrt 2) + 1)
///                                -> gelu(x)   (x * (1/sqrt 2) and a final / 2 are matched too)
/// a linear layer's bias:         matmul(x) + b, b a constant of the output's last-axis shape -> matmul(x) with bias b
/// a per-feature scale after it:  matmul(x) [then a transpose] * g, g one value per output feature -> the matmul with
///                                W g and b g [then the transpose] (ConvNeXt's layer scale)
/// </code>
/// A chain is fused only where each value inside it feeds nothing but the chain and is not the graph's output; the
/// fused node keeps the name and output of the chain's last node, so what reads the chain's result (and a user's
/// layer name for it) is unchanged. The constants the chain used are dropped with it.
/// </summary>
internal sealed partial class OnnxGraphBuilder
{
    private const float Sqrt2 = 1.41421356237309505f;

    private void FuseDecomposedChains(string graphOutput)
    {
        // A fusion can open another (a bias folded into a matmul, then the scale after it): to a fixed point.
        for (int round = 0; round < 4 && FuseOnce(graphOutput); round++)
        {
        }
    }

    /// <summary>One pass over the nodes; whether anything was fused.</summary>
    private bool FuseOnce(string graphOutput)
    {
        var consumers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < _nodes.Count; i++)
        {
            foreach (var input in _nodes[i].Inputs.Distinct(StringComparer.Ordinal))
            {
                if (!consumers.TryGetValue(input, out var list))
                    consumers[input] = list = [];
                list.Add(i);
            }
        }
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _nodes.Count; i++)
            producer[_nodes[i].Output] = i;

        var taken = new HashSet<int>();
        var replace = new Dictionary<int, GraphNode>();
        for (int i = 0; i < _nodes.Count; i++)
        {
            if (_nodes[i].Op == Ops.MatMul && MatchMatMulScale(i, consumers, graphOutput) is { } scaled
                && !scaled.Keys.Any(taken.Contains))
            {
                taken.UnionWith(scaled.Keys);
                foreach (var (at, node) in scaled)
                {
                    if (node != null)
                        replace[at] = node;
                }
                continue;
            }
            var match = _nodes[i].Op switch
            {
                Ops.ReduceMean => MatchLayerNorm(i, consumers, graphOutput),
                Ops.Erf => MatchGelu(i, consumers, producer, graphOutput),
                Ops.MatMul => MatchMatMulBias(i, consumers, graphOutput),
                _ => null,
            };
            if (match is not { } m || m.Chain.Any(taken.Contains))
                continue;
            taken.UnionWith(m.Chain);
            replace[m.Chain.Max()] = m.Fused;
        }
        if (taken.Count == 0)
            return false;
        var kept = new List<GraphNode>(_nodes.Count - taken.Count + replace.Count);
        for (int i = 0; i < _nodes.Count; i++)
        {
            if (replace.TryGetValue(i, out var fused))
                kept.Add(fused);
            else if (!taken.Contains(i))
                kept.Add(_nodes[i]);
        }
        _nodes.Clear();
        _nodes.AddRange(kept);
        return true;
    }

    /// <summary>The one node reading <paramref name="value"/>, or -1 (none, several, or the graph's output).</summary>
    private static int Only(string value, Dictionary<string, List<int>> consumers, string graphOutput) =>
        value != graphOutput && consumers.TryGetValue(value, out var list) && list.Count == 1 ? list[0] : -1;

    /// <summary>The node's constant operand when it is one float (a scalar constant of a binary op), else null.</summary>
    private float? ScalarConstant(GraphNode n)
    {
        if (n.Inputs.Length != 1 || n.Param("constant") is not { } name || !_weights.TryGetValue(name, out var t) || t.Length != 1)
            return null;
        return t.Data[0];
    }

    private static bool Near(float? v, float target) => v is { } x && Math.Abs(x - target) <= 1e-6f * Math.Abs(target);

    /// <summary>x / sqrt 2 or x * (1 / sqrt 2) (the constant second for the division).</summary>
    private bool IsHalfSqrt2Scaling(GraphNode n) =>
        n.Op == Ops.Div && n.Int("constant_first", 0) == 0 && Near(ScalarConstant(n), Sqrt2)
        || n.Op == Ops.Mul && Near(ScalarConstant(n), 1f / Sqrt2);

    /// <summary>y * 0.5 (either order) or y / 2.</summary>
    private bool IsHalving(GraphNode n) =>
        n.Op == Ops.Mul && Near(ScalarConstant(n), 0.5f)
        || n.Op == Ops.Div && n.Int("constant_first", 0) == 0 && Near(ScalarConstant(n), 2f);

    private (int[] Chain, GraphNode Fused)? MatchGelu(int erf, Dictionary<string, List<int>> consumers,
        Dictionary<string, int> producer, string graphOutput)
    {
        var e = _nodes[erf];
        if (!producer.TryGetValue(e.Inputs[0], out int ia) || Only(e.Inputs[0], consumers, graphOutput) != erf)
            return null;
        var a = _nodes[ia];
        if (!IsHalfSqrt2Scaling(a))
            return null;
        string x = a.Inputs[0];
        int ib = Only(e.Output, consumers, graphOutput);
        if (ib < 0 || _nodes[ib] is not { Op: Ops.Add } b || !Near(ScalarConstant(b), 1f))
            return null;
        int im = Only(b.Output, consumers, graphOutput);
        if (im < 0 || _nodes[im] is not { Op: Ops.Mul, Inputs.Length: 2 } m || m.Params.Count != 0)
            return null;
        string other = m.Inputs[0] == b.Output ? m.Inputs[1] : m.Inputs[1] == b.Output ? m.Inputs[0] : "";
        if (other == x)
        {
            // (x * (erf + 1)) * 0.5
            int iy = Only(m.Output, consumers, graphOutput);
            if (iy < 0 || !IsHalving(_nodes[iy]))
                return null;
            return ([ia, erf, ib, im, iy], Fused(_nodes[iy], Ops.Gelu, x, new(), new()));
        }
        // (x * 0.5) * (erf + 1)
        if (!producer.TryGetValue(other, out int ih) || Only(other, consumers, graphOutput) != im)
            return null;
        var h = _nodes[ih];
        if (!IsHalving(h) || h.Inputs[0] != x)
            return null;
        return ([ia, erf, ib, ih, im], Fused(m, Ops.Gelu, x, new(), new()));
    }

    /// <summary>A <c>matmul</c> whose only reader adds a constant of its output's last-axis shape: the bias of a
    /// linear layer, folded into the matmul (one pass over the output instead of two).</summary>
    private (int[] Chain, GraphNode Fused)? MatchMatMulBias(int im, Dictionary<string, List<int>> consumers, string graphOutput)
    {
        var m = _nodes[im];
        if (m.Param("bias") != null)
            return null;
        int ia = Only(m.Output, consumers, graphOutput);
        if (ia < 0 || _nodes[ia] is not { Op: Ops.Add, Inputs.Length: 1 } add || add.Param("constant") is not { } name
            || !_weights.TryGetValue(name, out var t) || !t.Shape.SequenceEqual([m.Shape[^1]]))
            return null;
        var pars = new Dictionary<string, string>(m.Params, StringComparer.Ordinal) { ["bias"] = name };
        return ([im, ia], Fused(add, Ops.MatMul, m.Inputs[0], pars, new Dictionary<string, double[]>(m.Attrs, StringComparer.Ordinal)));
    }

    /// <summary>
    /// A <c>matmul</c> whose product (directly, or through one transpose that nothing else reads) only a Mul by a
    /// constant reads, the constant one value per output feature of the matmul (or one value) and 1 along every other
    /// axis: a per-channel scale after a linear layer (ConvNeXt's layer scale), folded into the matmul's weight and
    /// bias, <c>W'[k, c] = W[k, c] g[c]</c>, <c>b'[c] = b[c] g[c]</c>. Returns the new nodes by index (null: removed):
    /// the matmul with the new weights, the transpose (if any) writing the Mul's output, and no Mul.
    /// </summary>
    private Dictionary<int, GraphNode?>? MatchMatMulScale(int im, Dictionary<string, List<int>> consumers, string graphOutput)
    {
        var m = _nodes[im];
        int next = Only(m.Output, consumers, graphOutput);
        if (next < 0)
            return null;
        int rank = m.Shape.Length + 1, axis = rank - 1, itr = -1;
        if (_nodes[next] is { Op: Ops.Transpose } tr)
        {
            int[] perm = tr.Ints("perm", []);
            axis = Array.IndexOf(perm, rank - 1);
            itr = next;
            next = Only(tr.Output, consumers, graphOutput);
            if (axis < 1 || next < 0)
                return null;
        }
        if (_nodes[next] is not { Op: Ops.Mul, Inputs.Length: 1 } mul || mul.Param("constant") is not { } gname
            || !_weights.TryGetValue(gname, out var g) || g.Shape.Length > rank - 1)
            return null;
        int c = m.Shape[^1];
        // g right-aligned against (N, ...) without the batch: c (or 1) at the matmul's feature axis, 1 elsewhere.
        int pad = rank - 1 - g.Shape.Length;
        for (int a = 1; a < rank; a++)
        {
            int d = a - 1 - pad < 0 ? 1 : g.Shape[a - 1 - pad];
            if (d != 1 && (a != axis || d != c))
                return null;
        }
        var w = _weights[m.Param("weight")!];
        int k = w.Shape[0];
        float G(int j) => g.Length == 1 ? g.Data[0] : g.Data[j];
        var w2 = new float[k * c];
        for (int kk = 0; kk < k; kk++)
        for (int j = 0; j < c; j++)
            w2[kk * c + j] = w.Data[kk * c + j] * G(j);
        var pars = new Dictionary<string, string>(m.Params, StringComparer.Ordinal)
        {
            ["weight"] = NewWeight(m.Name + ".scaled_weight", new HostTensor([k, c], w2)),
        };
        if (m.Param("bias") is { } bname)
        {
            var b = _weights[bname];
            pars["bias"] = NewWeight(m.Name + ".scaled_bias", new HostTensor([c], Enumerable.Range(0, c).Select(j => b.Data[j] * G(j)).ToArray()));
        }
        var attrs = new Dictionary<string, double[]>(m.Attrs, StringComparer.Ordinal);
        var result = new Dictionary<int, GraphNode?>();
        // Without a transpose the matmul writes the Mul's value; with one it keeps its own and the transpose writes it.
        result[im] = Fused(itr < 0 ? mul : m, Ops.MatMul, m.Inputs[0], pars, attrs);
        if (itr >= 0)
        {
            var t = _nodes[itr];
            result[itr] = new GraphNode { Name = t.Name, Op = t.Op, Inputs = t.Inputs, Output = mul.Output, Params = t.Params, Attrs = t.Attrs, Shape = mul.Shape };
        }
        result[next] = null;
        return result;
    }

    private (int[] Chain, GraphNode Fused)? MatchLayerNorm(int mean, Dictionary<string, List<int>> consumers, string graphOutput)
    {
        var m1 = _nodes[mean];
        string x = m1.Inputs[0];
        int[] shape = _shapes[x];
        int[] axes = m1.Ints("axes", []).Order().ToArray();
        // The reduced axes must be the trailing ones of (N, ...), the batch axis never among them.
        if (m1.Int("keepdims", 1) != 1 || axes.Length == 0 || axes[0] < 1 || axes[^1] != shape.Length
            || axes.Where((v, k) => v != axes[0] + k).Any())
            return null;
        int axis = axes[0];
        long cols = 1;
        for (int k = axis - 1; k < shape.Length; k++)
            cols *= shape[k];

        int id = Only(m1.Output, consumers, graphOutput);
        if (id < 0 || _nodes[id] is not { Op: Ops.Sub, Inputs.Length: 2 } d || d.Inputs[0] != x || d.Inputs[1] != m1.Output)
            return null;
        // d feeds the square and the division, nothing else.
        if (d.Output == graphOutput || !consumers.TryGetValue(d.Output, out var dUsers) || dUsers.Count != 2)
            return null;
        int ip = dUsers.FirstOrDefault(u => _nodes[u].Op != Ops.Div, -1);
        int iq = dUsers.FirstOrDefault(u => _nodes[u].Op == Ops.Div, -1);
        if (ip < 0 || iq < 0)
            return null;
        var p = _nodes[ip];
        bool square = p.Op == Ops.Pow && p.Float("exponent", 0) == 2f
                      || p.Op == Ops.Mul && p.Inputs.Length == 2 && p.Inputs[0] == d.Output && p.Inputs[1] == d.Output;
        if (!square)
            return null;
        int iv = Only(p.Output, consumers, graphOutput);
        if (iv < 0 || _nodes[iv] is not { Op: Ops.ReduceMean } v || v.Int("keepdims", 1) != 1
            || !v.Ints("axes", []).Order().SequenceEqual(axes))
            return null;
        int ie = Only(v.Output, consumers, graphOutput);
        if (ie < 0 || _nodes[ie] is not { Op: Ops.Add } addEps || ScalarConstant(addEps) is not { } eps || !(eps > 0) || !float.IsFinite(eps))
            return null;
        int isq = Only(addEps.Output, consumers, graphOutput);
        if (isq < 0 || _nodes[isq] is not { Op: Ops.Sqrt } sq)
            return null;
        var q = _nodes[iq];
        if (Only(sq.Output, consumers, graphOutput) != iq || q.Inputs.Length != 2 || q.Inputs[0] != d.Output || q.Inputs[1] != sq.Output)
            return null;

        var chain = new List<int> { mean, id, ip, iv, ie, isq, iq };
        var last = q;
        string? scale = null, bias = null;
        int ig = Only(q.Output, consumers, graphOutput);
        if (ig >= 0 && _nodes[ig] is { Op: Ops.Mul } g && RowConstant(g, shape, axis, cols) is { } gamma)
        {
            scale = gamma;
            chain.Add(ig);
            last = g;
            int ib = Only(g.Output, consumers, graphOutput);
            if (ib >= 0 && _nodes[ib] is { Op: Ops.Add } b && RowConstant(b, shape, axis, cols) is { } beta)
            {
                bias = beta;
                chain.Add(ib);
                last = b;
            }
        }
        int[] rowShape = shape[(axis - 1)..];
        scale ??= NewWeight(last.Name + ".scale", new HostTensor(rowShape, Enumerable.Repeat(1f, (int)cols).ToArray()));
        bias ??= NewWeight(last.Name + ".bias", new HostTensor(rowShape, new float[cols]));
        var attrs = new Dictionary<string, double[]>(StringComparer.Ordinal) { ["axis"] = [axis], ["epsilon"] = [eps] };
        var pars = new Dictionary<string, string>(StringComparer.Ordinal) { ["scale"] = scale, ["bias"] = bias };
        return (chain.ToArray(), Fused(last, Ops.LayerNorm, x, pars, attrs));
    }

    /// <summary>The name of <paramref name="n"/>'s constant when it holds one value per element of a normalized row
    /// (the trailing axes from <paramref name="axis"/>, leading ones of either shape aside), else null.</summary>
    private string? RowConstant(GraphNode n, int[] shape, int axis, long cols)
    {
        if (n.Inputs.Length != 1 || n.Param("constant") is not { } name || !_weights.TryGetValue(name, out var t) || t.Length != cols)
            return null;
        static IEnumerable<int> Trim(IEnumerable<int> s) => s.SkipWhile(v => v == 1);
        return Trim(t.Shape).SequenceEqual(Trim(shape[(axis - 1)..])) ? name : null;
    }

    private GraphNode Fused(GraphNode last, string op, string x, Dictionary<string, string> pars, Dictionary<string, double[]> attrs)
    {
        var node = new GraphNode { Name = last.Name, Op = op, Inputs = [x], Output = last.Output, Params = pars, Attrs = attrs, Shape = [] };
        int[] shape = GraphValidator.InferShape(node, [_shapes[x]], _weights);
        if (!shape.SequenceEqual(last.Shape))
            throw new InvalidOperationException($"fusing into '{last.Name}' changed its shape from {TensorShape.Format(last.Shape)} to {TensorShape.Format(shape)}");
        return new GraphNode { Name = last.Name, Op = op, Inputs = [x], Output = last.Output, Params = pars, Attrs = attrs, Shape = shape };
    }
}
