using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Tests.Metrics;

/// <summary>
/// Models whose scores are computable by hand: input (C, H, W) -> global average pool -> gemm to K logits,
/// <c>y_k = sum_c W[k, c] mean_hw(x_c) + b_k</c>. With one channel and W = [[1], [-1]], b = 0 the logits are
/// (m, -m) for m the mean pixel value, and the class-0 softmax probability is sigmoid(2 m).
/// </summary>
internal static class LinearModel
{
    public static ModelFile Create(int c, int h, int w, float[,] weight, float[]? bias = null)
    {
        int k = weight.GetLength(0);
        var graph = new ModelGraph
        {
            InputName = "input",
            InputShape = [c, h, w],
            OutputName = "logits",
            Preprocessing = new Preprocessing
            {
                Height = h, Width = w, ResizeShorter = Math.Max(h, w), Mean = new float[c], Std = Enumerable.Repeat(1f, c).ToArray(),
            },
            Nodes =
            [
                new GraphNode { Name = "gap", Op = Ops.GlobalAvgPool, Inputs = ["input"], Output = "pooled", Shape = [c, 1, 1] },
                new GraphNode
                {
                    Name = "flatten", Op = Ops.Flatten, Inputs = ["pooled"], Output = "flat",
                    Attrs = new(StringComparer.Ordinal) { ["axis"] = [1] }, Shape = [c],
                },
                new GraphNode
                {
                    Name = "fc", Op = Ops.Gemm, Inputs = ["flat"], Output = "logits",
                    Params = new(StringComparer.Ordinal) { ["weight"] = "fc.weight", ["bias"] = "fc.bias" },
                    Attrs = new(StringComparer.Ordinal) { ["transB"] = [1], ["alpha"] = [1], ["beta"] = [1] },
                    Shape = [k],
                },
            ],
        };
        var wt = new HostTensor(k, c);
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < c; j++)
                wt.Data[i * c + j] = weight[i, j];
        }
        var weights = new Dictionary<string, HostTensor>(StringComparer.Ordinal)
        {
            ["fc.weight"] = wt,
            ["fc.bias"] = new HostTensor([k], bias ?? new float[k]),
        };
        return new ModelFile(graph, weights);
    }

    /// <summary>One channel, two classes, logits (m, -m).</summary>
    public static ModelFile PlusMinusMean(int h, int w) => Create(1, h, w, new float[,] { { 1 }, { -1 } });

    /// <summary>A hand-made explanation of image <paramref name="image"/> for class <paramref name="cls"/>.</summary>
    public static Explanation Map(int image, int cls, int h, int w, float[] map) => new()
    {
        Image = image, Method = "hand", TargetClass = cls, Score = 0, Layers = [],
        Map = new HostTensor([h, w], map), Raw = new HostTensor([h, w], (float[])map.Clone()),
    };
}
