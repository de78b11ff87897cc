using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Onnx;

/// <summary>
/// Window geometry a hostile model file can state: the int arithmetic of ConvShape/PoolShape must not wrap into a
/// plausible output size. (Found while bounding the ONNX converter's attributes; the checks live in GraphValidator.)
/// </summary>
[TestFixture]
public class GraphValidatorWindowTests
{
    private static ModelGraph OneNode(string op, Dictionary<string, double[]> attrs, int[] shape, int h = 32) => new()
    {
        InputName = "x",
        InputShape = [1, h, h],
        OutputName = "y",
        Preprocessing = new Preprocessing { Height = h, Width = h, ResizeShorter = h, Mean = [0f], Std = [1f] },
        Nodes =
        [
            new GraphNode
            {
                Name = "n", Op = op, Inputs = ["x"], Output = "y", Attrs = attrs, Shape = shape,
                Params = op == Ops.Conv ? new(StringComparer.Ordinal) { ["weight"] = "w" } : new(StringComparer.Ordinal),
            },
        ],
    };

    private static readonly Dictionary<string, HostTensor> Weights = new(StringComparer.Ordinal)
    {
        ["w"] = new HostTensor(1, 1, 3, 3),
    };

    [Test]
    public void ConvDilationThatWrapsInt32_IsRefused()
    {
        // dilation * (k - 1) = 2 * 2147483643 wraps to -10, which made OH = (32 + 10 - 1) / 1 + 1 = 42 look valid.
        var attrs = new Dictionary<string, double[]>
        {
            ["kernel"] = [3, 3], ["dilations"] = [2147483643, 1], ["out_channels"] = [1],
        };
        Assert.Throws<InvalidModelFileException>(() => GraphValidator.Validate(OneNode(Ops.Conv, attrs, [1, 42, 30]), Weights));
    }

    [Test]
    public void ConvKernelLargerThanInputWithStride_IsRefused()
    {
        // (2 - 3) / 2 + 1 truncates to 1 in C#, so a 3x3 kernel on a 2x2 input claimed a 1x1 output.
        var attrs = new Dictionary<string, double[]>
        {
            ["kernel"] = [3, 3], ["strides"] = [2, 2], ["out_channels"] = [1],
        };
        Assert.Throws<InvalidModelFileException>(() => GraphValidator.Validate(OneNode(Ops.Conv, attrs, [1, 1, 1], 2), Weights));
    }

    [Test]
    public void PoolDilationThatWrapsInt32_IsRefused()
    {
        var attrs = new Dictionary<string, double[]>
        {
            ["kernel"] = [3, 3], ["dilations"] = [2147483643, 1],
        };
        Assert.Throws<InvalidModelFileException>(() => GraphValidator.Validate(OneNode(Ops.MaxPool, attrs, [1, 42, 30]), Weights));
    }

    [Test]
    public void OrdinaryWindows_StillValidate()
    {
        var attrs = new Dictionary<string, double[]>
        {
            ["kernel"] = [3, 3], ["strides"] = [2, 2], ["pads"] = [1, 1, 1, 1], ["out_channels"] = [1],
        };
        Assert.DoesNotThrow(() => GraphValidator.Validate(OneNode(Ops.Conv, attrs, [1, 16, 16]), Weights));
    }
}
