using CamEngine.Backends;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Graph.Ops;

/// <summary>
/// Everything the engine knows about one graph operator, in one place: attribute validation and shape inference
/// (<see cref="InferShape"/>), the forward (a call into the <see cref="Backend"/>), the reverse rule (vector-Jacobian
/// products for the activation inputs and the parameters), the Taylor rule for jets of orders 1..3 (or
/// <see cref="HasJets"/> false, which makes higher-order queries refuse the op by name), and the properties CAM
/// methods ask about. <see cref="OpRegistry"/> maps op names to rules; the validator, the executor's forward and
/// reverse loops, the Taylor pass and CAM's affine check go through the registry, never through op names.
/// Subclasses are stateless singletons: everything per node comes from the <see cref="GraphNode"/>.
/// </summary>
internal abstract class OpRule
{
    /// <summary>The op name in the graph JSON (<c>conv</c>, <c>relu</c>, ...).</summary>
    public abstract string Name { get; }

    /// <summary>
    /// The output shape without the batch axis, from the input shapes (without the batch axis, graph order) and
    /// the node's attributes and parameters, which it validates. Throws <see cref="ArgumentException"/> with the
    /// problem; the validator adds the node's name.
    /// </summary>
    public abstract int[] InferShape(GraphNode node, int[][] inputs, IReadOnlyDictionary<string, HostTensor> weights);

    /// <summary>Runs the node forward and returns its output (N, shape), owned by <see cref="ForwardArgs.Pass"/>.</summary>
    public abstract Tensor Forward(ForwardArgs a);

    /// <summary>Accumulates dL/d(input) for every activation input (and dL/d(parameter) when
    /// <see cref="BackwardRequest.Parameters"/>) from dL/d(output) = <see cref="BackwardArgs.Dy"/>.</summary>
    public abstract void Backward(BackwardArgs a);

    /// <summary>False when the op has no Taylor rule; <see cref="Jets"/> then throws naming the node.</summary>
    public virtual bool HasJets => true;

    /// <summary>
    /// Maps the Taylor coefficients of the inputs (per input: orders 0..K, each (M, shape) or null for zero; order
    /// 0 is never null) to those of the output. Linear ops apply their map to every order (biases to order 0 only).
    /// </summary>
    public virtual Tensor?[] Jets(JetArgs a) => throw NoJets(a.Node);

    /// <summary>The refusal of a higher-order query through <paramref name="node"/>.</summary>
    public static UnsupportedModelException NoJets(GraphNode node) => new(
        $"node '{node.Name}': operator '{node.Op}' has no Taylor-mode rule, so higher-order queries through it are not available");

    /// <summary>
    /// True when the output is an affine function of the inputs in <paramref name="dependsOnLayer"/> with every
    /// other input held fixed (what CAM's exact class-map formula needs between the layer and the logits).
    /// </summary>
    public virtual bool IsAffine(GraphNode node, Func<string, bool> dependsOnLayer) => false;

    /// <summary>True when the op is piecewise linear in its activation inputs, so its jets never mix orders and
    /// the closed forms of Grad-CAM++ hold through it.</summary>
    public virtual bool IsPiecewiseLinear(GraphNode node) => false;

    /// <summary>True for rectifiers whose backward the guided-backprop and deconvnet rules replace
    /// (<see cref="BackwardRequest.ReluRule"/>).</summary>
    public virtual bool IsReluLike => false;

    /// <summary>True when the output is a view of input 0's storage (reshape, flatten): the forward copies nothing
    /// and the memory planner treats the two names as one storage.</summary>
    public virtual bool IsView => false;

    /// <summary>True when the forward may write its output over one of its activation inputs of the same shape
    /// (<see cref="ForwardArgs.Into"/>), because each output element reads only the same element of the inputs.</summary>
    public virtual bool CanRunInPlace(GraphNode node) => false;

    /// <summary>True when the forward can apply a following ReLU as it writes (<see cref="ForwardArgs.FuseRelu"/>).</summary>
    public virtual bool CanFuseRelu(GraphNode node, IReadOnlyDictionary<string, int[]> shapes) => false;

    /// <summary>Checks the input count.</summary>
    protected static void Arity(int[][] inputs, int count)
    {
        if (inputs.Length != count)
            throw new ArgumentException($"needs {count} input(s), has {inputs.Length}");
    }

    /// <summary>The (C, H, W) input of a spatial op.</summary>
    protected static int[] Spatial(int[] s) =>
        s.Length == 3 ? s : throw new ArgumentException($"needs a (C, H, W) input, got {TensorShape.Format(s)}");

    /// <summary>A parameter tensor of the node, checked against the expected shape.</summary>
    protected static HostTensor Weight(GraphNode n, string role, IReadOnlyDictionary<string, HostTensor> weights, int[] shape)
    {
        string name = n.Param(role) ?? throw new ArgumentException($"missing '{role}' parameter");
        if (!weights.TryGetValue(name, out var t))
            throw new ArgumentException($"parameter tensor '{name}' is not in the file");
        if (!TensorShape.Equal(t.Shape, shape))
            throw new ArgumentException($"parameter '{name}' has shape {t.ShapeText}, expected {TensorShape.Format(shape)}");
        return t;
    }

    /// <summary>(n, shape...).</summary>
    protected static int[] Batched(int n, int[] shape) => [n, .. shape];

