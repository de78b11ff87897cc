using CamEngine.Backends;
namespace CamEngine.Graph.Ops;

/// <summary>
/// The operators this version executes, by graph op name. Adding an op is one <see cref="OpRule"/> file under
/// <c>engine/Graph/Ops/</c> plus its backend code, and one line here (docs/adding-an-operator.md).
/// </summary>
internal static class OpRegistry
{
    private static readonly Dictionary<string, OpRule> Rules = Build(
        new Conv(), new Relu(), new MaxPool(), new AvgPool(), new GlobalAvgPool(), new Flatten(), new Gemm(),
        new Add(), new Sub(), new Mul(), new Div(), new Sigmoid(), new HardSigmoid(), new HardSwish(), new LeakyRelu(),
        new Clip(), new BatchNorm(), new Concat(), new Pad(), new Reshape(), new Softmax(),
        new ReduceMean(), new ReduceSum(), new ReduceMax(), new Transpose(), new LayerNorm(), new Slice(), new MatMul(),
        new Erf(), new Gelu(), new Sqrt(), new Pow(), new Tanh(), new BatchMatMul());

    private static Dictionary<string, OpRule> Build(params OpRule[] rules)
    {
        var d = new Dictionary<string, OpRule>(StringComparer.Ordinal);
        foreach (var r in rules)
        {
            if (!d.TryAdd(r.Name, r))
                throw new InvalidOperationException($"two rules for operator '{r.Name}'");
        }
        return d;
    }

    /// <summary>Every registered op name.</summary>
    public static IReadOnlyCollection<string> Names => Rules.Keys;

    /// <summary>Every rule, in registration order.</summary>
    public static IEnumerable<OpRule> All => Rules.Values;

    /// <summary>The rule for <paramref name="op"/>, or null.</summary>
    public static OpRule? Find(string op) => Rules.GetValueOrDefault(op);

    /// <summary>The rule of <paramref name="node"/>; throws <see cref="UnsupportedModelException"/> naming the
    /// node and the op when there is none.</summary>
    public static OpRule For(Model.GraphNode node) =>
        Rules.GetValueOrDefault(node.Op) ?? throw new UnsupportedModelException($"node '{node.Name}': unknown operator '{node.Op}'");
}
