using System.CommandLine;
using System.Text;
using CamEngine.Graph.Ops;
using CamEngine.Onnx;
using Ops = CamEngine.Model.Ops;

namespace CamEngine.Cli;

/// <summary>
/// <c>cam ops</c>: every operator of the engine's registry (<see cref="OpRegistry"/>), the ONNX operators the converter
/// turns into it, and whether it has jets (the Taylor rule of orders 2 and 3 that Grad-CAM++'s exact terms, Smooth
/// Grad-CAM++ and Shapley-CAM use); then the ONNX operators that become no engine operator. The README's operator list
/// is this output; a test checks that it, the registry and the converter's supported list agree.
/// </summary>
internal static class OpsCommand
{
    /// <summary>Per registry operator, the ONNX operators it comes from and how (a note, or empty).</summary>
    internal static readonly (string Op, string[] Onnx, string Note)[] Sources =
    [
        (Ops.Conv, ["Conv"], "a BatchNormalization right after it is folded into its weights"),
        (Ops.BatchNorm, ["BatchNormalization"], "where no conv precedes it, as DenseNet's pre-activation"),
        (Ops.Relu, ["Relu"], ""),
        (Ops.MaxPool, ["MaxPool"], ""),
        (Ops.AvgPool, ["AveragePool"], ""),
        (Ops.GlobalAvgPool, ["GlobalAveragePool", "AveragePool"], "AveragePool when its window is the whole input"),
        (Ops.Flatten, ["Flatten"], "axis 1"),
        (Ops.Gemm, ["Gemm", "MatMul"], "MatMul of an (N, K) activation by a constant (K, M)"),
        (Ops.Add, ["Add"], ""),
        (Ops.Sub, ["Sub"], ""),
        (Ops.Mul, ["Mul"], ""),
        (Ops.Div, ["Div"], ""),
        (Ops.Sigmoid, ["Sigmoid"], ""),
        (Ops.HardSigmoid, ["HardSigmoid"], ""),
        (Ops.HardSwish, ["HardSwish"], ""),
        (Ops.LeakyRelu, ["LeakyRelu"], ""),
        (Ops.Clip, ["Clip"], "ReLU6"),
        (Ops.Concat, ["Concat"], "of computed tensors, any axis"),
        (Ops.Pad, ["Pad"], ""),
        (Ops.Reshape, ["Reshape"], "of computed tensors; a shape computed from constants is folded"),
        (Ops.Softmax, ["Softmax"], ""),
        (Ops.ReduceMean, ["ReduceMean"], ""),
        (Ops.ReduceSum, ["ReduceSum"], ""),
        (Ops.ReduceMax, ["ReduceMax"], ""),
        (Ops.Transpose, ["Transpose"], "of computed tensors, any permutation keeping the batch axis"),
        (Ops.LayerNorm, ["LayerNormalization"], "opset 17; older opsets decompose it into ReduceMean, Sub, Pow, Sqrt, Div"),
        (Ops.Slice, ["Slice"], "of computed tensors"),
        (Ops.MatMul, ["MatMul"], "a computed tensor times a constant 2-D weight over its last axis"),
        (Ops.Erf, ["Erf"], "exact GELU as Div, Erf, Add, Mul"),
        (Ops.Sqrt, ["Sqrt"], ""),
        (Ops.Pow, ["Pow"], "a constant exponent"),
        (Ops.Tanh, ["Tanh"], ""),
    ];

    /// <summary>The ONNX operators that become no engine operator, and what happens to them.</summary>
    internal static readonly (string[] Onnx, string What)[] NoOp =
    [
        (["Identity", "Dropout"], "pass-through (inference)"),
        (["Constant"], "a constant tensor"),
        (OnnxGraphBuilder.FoldedOperators, "evaluated at conversion when their inputs are constant (shape arithmetic)"),
    ];

    public static Command Build(CliContext cli)
    {
        var command = new Command("ops",
            "Lists every engine operator with the ONNX operators it comes from and whether it has jets (orders 2-3, for Grad-CAM++'s "
            + "exact terms, Smooth Grad-CAM++ and Shapley-CAM), then the ONNX operators converted to no engine operator. A model with any "
            + "other ONNX operator is refused by `cam convert`, naming the operator and the node. Markdown, as the README's operator list.");
        command.SetAction(_ =>
        {
            cli.Out.Write(Table());
            return 0;
        });
        return command;
    }

    /// <summary>The list as Markdown (what <c>cam ops</c> prints and the README holds).</summary>
    internal static string Table()
    {
        var sources = Sources.ToDictionary(s => s.Op, StringComparer.Ordinal);
        var sb = new StringBuilder();
        sb.Append("| engine op | from ONNX | jets (orders 2-3) | notes |\n|---|---|---|---|\n");
        foreach (var rule in OpRegistry.All)
        {
            // An operator added to the registry without a line here still prints (OpsCommandTests fails until it has one).
            var s = sources.GetValueOrDefault(rule.Name, (rule.Name, ["?"], "not described in cam ops yet"));
            sb.Append($"| `{rule.Name}` | {string.Join(", ", s.Onnx)} | {(rule.HasJets ? "yes" : "no")} | {s.Note} |\n");
        }
        sb.Append('\n');
        foreach (var (onnx, what) in NoOp)
            sb.Append($"- {string.Join(", ", onnx)}: {what}\n");
        return sb.ToString();
    }
}
