using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// CAM on heads without a global average pool, checked against host sums over hand-set weights: the map is
/// each location's contribution <c>sum_k W_eff[k,i,j] A[k,i,j]</c> and the contributions plus the offset b
/// add up to the logit. Input (3, 4, 4); the layer is a 3x3 convolution to (2, 4, 4).
/// </summary>
[TestFixture]
public sealed class ClassActivationMapTests
{
    private const string Layer = "A";

    private static Backend Device => TestDevice.Ilgpu;

    // Hand-set weights: small multiples of 1/4 and 1/8 from index formulas, no two rows alike.
    private static float ConvWeight(int o, int ci, int ky, int kx) => ((o * 5 + ci * 3 + ky * 2 + kx) % 7 - 3) / 4f;

    private static float FcWeight(int k, int f) => ((k * 11 + f * 5) % 9 - 4) / 8f;

    private static readonly float[] FcBias = [0.5f, -0.25f, 0.125f];

    private static readonly float[] BnScale = [2f, -0.5f];

    private static readonly float[] BnShift = [0.1f, 0.3f];

    /// <summary>conv (2, 4, 4) -> [middle nodes] -> flatten (features) -> gemm (3), transB = 1.</summary>
    private static ModelFile Build(IReadOnlyList<GraphNode> middle, int features)
    {
        var conv = new HostTensor([2, 3, 3, 3]);
        for (int o = 0; o < 2; o++)
        for (int ci = 0; ci < 3; ci++)
        for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++)
            conv.Data[((o * 3 + ci) * 3 + ky) * 3 + kx] = ConvWeight(o, ci, ky, kx);
        var fc = new HostTensor([3, features]);
        for (int k = 0; k < 3; k++)
        for (int f = 0; f < features; f++)
            fc.Data[k * features + f] = FcWeight(k, f);
        var nodes = new List<GraphNode>
        {
            new()
            {
                Name = "conv", Op = Ops.Conv, Inputs = ["input"], Output = Layer,
                Params = new(StringComparer.Ordinal) { ["weight"] = "conv.weight", ["bias"] = "conv.bias" },
                Attrs = new(StringComparer.Ordinal)
                {
                    ["kernel"] = [3, 3], ["strides"] = [1, 1], ["pads"] = [1, 1, 1, 1], ["dilations"] = [1, 1], ["group"] = [1],
                    ["out_channels"] = [2],
                },
                Shape = [2, 4, 4],
            },
        };
        nodes.AddRange(middle);
        nodes.Add(new GraphNode
        {
            Name = "flatten", Op = Ops.Flatten, Inputs = [nodes[^1].Output], Output = "flat",
            Attrs = new(StringComparer.Ordinal) { ["axis"] = [1] }, Shape = [features],
        });
        nodes.Add(new GraphNode
        {
            Name = "fc", Op = Ops.Gemm, Inputs = ["flat"], Output = "logits",
            Params = new(StringComparer.Ordinal) { ["weight"] = "fc.weight", ["bias"] = "fc.bias" },
            Attrs = new(StringComparer.Ordinal) { ["transB"] = [1], ["alpha"] = [1], ["beta"] = [1] },
            Shape = [3],
        });
        var graph = new ModelGraph
        {
            InputName = "input", InputShape = [3, 4, 4], OutputName = "logits", Preprocessing = Preprocessing.ImageNet(4, 4),
            Nodes = nodes,
        };
        var weights = new Dictionary<string, HostTensor>(StringComparer.Ordinal)
        {
            ["conv.weight"] = conv,
            ["conv.bias"] = new HostTensor([2], [0.25f, -0.5f]),
            ["fc.weight"] = fc,
            ["fc.bias"] = new HostTensor([3], (float[])FcBias.Clone()),
        };
        if (middle.Any(n => n.Op == Ops.BatchNorm))
        {
            weights["bn.scale"] = new HostTensor([2], (float[])BnScale.Clone());
            weights["bn.shift"] = new HostTensor([2], (float[])BnShift.Clone());
        }
        return new ModelFile(graph, weights);
    }

    private static HostTensor Inputs() => new([2, 3, 4, 4], TensorAssert.Random(new Random(11), 96, 1.5f));

    /// <summary>The layer's activations (N, 2, 4, 4) and the logits (N, 3).</summary>
    private static (float[] A, float[] Logits) Forward(DeviceModel model, HostTensor input)
    {
        using var x = Device.Upload(input);
        using var pass = model.Forward(x);
        return (Device.Download(pass[Layer]), Device.Download(pass.Output));
    }

    private static float[] RawCam(DeviceModel model, HostTensor input, int image, Target target) =>
        new Explainer(model).Explain(input, new ClassActivationMap(), new ExplainOptions { Layers = [Layer], Target = target })[image]
            .Raw.Data;

    [Test]
    public void Cam_on_a_flatten_linear_head_is_each_locations_contribution_to_the_logit()
    {
        using var model = DeviceModel.Load(Build([], 32), Device);
        var input = Inputs();
        var (a, logits) = Forward(model, input);
        for (int k = 0; k < 3; k++)
        {
            for (int n = 0; n < 2; n++)
            {
                var raw = RawCam(model, input, n, Target.Class(k));
                // map[i,j] = sum_c W[k, c*16 + i*4 + j] A[c,i,j]
                var expected = new double[16];
                for (int c = 0; c < 2; c++)
                for (int p = 0; p < 16; p++)
                    expected[p] += (double)FcWeight(k, c * 16 + p) * a[n * 32 + c * 16 + p];
                TensorAssert.Close(raw, expected, 1e-5, 1e-5, $"image {n}, class {k}");
                double total = raw.Sum(v => (double)v) + FcBias[k];
                Assert.That(total, Is.EqualTo(logits[n * 3 + k]).Within(1e-5), $"sum of the map + b = logit, image {n}, class {k}");
            }
        }
        // Under a softmax target CAM still explains the class's logit (as the classifier weights do).
        TensorAssert.Close(RawCam(model, input, 1, Target.Softmax(2)), RawCam(model, input, 1, Target.Class(2)), 0, 0, "softmax:2 vs 2");
    }

    [Test]
    public void Cam_on_a_batchnorm_avgpool_linear_head_spreads_each_pooled_weight_over_its_window()
    {
        var middle = new GraphNode[]
        {
            new()
            {
                Name = "bn", Op = Ops.BatchNorm, Inputs = [Layer], Output = "bn_out", Shape = [2, 4, 4],
                Params = new(StringComparer.Ordinal) { ["scale"] = "bn.scale", ["shift"] = "bn.shift" },
            },
            new()
            {
                Name = "pool", Op = Ops.AvgPool, Inputs = ["bn_out"], Output = "pooled", Shape = [2, 2, 2],
                Attrs = new(StringComparer.Ordinal) { ["kernel"] = [2, 2], ["strides"] = [2, 2] },
            },
        };
        using var model = DeviceModel.Load(Build(middle, 8), Device);
        var input = Inputs();
        var (a, logits) = Forward(model, input);
        for (int k = 0; k < 3; k++)
        {
            // y = sum_{c,u,v} W[k, c*4 + u*2 + v] mean_{2x2 window (u,v)} (s_c A_c + t_c) + b_k:
            // W_eff[c,i,j] = s_c W[k, c*4 + (i/2)*2 + j/2] / 4, offset = b_k + sum_{c,u,v} W[k, c*4 + u*2 + v] t_c.
            double offset = FcBias[k];
            for (int c = 0; c < 2; c++)
            for (int q = 0; q < 4; q++)
                offset += (double)FcWeight(k, c * 4 + q) * BnShift[c];
            for (int n = 0; n < 2; n++)
            {
                var raw = RawCam(model, input, n, Target.Class(k));
                var expected = new double[16];
                for (int c = 0; c < 2; c++)
                for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    expected[i * 4 + j] += BnScale[c] * FcWeight(k, c * 4 + i / 2 * 2 + j / 2) / 4.0 * a[n * 32 + c * 16 + i * 4 + j];
                TensorAssert.Close(raw, expected, 1e-5, 1e-5, $"image {n}, class {k}");
                Assert.That(raw.Sum(v => (double)v) + offset, Is.EqualTo(logits[n * 3 + k]).Within(1e-5),
                    $"sum of the map + b = logit, image {n}, class {k}");
            }
        }
    }

    [Test]
    public void Cam_refuses_a_head_with_a_relu_and_names_the_node()
    {
        var relu = new GraphNode { Name = "head_relu", Op = Ops.Relu, Inputs = [Layer], Output = "relu_out", Shape = [2, 4, 4] };
        using var model = DeviceModel.Load(Build([relu], 32), Device);
        var e = Assert.Throws<MethodNotApplicableException>(() => RawCam(model, Inputs(), 0, Target.Top1));
        Assert.That(e!.Message, Does.Contain("'head_relu' (relu) is not affine"));
        Assert.That(e.Message, Does.Contain("no global average pool follows it"));
        // The ReLU's output itself is an affine head's input: there CAM works.
        var raw = new Explainer(model).Explain(Inputs(), new ClassActivationMap(), new ExplainOptions { Layers = ["relu_out"] })[0].Raw;
        Assert.That(raw.Shape, Is.EqualTo(new[] { 4, 4 }));
    }

    [Test]
    public void Cam_refuses_a_cosine_similarity_target_before_any_work()
    {
        using var model = DeviceModel.Load(Build([], 32), Device);
        var target = Target.Similarity([1f, -1f, 0.5f], cosine: true);
        var e = Assert.Throws<UnsupportedTargetException>(() => RawCam(model, Inputs(), 0, target));
        Assert.That(e!.Message, Does.Contain("linear in the model's output"));
        // The dot product is linear: its map is the contributions to r . y = sum_k r_k (W_k A + b_k).
        var dot = RawCam(model, Inputs(), 0, Target.Similarity([1f, -1f, 0.5f], cosine: false));
        var expected = new double[16];
        float[] r = [1f, -1f, 0.5f];
        for (int k = 0; k < 3; k++)
        {
            var perClass = RawCam(model, Inputs(), 0, Target.Class(k));
            for (int p = 0; p < 16; p++)
                expected[p] += r[k] * perClass[p];
        }
        TensorAssert.Close(dot, expected, 1e-5, 1e-5, "dot-product similarity = weighted sum of the class maps");
    }
}