    /// <summary>Applies a linear map to every order of the jet of input 0 (the same map order 0 gets, without
    /// its bias: <paramref name="map"/>'s flag says whether this is order 0).</summary>
    protected static Tensor?[] EveryOrder(JetArgs a, Action<Tensor, Tensor, bool> map)
    {
        var y = new Tensor?[a.Order + 1];
        var x = a.Inputs[0];
        for (int k = 0; k <= a.Order; k++)
        {
            if (x[k] == null)
                continue;
            y[k] = a.Own(a.Backend.Allocate(a.OutputShape));
            map(x[k]!, y[k]!, k == 0);
        }
        return y;
    }

    /// <summary>Every order of input 0 as a view with the output shape (reshape, flatten).</summary>
    protected static Tensor?[] EveryOrderView(JetArgs a)
    {
        var y = new Tensor?[a.Order + 1];
        for (int k = 0; k <= a.Order; k++)
            y[k] = a.Inputs[0][k] is { } t ? a.Own(t.Reshape(a.OutputShape)) : null;
        return y;
    }
}

/// <summary>What a forward rule reads: the node, the pass holding its inputs, and the planner's choices.</summary>
/// <param name="Model">The model (backend and parameters).</param>
/// <param name="Pass">The activations so far; the rule registers what it allocates with <see cref="ForwardPass.Own"/>.</param>
/// <param name="Node">The node.</param>
/// <param name="Into">An input the planner lets the node overwrite (only when <see cref="OpRule.CanRunInPlace"/>).</param>
/// <param name="FuseRelu">Apply a ReLU to the output as it is written (only when <see cref="OpRule.CanFuseRelu"/>).</param>
/// <param name="Routing">Whether a later pass may read the node's routing (a max-pool's argmax); false when the plan
/// frees it right after the node.</param>
internal readonly record struct ForwardArgs(DeviceModel Model, ForwardPass Pass, GraphNode Node, Tensor? Into, bool FuseRelu,
    bool Routing = true)
{
    /// <summary>The backend.</summary>
    public Backend Backend => Model.Backend;

    /// <summary>The batch size N.</summary>
    public int N => Pass.Batch;

    /// <summary>Input <paramref name="k"/> of the node.</summary>
    public Tensor Input(int k) => Pass[Node.Inputs[k]];

    /// <summary>A parameter by role (must exist).</summary>
    public Tensor Param(string role) => Model.Parameter(Node.Param(role)!);

    /// <summary>A parameter by role, or null.</summary>
    public Tensor? OptionalParam(string role) => Node.Param(role) is { } name ? Model.Parameter(name) : null;

    /// <summary>A new output tensor (N, node shape) owned by the pass.</summary>
    public Tensor NewOutput() => Pass.Own(Backend.Allocate([N, .. Node.Shape]));
}

/// <summary>What a reverse rule reads and writes.</summary>
/// <param name="Model">The model.</param>
/// <param name="Pass">The forward pass (inputs and output of the node).</param>
/// <param name="Grads">The gradients so far; the rule accumulates into them.</param>
/// <param name="Node">The node.</param>
/// <param name="Dy">dL/d(output), (N, node shape) up to a reshape.</param>
/// <param name="Request">What the pass computes (parameters or not, the ReLU rule).</param>
internal readonly record struct BackwardArgs(
    DeviceModel Model, ForwardPass Pass, Gradients Grads, GraphNode Node, Tensor Dy, BackwardRequest Request)
{
    /// <summary>The backend.</summary>
    public Backend Backend => Model.Backend;

    /// <summary>The batch size N.</summary>
    public int N => Pass.Batch;

    /// <summary>Input <paramref name="k"/>'s forward value.</summary>
    public Tensor Input(int k) => Pass[Node.Inputs[k]];

    /// <summary>A parameter by role (must exist).</summary>
    public Tensor Param(string role) => Model.Parameter(Node.Param(role)!);

    /// <summary>A new gradient tensor owned by the gradients.</summary>
    public Tensor New(int[] shape) => Grads.Own(Backend.Allocate(shape));

    /// <summary>Adds <paramref name="dx"/> to input <paramref name="k"/>'s gradient.</summary>
    public void Accumulate(int k, Tensor dx) => Grads.Accumulate(Node.Inputs[k], dx);

    /// <summary>Adds a parameter gradient by role.</summary>
    public void AccumulateParam(string role, Tensor g) => Grads.AddParameter(Node.Param(role)!, g);
}

/// <summary>What a Taylor rule reads.</summary>
/// <param name="Model">The model.</param>
/// <param name="Node">The node.</param>
/// <param name="Inputs">Per input, the coefficients of orders 0..Order (order 0 never null).</param>
/// <param name="M">Rows of the batch.</param>
/// <param name="Order">Highest order.</param>
/// <param name="Own">Registers a tensor for disposal at the end of the Taylor pass.</param>
internal readonly record struct JetArgs(DeviceModel Model, GraphNode Node, Tensor?[][] Inputs, int M, int Order, Func<Tensor, Tensor> Own)
{
    /// <summary>The backend.</summary>
    public Backend Backend => Model.Backend;

    /// <summary>(M, node shape).</summary>
    public int[] OutputShape => [M, .. Node.Shape];
}
