using System.CommandLine;
using System.Text;
using CamEngine.Onnx;

namespace CamEngine.Cli;

/// <summary>
/// <c>cam ops</c>: every operator of the engine's registry (<see cref="OperatorCatalog"/>), the ONNX operators the converter
/// turns into it, and whether it has jets (the Taylor rule of orders 2 and 3 that Grad-CAM++'s exact terms, Smooth
/// Grad-CAM++ and Shapley-CAM use); then the ONNX operators that become no engine operator. The README's operator list
/// is this output; a test checks that it, the registry and the converter's supported list agree.
/// </summary>
internal static class OpsCommand
{
    /// <summary>Per registry operator, the ONNX operators it comes from and how (a note, or empty).</summary>
    internal static readonly (string Op, string[] Onnx, string Note)[] Sources =
    [
        ("conv", ["Conv"], "a BatchNormalization right after it is folded into its weights"),
        ("batchnorm", ["BatchNormalization"], "where no conv precedes it, as DenseNet's pre-activation"),
        ("relu", ["Relu"], ""),
        ("maxpool", ["MaxPool"], ""),
        ("avgpool", ["AveragePool"], ""),
        ("gap", ["GlobalAveragePool", "AveragePool"], "AveragePool when its window is the whole input"),
        ("flatten", ["Flatten"], "axis 1"),
        ("gemm", ["Gemm", "MatMul"], "MatMul of an (N, K) activation by a constant (K, M)"),
        ("add", ["Add", "Expand", "Where"], "Expand of a computed tensor adds a zero constant; Where with a constant condition adds its masked constant (may hold -inf)"),
        ("sub", ["Sub"], ""),
        ("mul", ["Mul", "Where"], "Where with a constant condition: each computed side times its mask"),
        ("div", ["Div"], ""),
        ("sigmoid", ["Sigmoid"], ""),
        ("hardsigmoid", ["HardSigmoid"], ""),
        ("hardswish", ["HardSwish"], ""),
        ("leakyrelu", ["LeakyRelu"], ""),
        ("clip", ["Clip"], "ReLU6"),
        ("concat", ["Concat"], "of computed tensors, any axis"),
        ("pad", ["Pad"], "modes constant (any value), reflect and edge, any axis but the batch; negative constant pads crop"),
        ("reshape", ["Reshape", "Unsqueeze", "Squeeze"], "of computed tensors; a shape computed from constants is folded"),
        ("softmax", ["Softmax"], ""),
        ("reducemean", ["ReduceMean"], ""),
        ("reducesum", ["ReduceSum"], ""),
        ("reducemax", ["ReduceMax"], ""),
        ("transpose", ["Transpose"], "of computed tensors, any permutation keeping the batch axis"),
        ("layernorm", ["LayerNormalization", "ReduceMean"], "opset 17; older opsets' ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div (with Mul and Add) chain is fused into it"),
        ("slice", ["Slice", "Gather", "Split"], "of computed tensors; Gather with a scalar or consecutive constant indices (ViT's class token); Split: one slice per output, any axis"),
        ("matmul", ["MatMul", "Add", "Mul"], "a computed tensor times a constant 2-D weight over its last axis; the Add of a constant bias right after it, and a Mul by one constant per output feature after that (through a transpose too: ConvNeXt's layer scale), are folded in"),
        ("batchmatmul", ["MatMul"], "of two computed tensors (attention's Q K^T and A V); the leading axes broadcast as numpy's"),
        ("erf", ["Erf"], ""),
        ("gelu", ["Erf"], "exact GELU's Div, Erf, Add, Mul, Mul chain, fused"),
        ("sqrt", ["Sqrt"], ""),
        ("pow", ["Pow"], "a constant exponent"),
        ("tanh", ["Tanh"], ""),
    ];

    /// <summary>The ONNX operators that become no engine operator, and what happens to them.</summary>
    internal static readonly (string[] Onnx, string What)[] NoOp =
    [
        (["Identity", "Dropout"], "pass-through (inference)"),
        (["Constant"], "a constant tensor"),
        (OnnxConversion.FoldedOperators.ToArray(), "evaluated at conversion when their inputs are constant (shape arithmetic)"),
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
        foreach (var rule in OperatorCatalog.All)
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
