using CamEngine.Backends;

namespace CamEngine.Graph;

internal sealed partial class DeviceModel
{
    /// <summary>
    /// A reverse pass that starts inside the graph: dL/d(<paramref name="tensor"/>) = <paramref name="seed"/>
    /// (shape of that activation in <paramref name="pass"/>) and no gradient above it, so the result holds
    /// d(seed . tensor)/d(earlier activations): LeGrad's gradient of a block's own score with respect to that
    /// block's attention, for example. The caller keeps <paramref name="seed"/>.
    /// </summary>
    public Gradients BackwardFrom(ForwardPass pass, string tensor, Tensor seed, BackwardRequest request)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(seed);
        ArgumentNullException.ThrowIfNull(request);
        var at = pass[tensor];
        if (!seed.Shape.SequenceEqual(at.Shape))
            throw new CamEngineException($"gradient seed has shape {seed.ShapeText}, the activation '{tensor}' is {at.ShapeText}");
        int from = IndexOfOutput(tensor);
        if (from < 0)
            throw new CamEngineException("a reverse pass cannot start at the graph input");
        foreach (var layer in request.Layers)
        {
            if (IndexOfOutput(layer) > from)
                throw new CamEngineException($"layer '{layer}' comes after '{tensor}'; a reverse pass from there cannot reach it");
        }
        return Reverse(pass, from, tensor, seed.Reshape(at.Shape), request);
    }
}
