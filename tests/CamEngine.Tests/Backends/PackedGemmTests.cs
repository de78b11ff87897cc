using CamEngine.Backends.Cpu;
using CamEngine.Kernels;
using NUnit.Framework;

namespace CamEngine.Tests.Backends;

/// <summary>
/// <see cref="PackedGemm.Run"/> with its B operand read from B^T packed as an A operand (<see cref="RowPanels"/>: the
/// one packed copy of Winograd's U that both GEMM orientations read) against B packed from the plain matrix: bit for bit
/// (same micro-kernel arithmetic, same order of the sums), at both widths and the scalar loop, on shapes with partial
/// 8-row and 32-column panels (a last B panel of 1 to 3 row panels, copied), several depth blocks and a single row;
/// and both against a double-precision product. The tile epilogue (row bias, residual, activation) applied in the
/// AVX-512 kernel's registers (<see cref="PackedGemm.FusedStores"/>) against the second pass over the stored tile that
/// edge tiles and the other widths take: bit for bit, and against the double-precision product.
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

    [TestCase(8, 32, 5, false)]
    [TestCase(16, 64, 64, false)]
    [TestCase(13, 70, 257, false)]
    [TestCase(24, 96, 600, true)]
    [TestCase(31, 100, 300, true)]
    public void Tile_epilogue_in_registers_equals_the_second_pass(int m, int n, int k, bool accumulate)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = TensorAssert.Random(rng, m * k);
        var b = TensorAssert.Random(rng, k * n);
        var bias = TensorAssert.Random(rng, m);
        var residual = TensorAssert.Random(rng, m * n);
        var start = TensorAssert.Random(rng, m * n); // C before an accumulating call
        var packedA = new float[PackedGemm.PackedALength(m, k)];
        foreach (var act in new[] { EpilogueActivation.None, EpilogueActivation.Relu, EpilogueActivation.Clip, EpilogueActivation.Silu })
        foreach (bool withResidual in new[] { false, true })
        foreach (bool withBias in new[] { false, true })
        {
            if (act == EpilogueActivation.None && !withResidual && !withBias)
                continue;
            var inRegisters = (float[])start.Clone();
            var secondPass = (float[])start.Clone();
            fixed (float* pa = a, pb = b, pbias = bias, pres = residual, da = packedA, y1 = inRegisters, y2 = secondPass)
            {
                PackedGemm.PackA(pa, k, 1, m, k, 1f, da);
                var epilogue = new StoreEpilogue(withResidual ? pres : null, act, -0.5f, 0.75f);
                float* rowBias = withBias ? pbias : null;
                bool saved = PackedGemm.FusedStores;
                try
                {
                    PackedGemm.FusedStores = true;
                    PackedGemm.Run(m, n, k, da, new StridedPanels(pb, n, 1, n), y1, n, accumulate, CpuSimd.Vector512,
                        epilogue: epilogue, rowBias: rowBias);
                    PackedGemm.FusedStores = false;
                    PackedGemm.Run(m, n, k, da, new StridedPanels(pb, n, 1, n), y2, n, accumulate, CpuSimd.Vector512,
                        epilogue: epilogue, rowBias: rowBias);
                }
                finally
                {
                    PackedGemm.FusedStores = saved;
                }
            }
            string what = $"{act}, residual {withResidual}, bias {withBias}";
            Assert.That(inRegisters, Is.EqualTo(secondPass), what);
            var expected = new double[m * n];
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double v = accumulate ? start[i * n + j] : 0;
                for (int kk = 0; kk < k; kk++)
                    v += (double)a[i * k + kk] * b[kk * n + j];
                v += (withBias ? bias[i] : 0) + (withResidual ? residual[i * n + j] : 0);
                expected[i * n + j] = act switch
                {
                    EpilogueActivation.Relu => Math.Max(v, 0),
                    EpilogueActivation.Clip => Math.Clamp(v, -0.5, 0.75),
                    EpilogueActivation.Silu => v / (1 + Math.Exp(-v)),
                    _ => v,
                };
            }
            TensorAssert.Close(inRegisters, expected, 1e-6 * k, 1e-5, what);
        }
    }
}
