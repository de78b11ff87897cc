using CamEngine.Graph.Ops;

namespace CamEngine;

/// <summary>One operator of the engine's graph (what a converted model's nodes run).</summary>
/// <param name="Name">The operator's name in model files, e.g. <c>conv</c>.</param>
/// <param name="HasJets">True when the operator has a Taylor rule of orders 2 and 3 (Grad-CAM++'s exact terms, Smooth
/// Grad-CAM++ and Shapley-CAM need it at every node after their layer); false makes those methods refuse it by name.</param>
public sealed record OperatorInfo(string Name, bool HasJets);

/// <summary>The operators this engine implements, one per rule of its operator registry (<c>cam ops</c> lists them
/// with the ONNX operators they come from).</summary>
public static class OperatorCatalog
{
    /// <summary>Every operator, in the registry's order.</summary>
    public static IReadOnlyList<OperatorInfo> All { get; } = OpRegistry.All.Select(r => new OperatorInfo(r.Name, r.HasJets)).ToList();
}
