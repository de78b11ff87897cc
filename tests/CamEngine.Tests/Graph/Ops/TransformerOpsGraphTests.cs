using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.Kernels;
using CamEngine.Model;
using NUnit.Framework;
using static CamEngine.Tests.Graph.Ops.OpGraph;
using ModelOps = CamEngine.Model.Ops;

namespace CamEngine.Tests.Graph.Ops;

/// <summary>
/// The operators the vision transformers added: the batched product of two computed tensors (attention) and
/// Concat with a constant repeated over the batch (ViT's class token), each in a small graph on the reference
/// backend in double: the forward against the definition computed here, the reverse pass against finite
/// differences (input and parameters), the jets against finite differences of the forward; and the kernels of
/// the managed CPU and ILGPU backends against the reference for every transpose flag.
/// </summary>
[TestFixture]
internal sealed class TransformerOpsGraphTests
{
    private static double[] Forward(OpGraph g, double[] x)
    {
        using var model = DeviceModel.Load(g.File(), new ReferenceBackend());
        return Run(model, x);
    }

    [Test]
    public void BatchMatMul_of_x_and_its_transpose_is_the_Gram_matrix_per_slice_and_differentiates()
    {
        // x (N, 2, 3, 4); g = x x^T (N, 2, 3, 3); y = g x (N, 2, 3, 4): quadratic, then cubic in x.
        var g = new OpGraph([2, 3, 4]);
        string xt = g.Add(ModelOps.Transpose, A(("perm", [0, 1, 3, 2])));
        string gram = g.Add(ModelOps.BatchMatMul, inputs: ["input", xt]);
        var x = g.RandomInput();
        var y = Forward(g, x);
        Assert.That(y, Has.Length.EqualTo(2 * 2 * 3 * 3));
        for (int b = 0; b < 4; b++)
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
        {
            double s = 0;
            for (int k = 0; k < 4; k++)
                s += x[(b * 3 + i) * 4 + k] * x[(b * 3 + j) * 4 + k];
            Assert.That(y[(b * 3 + i) * 3 + j], Is.EqualTo(s).Within(1e-12));
        }
        g.CheckReverse();
        g.CheckJets();
        g.Add(ModelOps.BatchMatMul, inputs: [gram, "input"]);
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void BatchMatMul_refuses_operands_whose_leading_axes_differ()
    {
        var g = new OpGraph([2, 3, 4]);
        string r = g.Add(ModelOps.Reshape, A(("shape", [4, 3, 2])));
        var e = Assert.Throws<ArgumentException>(() => g.Add(ModelOps.BatchMatMul, inputs: ["input", r]));
        Assert.That(e!.Message, Does.Contain("leading axes"));
    }

    [Test]
    public void BatchMatMul_broadcasts_the_leading_axes_as_numpy_and_sums_the_gradient_over_them()
    {
        // x (N, 2, 3, 4); m = mean over axis 1 (N, 1, 3, 4); mt = m^T (N, 1, 4, 3).
        // y1 = x mt (N, 2, 3, 3): mt repeated over the 2; y2 = mt x (N, 2, 4, 4): the left operand repeated;
        // y3 = x (N, 2, 3, 4) times r (N, 4, 3), a rank-3 operand right-aligned (no leading axis).
        var g = new OpGraph([2, 3, 4]);
        string m = g.Add(ModelOps.ReduceMean, A(("axes", [1]), ("keepdims", [1])));
        string mt = g.Add(ModelOps.Transpose, A(("perm", [0, 1, 3, 2])), inputs: [m]);
        g.Add(ModelOps.BatchMatMul, inputs: ["input", mt]);
        var x = g.RandomInput();
        var y = Forward(g, x);
        Assert.That(y, Has.Length.EqualTo(2 * 2 * 3 * 3));
        for (int n = 0; n < 2; n++)
        for (int h = 0; h < 2; h++)
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
        {
            double s = 0;
            for (int k = 0; k < 4; k++)
            {
                double mean = (x[((n * 2 + 0) * 3 + j) * 4 + k] + x[((n * 2 + 1) * 3 + j) * 4 + k]) / 2;
                s += x[((n * 2 + h) * 3 + i) * 4 + k] * mean;
            }
            Assert.That(y[((n * 2 + h) * 3 + i) * 3 + j], Is.EqualTo(s).Within(1e-12));
        }
        g.CheckReverse();
        g.CheckJets();
        g.Add(ModelOps.BatchMatMul, inputs: [mt, "input"]);
        g.CheckReverse();
        g.CheckJets();
        string r = g.Add(ModelOps.Reshape, A(("shape", [4, 3])), inputs: [mt]);
        string y3 = g.Add(ModelOps.BatchMatMul, inputs: ["input", r]);
        Assert.That(g.File().Graph.Nodes[^1].Shape, Is.EqualTo(new[] { 2, 3, 3 }), $"{y3}: (2, 3, 4) x (4, 3)");
        g.CheckReverse();
        g.CheckJets();
    }

    [Test]
    public void Concat_with_a_constant_puts_it_in_every_image_and_sums_its_gradient_over_the_batch()
    {
        // The class token: (N, 3, 4) tokens, constant (1, 4) first along the token axis -> (N, 4, 4).
        var g = new OpGraph([2, 3, 4]);
        g.Add(ModelOps.Reshape, A(("shape", [6, 4])));
        string token = g.Weight("token", [1, 4]);
        g.Add(ModelOps.Concat, A(("axis", [1]), ("constant_at", [0])), P(("constant", token)));
        var x = g.RandomInput();
        var y = Forward(g, x);
        var c = g.Weights["token"].Data;
        for (int n = 0; n < 2; n++)
        {
            for (int j = 0; j < 4; j++)
                Assert.That(y[n * 28 + j], Is.EqualTo(c[j]).Within(0), "the constant leads each image");
            for (int i = 0; i < 24; i++)
                Assert.That(y[n * 28 + 4 + i], Is.EqualTo(x[n * 24 + i]).Within(0), "the tokens follow");
        }
        g.CheckReverse();
        g.CheckJets();

        // In the middle of a rank-3 concat along the last axis.
        var m = new OpGraph([2, 3, 4]);
        string c2 = m.Weight("c", [2, 3, 2]);
        string half = m.Add(ModelOps.Slice, A(("axis", [3]), ("start", [0]), ("count", [1])));
        m.Add(ModelOps.Concat, A(("axis", [3]), ("constant_at", [1])), P(("constant", c2)), inputs: ["input", half]);
        m.CheckReverse();
        m.CheckJets();
    }

    [TestCase("cpu", 0, 1)]
    [TestCase("cpu", 1, 0)]
    [TestCase("ilgpu", 0, 0)]
    [TestCase("ilgpu", 1, 1)]
    public void Broadcasting_BatchMatMul_kernels_match_the_reference(string device, int transA, int transB)
    {
        // Batch dims (2, 3, 1, 2): a is (2, 1, 1, 2) (repeated over the 3), b is (1, 3, 1, 1) (over the image and last).
        var f = TestDevice.Named(device);
        var r = new ReferenceBackend();
        var s = BatchMatMulShape.Broadcasting([2, 3, 1, 2], [2, 1, 1, 2], [1, 3, 1, 1], 5, 7, 6, transA, transB);
        Assert.That((s.Batch, s.MatricesA, s.MatricesB), Is.EqualTo((12, 4L, 3L)));
        var (a, b, got, expected) = Products(f, r, s, new Random(11 + transA + 2 * transB));
        // The reference against the definition at batch index (1, 2, 0, 1) = 11: a's matrix (1, 0, 0, 1) = 3, b's (0, 2, 0, 0) = 2.
        double e0 = 0;
        for (int k = 0; k < s.K; k++)
        {
            double av = transA == 0 ? a[(3 * s.M + 4) * s.K + k] : a[(3 * s.K + k) * s.M + 4];
            double bv = transB == 0 ? b[(2 * s.K + k) * s.N + 5] : b[(2 * s.N + 5) * s.K + k];
            e0 += av * bv;
        }
        Assert.That(expected[(11 * s.M + 4) * s.N + 5], Is.EqualTo(e0).Within(1e-9));
        TensorAssert.Close(got, expected, 1e-5, 1e-4, $"broadcasting batch matmul on {device}");
    }

    /// <summary>Random operands for <paramref name="s"/> (every matrix it reads), their product on <paramref name="f"/>
    /// and on the reference.</summary>
    private static (float[] A, float[] B, float[] Got, double[] Expected) Products(CamEngine.Backends.Backend f, ReferenceBackend r,
        BatchMatMulShape s, Random rng)
    {
        var a = TensorAssert.Random(rng, (int)s.MatricesA * s.M * s.K);
        var b = TensorAssert.Random(rng, (int)s.MatricesB * s.K * s.N);
        using var af = f.Upload(a, a.Length);
        using var bf = f.Upload(b, b.Length);
        using var yf = f.Allocate(s.Batch * s.M * s.N);
        using var ar = r.Upload(a, a.Length);
        using var br = r.Upload(b, b.Length);
        using var yr = r.Allocate(s.Batch * s.M * s.N);
        f.BatchMatMul(af, bf, yf, s);
        r.BatchMatMul(ar, br, yr, s);
        return (a, b, f.Download(yf), ReferenceBackend.DownloadDouble(yr));
    }

    /// <summary>
    /// The CPU backend's packed-GEMM batch products (65,536 multiply-adds or more) against the reference: a linear layer
    /// over tokens (batches sharing B, A's matrices consecutive: one GEMM over every row), small per-batch products run
    /// in parallel (attention heads), large ones one after another with a parallel GEMM, and A broadcast over a batch
    /// dim with B shared; every transpose; odd sizes (tiles short of 8 rows and 32 columns, depth past one block of 256).
    /// </summary>
    [TestCase(0, 0)]
    [TestCase(0, 1)]
    [TestCase(1, 0)]
    [TestCase(1, 1)]
    public void Packed_cpu_BatchMatMul_matches_the_reference(int transA, int transB)
    {
        var f = TestDevice.Named("cpu");
        var r = new ReferenceBackend();
        foreach (var s in new[]
                 {
                     BatchMatMulShape.Broadcasting([2, 5], [2, 5], [1, 1], 30, 72, 40, transA, transB),
                     new BatchMatMulShape(6, 40, 33, 37, transA, transB),
                     new BatchMatMulShape(2, 203, 290, 199, transA, transB),
                     BatchMatMulShape.Broadcasting([2, 3], [2, 1], [1, 1], 45, 64, 70, transA, transB),
                 })
        {
            Assert.That((long)s.Batch * s.M * s.K * s.N, Is.GreaterThanOrEqualTo(CamEngine.Backends.Cpu.CpuBackend.PackedMatMulWork), $"{s} is packed");
            var (_, _, got, expected) = Products(f, r, s, new Random(17 + transA + 2 * transB));
            TensorAssert.Close(got, expected, 1e-5, 1e-4, $"packed batch matmul {s}");
        }
    }

    [TestCase("cpu", 0, 0)]
    [TestCase("cpu", 0, 1)]
    [TestCase("cpu", 1, 0)]
    [TestCase("cpu", 1, 1)]
    [TestCase("ilgpu", 0, 0)]
    [TestCase("ilgpu", 0, 1)]
    [TestCase("ilgpu", 1, 0)]
    [TestCase("ilgpu", 1, 1)]
    public void BatchMatMul_kernels_match_the_reference(string device, int transA, int transB)
    {
        var f = TestDevice.Named(device);
        var r = new ReferenceBackend();
        var s = new BatchMatMulShape(3, 5, 19, 11, transA, transB);
        var (a, b, got, expected) = Products(f, r, s, new Random(3 + 2 * transA + transB));
        // The reference against the definition at one element.
        double e0 = 0;
        for (int k = 0; k < s.K; k++)
            e0 += (double)a[s.A(2, 4, k)] * b[s.B(2, k, 7)];
        Assert.That(expected[(2 * s.M + 4) * s.N + 7], Is.EqualTo(e0).Within(1e-9));
        TensorAssert.Close(got, expected, 1e-5, 1e-4, $"batch matmul transA {transA} transB {transB} on {device}");
    }
}
