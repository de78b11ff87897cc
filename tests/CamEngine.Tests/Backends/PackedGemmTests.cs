using CamEngine.Backends.Cpu;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// <see cref="PackedGemm.Run"/> with its B operand read from B^T packed as an A operand (<see cref="RowPanels"/>: the
/// one packed copy of Winograd's U that both GEMM orientations read) against B packed from the plain matrix: bit for bit
/// (same micro-kernel arithmetic, same order of the sums), at both widths and the scalar loop, on shapes with partial
/// 8-row and 32-column panels (a last B panel of 1 to 3 row panels, copied), several depth blocks and a single row;
/// and both against a double-precision product.
/// </summary>
[TestFixture]
internal sealed unsafe class PackedGemmTests
{
    [TestCase(1, 1, 1)]
    [TestCase(8, 32, 5)]
    [TestCase(16, 64, 300)]
    [TestCase(13, 70, 257)]
    [TestCase(31, 100, 600)]
    [TestCase(3, 8, 40)]
    public void B_read_from_an_A_packing_of_its_transpose_equals_B_packed_plain(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = TensorAssert.Random(rng, m * k);
        var bt = TensorAssert.Random(rng, n * k); // B^T (n x k), row-major: B(kk, j) = bt[j*k + kk]
        foreach (var simd in new[] { CpuSimd.Vector512, CpuSimd.Vector256, CpuSimd.Scalar })
        {
            var packedA = new float[PackedGemm.PackedALength(m, k)];
            var packedBt = new float[PackedGemm.PackedALength(n, k)];
            var plain = new float[m * n];
            var viaRows = new float[m * n];
            fixed (float* pa = a, pbt = bt, da = packedA, dbt = packedBt, yp = plain, yr = viaRows)
            {
                PackedGemm.PackA(pa, k, 1, m, k, 1f, da);
                PackedGemm.PackA(pbt, k, 1, n, k, 1f, dbt);
                PackedGemm.Run(m, n, k, da, new StridedPanels(pbt, 1, k, n), yp, n, false, simd);
                PackedGemm.Run(m, n, k, da, new RowPanels(dbt, n), yr, n, false, simd);
            }
            Assert.That(viaRows, Is.EqualTo(plain), $"{simd}");
            var expected = new double[m * n];
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int kk = 0; kk < k; kk++)
                    sum += (double)a[i * k + kk] * bt[j * k + kk];
                expected[i * n + j] = sum;
            }
            TensorAssert.Close(viaRows, expected, 1e-6 * k, 1e-5, $"{simd}");
        }
    }
}
