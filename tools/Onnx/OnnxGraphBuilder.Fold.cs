using CamEngine.Model;

namespace CamEngine.Onnx;

/// <summary>
/// Constant folding at conversion (<see cref="ConstantFolding"/>): a node whose inputs are all constants becomes a
/// constant, and Shape (or Size) of a computed tensor is its ONNX dims as traced (the batch as exported), so the
/// shape subgraphs of exported transformers never reach the engine graph.
/// </summary>
internal sealed partial class OnnxGraphBuilder
{
    /// <summary>Folds <paramref name="n"/> when it can be evaluated now; false leaves it to the operator mapping.</summary>
    private bool TryFold(OnnxNode n)
    {
        if (!ConstantFolding.Ops.Contains(n.OpType))
            return false;
        if (n.OpType is "Shape" or "Size" && n.Inputs.Count >= 1 && n.Inputs[0].Length > 0 && !IsConst(n, 0))
        {
            string x = ActRaw(n, 0);
            var dims = LayoutOf(x).Dims;
            var stand = new OnnxTensor(x, dims, (int)OnnxDataType.Float, null, null) { Count = dims.Aggregate(1L, (a, b) => a * b) };
            DefineConstant(n, Evaluate(n, [stand]));
            return true;
        }
        var present = Enumerable.Range(0, n.Inputs.Count).Where(i => n.Inputs[i].Length > 0).ToArray();
        if (present.Length == 0 || !present.All(i => IsConst(n, i)))
            return false;
        var inputs = Enumerable.Range(0, n.Inputs.Count).Select(i => n.Inputs[i].Length > 0 ? Const(n, i, "input", true) : null).ToArray();
        DefineConstant(n, Evaluate(n, inputs));
        return true;
    }

    private static OnnxTensor Evaluate(OnnxNode n, IReadOnlyList<OnnxTensor?> inputs)
    {
        try
        {
            return ConstantFolding.Evaluate(n, inputs);
        }
        catch (ArgumentException e)
        {
            throw Unsupported(n, $"cannot evaluate on constants: {e.Message}");
        }
        catch (Exception e) when (e is IndexOutOfRangeException or NullReferenceException or InvalidCastException)
        {
            throw Invalid(n, $"malformed constant inputs ({e.GetType().Name})");
        }
    }

    /// <summary>Unsqueeze, Squeeze or Flatten of a computed tensor: a reshape of its ONNX dims.</summary>
    private void ReshapeLike(OnnxNode n)
    {
        var (x, l) = ActAny(n, 0);
        var stand = new OnnxTensor(x, l.Dims, (int)OnnxDataType.Float, null, null) { Count = l.Dims.Aggregate(1L, (a, b) => a * b) };
        var inputs = Enumerable.Range(0, n.Inputs.Count).Select(i => i == 0 ? stand : n.Inputs[i].Length > 0 ? Const(n, i, "axes", true) : null).ToArray();
        var target = Evaluate(n, inputs).Dims;
        ReshapeTo(n, x, l, target);
    }
}
