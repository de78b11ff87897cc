using CamEngine.Backends.Cpu;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// <see cref="PackedGemm.Run"/> with its A operand read in place from A^T packed as a B operand (<c>aPackedAsB</c>,
/// the one packed copy of Winograd's U that both GEMM orientations read) against A packed by <see cref="PackedGemm.PackA"/>:
/// bit for bit (same micro-kernel, same order of the sums), at both widths, on shapes with partial 8-row and 32-column
/// panels, several depth blocks, and a row panel that starts in the middle of a 32-column one; and both against a
/// double-precision product.
/// </summary>
[TestFixture]
internal sealed unsafe class PackedGemmTests
{
    [TestCase(1, 1, 1)]
    [TestCase(8, 32, 5)]
    [TestCase(70, 45, 300)]
    [TestCase(33, 1, 257)]
    [TestCase(100, 70, 600)]
    public void A_read_from_a_B_packing_equals_A_packed_as_A(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = TensorAssert.Random(rng, m * k);
        var b = TensorAssert.Random(rng, k * n);
        foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256, CpuSimd.Scalar })
        {
            var packedA = new float[PackedGemm.PackedALength(m, k)];
            var packedAt = new float[PackedGemm.PackedBLength(k, m)];
            var viaA = new float[m * n];
            var viaB = new float[m * n];
            fixed (float* pa = a, pb = b, da = packedA, dat = packedAt, ya = viaA, yb = viaB)
            {
                PackedGemm.PackA(pa, k, 1, m, k, 1f, da);
                PackedGemm.PackB(new StridedPanels(pa, 1, k, m), k, m, dat); // A^T(kk, i) = a[i*k + kk]
                PackedGemm.Run(m, n, k, da, new StridedPanels(pb, n, 1, n), ya, n, false, simd);
                PackedGemm.Run(m, n, k, dat, new StridedPanels(pb, n, 1, n), yb, n, false, simd, aPackedAsB: true);
            }
            Assert.That(viaB, Is.EqualTo(viaA), $"{simd}");
            var expected = new double[m * n];
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int kk = 0; kk < k; kk++)
                    sum += (double)a[i * k + kk] * b[kk * n + j];
                expected[i * n + j] = sum;
            }
            TensorAssert.Close(viaB, expected, 1e-6 * k, 1e-5, $"{simd}");
        }
    }
}
