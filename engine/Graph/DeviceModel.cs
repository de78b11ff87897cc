using CamEngine.Backends;
using CamEngine.Graph.Ops;
using CamEngine.Model;

namespace CamEngine.Graph;

/// <summary>
/// A validated model whose weights live on a backend: runs the graph forward for a batch and differentiates
/// it in reverse. Node by node it calls only <see cref="Backend"/> operations, so it works unchanged on every
/// backend.
/// </summary>
internal sealed partial class DeviceModel : IDisposable
{
    private readonly Dictionary<string, Tensor> _params;

    private DeviceModel(ModelGraph graph, Backend backend, Dictionary<string, Tensor> parameters)
    {
        Graph = graph;
        Backend = backend;
        _params = parameters;
    }

    /// <summary>The graph.</summary>
    public ModelGraph Graph { get; }

    /// <summary>The backend holding the weights.</summary>
    public Backend Backend { get; }

    /// <summary>Validates <paramref name="file"/> and uploads the weights its graph uses.</summary>
    public static DeviceModel Load(ModelFile file, Backend backend)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(backend);
        file.Validate();
        var uploaded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var node in file.Graph.Nodes)
            {
                foreach (var name in node.Params.Values)
                {
                    if (!uploaded.ContainsKey(name))
                        uploaded[name] = backend.Upload(file.Weights[name]);
                }
            }
        }
        catch
        {
            foreach (var t in uploaded.Values)
                t.Dispose();
            throw;
        }
        return new DeviceModel(file.Graph, backend, uploaded);
    }

    /// <summary>A parameter tensor by its file name.</summary>
    public Tensor Parameter(string name) => _params[name];

    /// <summary>Names of the parameter tensors on the device.</summary>
    public IEnumerable<string> ParameterNames => _params.Keys;

    /// <summary>Overwrites a parameter with new values (training).</summary>
    public void SetParameter(string name, ReadOnlySpan<float> values)
    {
        if (!_params.TryGetValue(name, out var t))
            throw new CamEngineException($"no parameter named '{name}'");
        Backend.CopyFromHost(t, values);
    }

    /// <summary>
    /// Runs the graph on <paramref name="input"/> (N, C, H, W) and keeps every node's output (the reverse pass
    /// and layer capture need them). The result owns those tensors; the input stays the caller's.
    /// </summary>
    public ForwardPass Forward(Tensor input) => RunPlan(input, _fullPlan ??= FullPlan(Graph));

    private LeanPlan? _fullPlan;

    /// <summary>The plan that pins every tensor and keeps all max-pool routing: nothing freed, nothing in place.</summary>
    private static LeanPlan FullPlan(ModelGraph g)
    {
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in g.Nodes)
        {
            all.UnionWith(node.Inputs);
            all.Add(node.Output);
        }
        return LeanPlan.For(g, all, -1);
    }

    /// <summary>
    /// Runs the graph on <paramref name="input"/> like <see cref="Forward"/> but keeps only the output: each
    /// activation is freed after the last node that reads it (max-pool routing at once), and a ReLU or an
    /// addition whose operand no later node reads writes its result over that operand, so the pass holds a few
    /// activations at a time instead of all of them and their memory is reused while still in cache. The values
    /// are those of <see cref="Forward"/>. The result can be read for its <see cref="ForwardPass.Output"/> only
    /// (no layer capture, no reverse pass).
    /// </summary>
    public ForwardPass ForwardOutput(Tensor input) =>
        RunPlan(input, _leanPlan ??= LeanPlan.For(Graph, new HashSet<string>(StringComparer.Ordinal), Graph.Nodes.Count - 1));

    /// <summary>
    /// Runs the graph on <paramref name="input"/> keeping only what a reverse pass from the output to
    /// <paramref name="layers"/> (<see cref="BackwardRequest.Layers"/>, no input or parameter gradients) and the
    /// methods that read those layers need: the layers' activations, every tensor a node after the earliest layer
    /// reads or writes, and those nodes' max-pool routing. Everything before is freed after its last reader and
    /// written over in place as in <see cref="ForwardOutput"/>, so the trunk's activations are reused while still
    /// in cache. Values are those of <see cref="Forward"/>; reading a freed activation throws.
    /// </summary>
    public ForwardPass ForwardFor(Tensor input, IReadOnlyList<string> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        string key = string.Join('\n', layers);
        LeanPlan? plan;
        lock (_layerPlans)
        {
            if (!_layerPlans.TryGetValue(key, out plan))
            {
                var g = Graph;
                int stop = layers.Count == 0 ? g.Nodes.Count - 1 : layers.Min(IndexOfOutput);
                var pinned = new HashSet<string>(layers, StringComparer.Ordinal);
                for (int i = stop + 1; i < g.Nodes.Count; i++)
                {
                    pinned.UnionWith(g.Nodes[i].Inputs);
                    pinned.Add(g.Nodes[i].Output);
                }
                _layerPlans[key] = plan = LeanPlan.For(g, pinned, stop);
            }
        }
        return RunPlan(input, plan);
    }

    private readonly Dictionary<string, LeanPlan> _layerPlans = new(StringComparer.Ordinal);

    private ForwardPass RunPlan(Tensor input, LeanPlan plan)
    {
        ArgumentNullException.ThrowIfNull(input);
        var g = Graph;
        if (input.Shape.Length != 4 || !input.Shape.AsSpan(1).SequenceEqual(g.InputShape))
            throw new CamEngineException(
                $"input has shape {input.ShapeText}; the model takes (N,{string.Join(",", g.InputShape)})");
        int n = input.Shape[0];
        var pass = new ForwardPass(this, input, n);
        try
        {
            lock (Backend.SyncRoot)
            {
                var timer = NodeTimer;
                for (int i = 0; i < g.Nodes.Count; i++)
                {
                    var node = g.Nodes[i];
                    long t0 = timer == null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
                    int into = plan.Into[i];
                    if (plan.Absorbed[i] is { } carried)
                    {
                        // A fused conv before already wrote this node's value ("": a value no node reads, as the
                        // sigmoid inside a fused SiLU).
                        if (carried.Length > 0)
                            pass.Set(node.Output, pass[carried]);
                    }
                    else if (i > 0 && plan.FusedRelu[i - 1])
                        pass.Set(node.Output, pass[node.Inputs[0]]); // the conv before applied this ReLU
                    else if (plan.Pooled[i] >= 0)
                        RunPooledConv(pass, node, g.Nodes[plan.Pooled[i]], plan.FusedRelu[i]);
                    else if (plan.Epilogues[i] is { } epilogue)
                        RunFusedConv(pass, node, epilogue);
                    else if (plan.FusedGelu[i])
                        RunMatMulGelu(pass, node);
                    else if (node.Op == Model.Ops.Clip && into >= 0)
                        RunClipInPlace(pass, node);
                    else
                        RunNode(pass, node, n, into < 0 ? null : pass[node.Inputs[into]], plan.FusedRelu[i], routing: i > plan.Stop);
                    foreach (var name in plan.Unbind[i])
                        pass.Unbind(name);
                    if (i <= plan.Stop && pass.Argmax.Remove(node.Name, out var argmax))
                        pass.Release(argmax);
                    foreach (var name in plan.Release[i])
                        pass.Release(name);
                    if (timer != null)
                    {
                        Backend.Synchronize();
                        timer(node, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
                    }
                }
            }
        }
        catch
        {
            pass.Dispose();
            throw;
        }
        return pass;
    }

    /// <summary>
    /// Diagnostics (the bench's `profile` mode): when set, every node a forward plan runs is timed as it runs, in
    /// sequence, and reported with its <see cref="System.Diagnostics.Stopwatch"/> ticks (a node a fused conv
    /// before absorbed reports about 0).
    /// </summary>
    internal static Action<GraphNode, long>? NodeTimer { get; set; }

    private LeanPlan? _leanPlan;

    /// <summary>
    /// How a forward pass keeps or reuses storage: <see cref="Forward"/> pins every name (nothing freed or
    /// overwritten), <see cref="ForwardFor"/> pins what the reverse pass reads, <see cref="ForwardOutput"/> nothing
    /// but the output. Names that share one storage form a group (a reshaped or
    /// flattened output is a view of its input; an in-place ReLU or addition writes over its operand); a group's
    /// storage is freed after the last node that reads any of its names, never when it holds the graph output,
    /// and never for the graph input, which belongs to the caller. A ReLU, or an addition of two activations
    /// whose operand has the output's shape, goes in place when no later node reads that operand's group.
    /// </summary>
    /// <param name="Release">Per node: the names to drop after it, each storage's allocating name first.</param>
    /// <param name="Into">Per node: the input it writes its result over, or -1.</param>
    /// <param name="Stop">Max-pool routing is freed for nodes up to this index and kept after it.</param>
    /// <param name="Unbind">Per node: the names whose values it overwrote in place (dropped from the pass, their
    /// storage now holding the node's output).</param>
    /// <param name="FusedRelu">Per node: a conv, or a same-shape addition of two activations, whose output only the
    /// next node, a ReLU in place over it, reads; the node applies the ReLU as it writes (<see cref="Backend.Conv2dRelu"/>,
    /// <see cref="Backend.AddRelu"/>) and that ReLU node only names the result.</param>
    /// <param name="Epilogues">Per node: a conv that applies the residual addition and activation of the nodes after
    /// it as it writes (<see cref="Backend.Conv2dFused"/>), or null.</param>
    /// <param name="Absorbed">Per node: for a node a fused conv before it computed, the name whose value it takes
    /// (its operand in the chain; empty for a value nothing reads, the sigmoid of a fused SiLU), else null.</param>
    /// <param name="Pooled">Per node: for a conv whose output (after the ReLU it fuses, if any) only a max pool at or
    /// before <paramref name="Stop"/> reads, unkept, the index of that pool, which the conv computes
    /// (<see cref="Backend.Conv2dMaxPool"/>; the conv's and ReLU's values are never made); else -1.</param>
    /// <param name="FusedGelu">Per node: a matmul that applies the GELU node after it as it stores
    /// (<see cref="Backend.GemmGelu"/>); that node is then absorbed.</param>
    private sealed record LeanPlan(string[][] Release, int[] Into, int Stop, string[][] Unbind, bool[] FusedRelu,
        ConvEpilogue?[] Epilogues, string?[] Absorbed, int[] Pooled, bool[] FusedGelu)
    {
        /// <summary>The plan that never frees nor overwrites the <paramref name="pinned"/> names (nor the storage
        /// they share).</summary>
        public static LeanPlan For(ModelGraph g, HashSet<string> pinned, int stop)
        {
            int count = g.Nodes.Count;
            var lastRead = new Dictionary<string, int>(StringComparer.Ordinal);
            var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
            for (int i = 0; i < count; i++)
            {
                foreach (var name in g.Nodes[i].Inputs)
                    lastRead[name] = i;
                shapes[g.Nodes[i].Output] = g.Nodes[i].Shape;
            }
            var root = new Dictionary<string, string>(StringComparer.Ordinal);
            var groupEnd = new Dictionary<string, int>(StringComparer.Ordinal);
            var pinnedRoots = new HashSet<string>(StringComparer.Ordinal);
            var members = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            var unbind = new string[count][];
            string Root(string name) => root.TryGetValue(name, out var r) ? r : name;
            int LastRead(string name) => lastRead.TryGetValue(name, out int at) ? at : -1;
            void Join(string output, string into, int at)
            {
                string r = Root(into);
                root[output] = r;
                if (!members.TryGetValue(r, out var group))
                    members[r] = group = [r];
                group.Add(output);
                groupEnd[r] = Math.Max(groupEnd.TryGetValue(r, out int e) ? e : at, Math.Max(at, LastRead(output)));
            }
            var into = new int[count];
            for (int i = 0; i < count; i++)
            {
                var node = g.Nodes[i];
                into[i] = -1;
                unbind[i] = [];
                var rule = OpRegistry.For(node);
                if (rule.IsView)
                {
                    Join(node.Output, node.Inputs[0], i);
                    if (pinned.Contains(node.Output))
                        pinnedRoots.Add(Root(node.Output));
                    continue;
                }
                // A SiLU's multiplication (conv, sigmoid of it, their product) may write over the conv's output, so
                // that the conv can fuse the SiLU; unfused, the product is element-wise over same-shape operands.
                bool siluMul = i > 1 && SiluChain(g, i - 2);
                // A clip runs in place here too (the executor applies it itself, RunClipInPlace), so a conv can fuse it.
                // A GELU right after the matmul whose product it reads may write over that product, so that the
                // matmul can apply it as it stores (FusedGelu).
                bool candidates = rule.CanRunInPlace(node) || node.Op == Model.Ops.Clip || siluMul || (i > 0 && GeluAfter(g, i - 1));
                // An addition writes over the output of the conv just before it if it can, and a SiLU's multiplication
                // over the conv's output, so that the conv may fuse them.
                int first = i > 0 && node.Op == Model.Ops.Add && g.Nodes[i - 1].Op == Model.Ops.Conv
                    ? Math.Max(0, Array.IndexOf(node.Inputs, g.Nodes[i - 1].Output))
                    : siluMul ? Array.IndexOf(node.Inputs, g.Nodes[i - 2].Output) : 0;
                for (int t = 0; candidates && t < node.Inputs.Length && into[i] < 0; t++)
                {
                    int k = (first + t) % node.Inputs.Length;
                    string x = node.Inputs[k], r = Root(x);
                    if (r == g.InputName || pinned.Contains(x) || pinnedRoots.Contains(r)
                        || !groupEnd.TryGetValue(r, out int end) || end > i
                        || !shapes.TryGetValue(x, out var shape) || !shape.AsSpan().SequenceEqual(node.Shape))
                        continue;
                    into[i] = k;
                    unbind[i] = members.TryGetValue(r, out var stale) ? [.. stale] : [r];
                    Join(node.Output, x, i);
                }
                if (into[i] < 0)
                    groupEnd[node.Output] = Math.Max(i, LastRead(node.Output));
                if (pinned.Contains(node.Output))
                    pinnedRoots.Add(Root(node.Output));
            }
            string keep = Root(g.OutputName);
            var release = new List<string>[count];
            for (int i = 0; i < count; i++)
                release[i] = [];
            foreach (var (name, end) in groupEnd)
            {
                if (name != keep && name != g.InputName && !pinnedRoots.Contains(name))
                    release[end].Add(name);
            }
            // Then the names that share a freed storage, so the pass holds no name of freed memory.
            foreach (var (name, r) in root)
            {
                if (r != keep && r != g.InputName && !pinnedRoots.Contains(r))
                    release[groupEnd[r]].Add(name);
            }
            var fused = new bool[count];
            for (int i = 0; i + 1 < count; i++)
            {
                var next = g.Nodes[i + 1];
                var node = g.Nodes[i];
                // The next node must be a plain ReLU (not under the guided rules: those only change the backward).
                fused[i] = OpRegistry.For(node).CanFuseRelu(node, shapes) && next.Op == Model.Ops.Relu && into[i + 1] == 0
                           && next.Inputs[0] == node.Output;
            }
            var readers = ReaderCounts(g);
            var (epilogues, absorbed) = ConvEpilogues(g, pinned, into, fused, readers);
            var pooled = PooledConvs(g, stop, fused, epilogues, absorbed, readers);
            var gelu = MatMulGelus(g, pinned, into, readers, absorbed);
            return new LeanPlan(release.Select(l => l.ToArray()).ToArray(), into, stop, unbind, fused, epilogues, absorbed, pooled,
                gelu);
        }

        /// <summary>
        /// The matmuls that apply the GELU after them as they store (<see cref="Backend.GemmGelu"/>): the next node is a
        /// GELU of the product, which nothing else reads and nothing keeps (not a requested layer, not read by a reverse
        /// pass, not the output), and the plan writes the GELU over the product in place; the GELU node then only
        /// names the result (<see cref="LeanPlan.Absorbed"/>).
        /// </summary>
        private static bool[] MatMulGelus(ModelGraph g, HashSet<string> pinned, int[] into, Dictionary<string, int> readers,
            string?[] absorbed)
        {
            var fused = new bool[g.Nodes.Count];
            for (int i = 0; i + 1 < g.Nodes.Count; i++)
            {
                var mm = g.Nodes[i];
                if (!GeluAfter(g, i) || absorbed[i] != null || absorbed[i + 1] != null || into[i + 1] != 0
                    || pinned.Contains(mm.Output) || mm.Output == g.OutputName || readers.GetValueOrDefault(mm.Output) != 1)
                    continue;
                fused[i] = true;
                absorbed[i + 1] = mm.Output;
            }
            return fused;
        }

        /// <summary>Whether node <paramref name="mm"/> is a matmul and the next node a GELU of its product.</summary>
        private static bool GeluAfter(ModelGraph g, int mm) =>
            mm + 1 < g.Nodes.Count && g.Nodes[mm].Op == Model.Ops.MatMul && g.Nodes[mm + 1].Op == Model.Ops.Gelu
            && g.Nodes[mm + 1].Inputs[0] == g.Nodes[mm].Output;

        /// <summary>How many node inputs name each value (a node reading a value twice counts twice).</summary>
        private static Dictionary<string, int> ReaderCounts(ModelGraph g)
        {
            var readers = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var node in g.Nodes)
            {
                foreach (var name in node.Inputs)
                    readers[name] = readers.GetValueOrDefault(name) + 1;
            }
            return readers;
        }

        /// <summary>
        /// The convs that compute the max pool after them (<see cref="LeanPlan.Pooled"/>): a conv, optionally with the
        /// ReLU it fuses, whose value only a max pool reads, none of it kept (not a requested layer, not the output)
        /// and the pool's routing not kept (at or before <paramref name="stop"/>). The ReLU and the pool then only
        /// name the result (<see cref="LeanPlan.Absorbed"/> empty for the ReLU, the pool's own name set by the conv).
        /// </summary>
        private static int[] PooledConvs(ModelGraph g, int stop, bool[] fusedRelu,
            ConvEpilogue?[] epilogues, string?[] absorbed, Dictionary<string, int> readers)
        {
            int count = g.Nodes.Count;
            var pooled = new int[count];
            Array.Fill(pooled, -1);
            for (int i = 0; i < count; i++)
            {
                var conv = g.Nodes[i];
                if (conv.Op != Model.Ops.Conv || epilogues[i] != null || absorbed[i] != null)
                    continue;
                int j = fusedRelu[i] ? i + 2 : i + 1;
                if (j >= count || j > stop || g.Nodes[j].Op != Model.Ops.MaxPool)
                    continue;
                // A pinned value is a requested layer (at or after stop) or read after stop: never before this pool.
                string value = g.Nodes[j - 1].Output;
                if (g.Nodes[j].Inputs[0] != value || readers.GetValueOrDefault(value) != 1 || value == g.OutputName)
                    continue;
                pooled[i] = j;
                for (int k = i + 1; k <= j; k++)
                    absorbed[k] = "";
            }
            return pooled;
        }

        /// <summary>Whether node <paramref name="conv"/> is a conv followed by the SiLU of its output as exported: a
        /// sigmoid of it, then the product of the two (either operand order).</summary>
        private static bool SiluChain(ModelGraph g, int conv)
        {
            if (conv + 2 >= g.Nodes.Count)
                return false;
            var (c, sig, mul) = (g.Nodes[conv], g.Nodes[conv + 1], g.Nodes[conv + 2]);
            return c.Op == Model.Ops.Conv && sig.Op == Model.Ops.Sigmoid && sig.Inputs[0] == c.Output
                   && mul.Op == Model.Ops.Mul && mul.Inputs.Length == 2
                   && mul.Inputs.Contains(c.Output) && mul.Inputs.Contains(sig.Output);
        }

        /// <summary>
        /// The convs that fuse what follows them: a same-shape addition of an activation computed before the conv (a
        /// residual shortcut), then optionally a ReLU or clip; or a clip alone (ReLU alone is <c>FusedRelu</c>); or a
        /// SiLU exported as sigmoid and multiplication. Every
        /// intermediate must be unpinned (not a requested layer, not read by a reverse pass) and read only by the next
        /// node of the chain, which writes its result over it in place, so the storage plan is that of the unfused
        /// nodes.
        /// </summary>
        private static (ConvEpilogue?[], string?[]) ConvEpilogues(ModelGraph g, HashSet<string> pinned, int[] into, bool[] fusedRelu,
            Dictionary<string, int> readers)
        {
            int count = g.Nodes.Count;
            var producedAt = new Dictionary<string, int>(StringComparer.Ordinal) { [g.InputName] = -1 };
            for (int i = 0; i < count; i++)
                producedAt[g.Nodes[i].Output] = i;
            var epilogues = new ConvEpilogue?[count];
            var absorbed = new string?[count];
            bool Intermediate(string name, int reader) =>
                !pinned.Contains(name) && name != g.OutputName && readers.GetValueOrDefault(name) == 1 && into[reader] >= 0
                && g.Nodes[reader].Inputs[into[reader]] == name;
            // SiLU as exported (x * sigmoid(x)) right after conv i: the conv's output read only by the sigmoid and the
            // mul, the sigmoid's only by the mul, neither kept, and the mul written over the conv's output.
            bool SiluAfter(int i)
            {
                if (!SiluChain(g, i))
                    return false;
                var (conv, sig, mul) = (g.Nodes[i], g.Nodes[i + 1], g.Nodes[i + 2]);
                return mul.Shape.AsSpan().SequenceEqual(conv.Shape)
                       && !pinned.Contains(conv.Output) && conv.Output != g.OutputName && readers.GetValueOrDefault(conv.Output) == 2
                       && !pinned.Contains(sig.Output) && sig.Output != g.OutputName && readers.GetValueOrDefault(sig.Output) == 1
                       && into[i + 2] >= 0 && mul.Inputs[into[i + 2]] == conv.Output;
            }
            for (int i = 0; i + 1 < count; i++)
            {
                var conv = g.Nodes[i];
                if (conv.Op != Model.Ops.Conv || fusedRelu[i] || (i > 0 && absorbed[i] != null))
                    continue;
                var next = g.Nodes[i + 1];
                if (SiluAfter(i))
                {
                    // conv -> sigmoid -> mul(conv, sigmoid), the mul in place over the conv's output: the conv writes
                    // v * sigmoid(v); the sigmoid's own tensor is never made and the mul names the conv's storage.
                    epilogues[i] = new ConvEpilogue(null, Kernels.EpilogueActivation.Silu, 0f, 0f);
                    absorbed[i + 1] = "";
                    absorbed[i + 2] = conv.Output;
                    continue;
                }
                string? residual = null;
                int last = i;
                if (next.Op == Model.Ops.Add && next.Inputs.Length == 2 && Intermediate(conv.Output, i + 1)
                    && next.Shape.AsSpan().SequenceEqual(conv.Shape))
                {
                    string other = next.Inputs[0] == conv.Output ? next.Inputs[1] : next.Inputs[0];
                    if (other != conv.Output && producedAt.TryGetValue(other, out int at) && at < i
                        && (at < 0 ? g.InputShape : g.Nodes[at].Shape).AsSpan().SequenceEqual(conv.Shape))
                    {
                        residual = other;
                        last = i + 1;
                    }
                }
                var activation = Kernels.EpilogueActivation.None;
                float lo = 0f, hi = 0f;
                if (last + 1 < count && g.Nodes[last + 1] is { Op: Model.Ops.Relu or Model.Ops.Clip } act
                    && act.Inputs[0] == g.Nodes[last].Output && Intermediate(g.Nodes[last].Output, last + 1)
                    && (residual != null || act.Op == Model.Ops.Clip))
                {
                    activation = act.Op == Model.Ops.Relu ? Kernels.EpilogueActivation.Relu : Kernels.EpilogueActivation.Clip;
                    if (act.Op == Model.Ops.Clip)
                    {
                        lo = act.Float("min", float.NegativeInfinity);
                        hi = act.Float("max", float.PositiveInfinity);
                    }
                    last++;
                }
                if (last == i)
                    continue;
                epilogues[i] = new ConvEpilogue(residual, activation, lo, hi);
                for (int k = i + 1; k <= last; k++)
                    absorbed[k] = g.Nodes[k - 1].Output;
            }
            return (epilogues, absorbed);
        }
    }

    /// <summary>What a fused conv applies as it writes: a residual tensor added (or none), then an activation.</summary>
    private sealed record ConvEpilogue(string? Residual, Kernels.EpilogueActivation Activation, float Lo, float Hi);

    /// <summary>The names of the convs that a forward pass fuses with the nodes after them (<see cref="ForwardOutput"/>
    /// when <paramref name="layers"/> is null, else <see cref="ForwardFor"/>), for tests and diagnostics.</summary>
    internal IReadOnlyList<string> FusedConvs(IReadOnlyList<string>? layers)
    {
        var plan = PlanFor(layers);
        return Graph.Nodes.Where((_, i) => plan.Epilogues[i] != null).Select(n => n.Name).ToList();
    }

    /// <summary>The names of the matmuls that a forward pass runs with the GELU after them (as <see cref="FusedConvs"/>).</summary>
    internal IReadOnlyList<string> FusedGelus(IReadOnlyList<string>? layers)
    {
        var plan = PlanFor(layers);
        return Graph.Nodes.Where((_, i) => plan.FusedGelu[i]).Select(n => n.Name).ToList();
    }

    /// <summary>The plan of <see cref="ForwardOutput"/> (<paramref name="layers"/> null) or of <see cref="ForwardFor"/>
    /// (made by running it once on a zero image), for the diagnostics.</summary>
    private LeanPlan PlanFor(IReadOnlyList<string>? layers)
    {
        if (layers == null)
            return _leanPlan ??= LeanPlan.For(Graph, new HashSet<string>(StringComparer.Ordinal), Graph.Nodes.Count - 1);
        using (var probe = Backend.Allocate([1, .. Graph.InputShape]))
            ForwardFor(probe, layers).Dispose();
        return _layerPlans[string.Join('\n', layers)];
    }

    /// <summary>The names of the convs that a forward pass runs with the max pool after them (<see cref="ForwardOutput"/>
    /// when <paramref name="layers"/> is null, else <see cref="ForwardFor"/>), for tests and diagnostics.</summary>
    internal IReadOnlyList<string> PooledConvNames(IReadOnlyList<string>? layers)
    {
        var plan = PlanFor(layers);
        return Graph.Nodes.Where((_, i) => plan.Pooled[i] >= 0).Select(n => n.Name).ToList();
    }

    private void RunClipInPlace(ForwardPass pass, GraphNode node)
    {
        var x = pass[node.Inputs[0]];
        Backend.Unary(new Kernels.Clip(node.Float("min", float.NegativeInfinity), node.Float("max", float.PositiveInfinity)), x, x);
        pass.Set(node.Output, x);
    }

    private void RunFusedConv(ForwardPass pass, GraphNode node, ConvEpilogue e)
    {
        var a = new ForwardArgs(this, pass, node, null, false);
        var x = a.Input(0);
        var s = Ops.Conv.Geometry(node, x.Shape[1..], a.N);
        var y = a.NewOutput();
        Backend.Conv2dFused(x, a.Param("weight"), a.OptionalParam("bias"), e.Residual == null ? null : pass[e.Residual], y, s,
            e.Activation, e.Lo, e.Hi);
        pass.Set(node.Output, y);
    }

    private void RunMatMulGelu(ForwardPass pass, GraphNode node)
    {
        var a = new ForwardArgs(this, pass, node, null, false);
        var x = a.Input(0);
        var w = a.Param("weight");
        var y = a.NewOutput();
        Backend.GemmGelu(x, w, a.OptionalParam("bias"), y, Ops.MatMul.Geometry(x.Length / w.Shape[0], w.Shape));
        pass.Set(node.Output, y);
    }

    private void RunPooledConv(ForwardPass pass, GraphNode node, GraphNode pool, bool relu)
    {
        var a = new ForwardArgs(this, pass, node, null, false);
        var x = a.Input(0);
        var s = Ops.Conv.Geometry(node, x.Shape[1..], a.N);
        var p = Ops.MaxPool.Geometry(pool, [s.K, s.OH, s.OW], a.N);
        var y = pass.Own(Backend.Allocate([a.N, .. pool.Shape]));
        Backend.Conv2dMaxPool(x, a.Param("weight"), a.OptionalParam("bias"), y, s,
            relu ? Kernels.EpilogueActivation.Relu : Kernels.EpilogueActivation.None, 0f, 0f, p);
        pass.Set(pool.Output, y);
    }

    // The op's rule runs the node (engine/Graph/Ops); the plan says whether it writes over an input or carries
    // the following ReLU.
    private void RunNode(ForwardPass pass, GraphNode node, int n, Tensor? into = null, bool fuseRelu = false,
        bool routing = true)
    {
        var y = OpRegistry.For(node).Forward(new ForwardArgs(this, pass, node, into, fuseRelu, routing));
        pass.Set(node.Output, y);
    }

    /// <summary>
    /// Reverse pass (vector-Jacobian products) from <paramref name="seed"/> = dL/d(output), shape (N, outputs...).
    /// Gradients sum where an activation feeds several nodes (residual connections). Nodes before the earliest
    /// requested layer are skipped unless the input or parameter gradients are requested.
    /// </summary>
    public Gradients Backward(ForwardPass pass, Tensor seed, BackwardRequest request)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(seed);
        ArgumentNullException.ThrowIfNull(request);
        var g = Graph;
        var output = pass[g.OutputName];
        if (seed.Length != output.Length)
            throw new CamEngineException($"gradient seed has shape {seed.ShapeText}, the output is {output.ShapeText}");

        return Reverse(pass, g.Nodes.Count - 1, g.OutputName, seed.Reshape(output.Shape), request);
    }

    /// <summary>
    /// The reverse pass from node <paramref name="from"/> down, with dL/d(<paramref name="tensor"/>) =
    /// <paramref name="seed"/> (that node's output; the caller keeps the seed) and nothing above it.
    /// </summary>
    private Gradients Reverse(ForwardPass pass, int from, string tensor, Tensor seed, BackwardRequest request)
    {
        var g = Graph;
        int stop = -1;
        if (!request.Input && !request.Parameters)
        {
            stop = from + 1;
            foreach (var layer in request.Layers)
            {
                int at = IndexOfOutput(layer);
                stop = Math.Min(stop, at);
            }
        }

        var grads = new Gradients(this);
        using var scope = Backend.SyncRoot.EnterScope();
        try
        {
            grads.Set(tensor, seed);
            for (int i = from; i > stop; i--)
            {
                var node = g.Nodes[i];
                if (!grads.TryGet(node.Output, out var dy))
                    continue;
                BackwardNode(pass, grads, node, dy, request);
            }
            foreach (var layer in request.Layers)
            {
                if (!grads.TryGet(layer, out var t))
                    grads.Set(layer, grads.Own(Backend.Allocate(pass[layer].Shape)));
                grads.Layers[layer] = grads[layer];
            }
            if (request.Input)
            {
                grads.Input = grads.TryGet(g.InputName, out var dx)
                    ? dx
                    : grads.Own(Backend.Allocate(pass.Input.Shape));
            }
        }
        catch
        {
            grads.Dispose();
            throw;
        }
        return grads;
    }

    private int IndexOfOutput(string tensor)
    {
        for (int i = 0; i < Graph.Nodes.Count; i++)
        {
            if (Graph.Nodes[i].Output == tensor)
                return i;
        }
        if (tensor == Graph.InputName)
            return -1;
        throw new CamEngineException($"no layer produces tensor '{tensor}'");
    }

    private void BackwardNode(ForwardPass pass, Gradients grads, GraphNode node, Tensor dy, BackwardRequest request) =>
        OpRegistry.For(node).Backward(new BackwardArgs(this, pass, grads, node, dy, request));

    /// <summary>Frees the uploaded weights.</summary>
    public void Dispose()
    {
        foreach (var t in _params.Values)
            t.Dispose();
        _params.Clear();
    }
}
