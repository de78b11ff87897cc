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

    /// <summary>
    /// A GEMM over several images' planes (<see cref="PackedGemm.Run"/>'s colsPerImage, B's rows read in place as
    /// <see cref="InPlaceRows"/>, as a batch's 1x1 conv runs): the panels and tiles that cross from one image into the
    /// next moved as masked vectors (<see cref="PackedGemm.MaskedCrossings"/>) give the bits of moving them one float at
    /// a time, and both the double-precision product; planes of 37, 20, 50 and 196 pixels (crossings at every lane
    /// offset the shapes reach, a last panel short of 32 columns, one that crosses and ends short), two blocks of depth
    /// (the crossing tile added into C), rows of 13 and 24, every tile end (row bias, residual, activation). B's and C's
    /// planes lie apart with NaN between them (C's of its own bits): a masked-off lane read would carry B's into the
    /// sums, a lane stored past its run would overwrite C's.
    /// </summary>
    [TestCase(13, 37, 3, 40)]
    [TestCase(13, 20, 3, 40)]
    [TestCase(24, 50, 3, 300)]
    [TestCase(13, 196, 2, 300)]
    public void Tiles_crossing_into_the_next_image_as_masked_vectors_equal_one_float_at_a_time(int m, int perImage, int images, int k)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("x's rows are read in place by the AVX-512 kernel only");
        var rng = new Random(m * 1000 + perImage * 10 + k);
        int n = images * perImage;
        long bImage = (long)k * perImage + 21, cImage = (long)m * perImage + 19;
        var a = TensorAssert.Random(rng, m * k);
        var b = Spaced(TensorAssert.Random(rng, n * k), images, k * perImage, bImage);
        var bias = TensorAssert.Random(rng, m);
        var residual = Spaced(TensorAssert.Random(rng, m * n), images, m * perImage, cImage);
        var packedA = new float[PackedGemm.PackedALength(m, k)];
        foreach (var act in new[] { EpilogueActivation.None, EpilogueActivation.Relu, EpilogueActivation.Clip, EpilogueActivation.Silu })
        foreach (bool withResidual in new[] { false, true })
        foreach (bool withBias in new[] { false, true })
        {
            float[] Run(bool masked)
            {
                var y = new float[images * cImage];
                Array.Fill(y, Sentinel);
                fixed (float* pa = a, pb = b, pbias = bias, pres = residual, da = packedA, py = y)
                {
                    PackedGemm.PackA(pa, k, 1, m, k, 1f, da);
                    bool saved = PackedGemm.MaskedCrossings;
                    try
                    {
                        PackedGemm.MaskedCrossings = masked;
                        PackedGemm.Run(m, n, k, da, new InPlaceRows(pb, perImage, n, perImage, bImage), py, perImage, false,
                            CpuSimd.Vector512, epilogue: new StoreEpilogue(withResidual ? pres : null, act, -0.5f, 0.75f),
                            rowBias: withBias ? pbias : null, colsPerImage: perImage, cImageStride: cImage);
                    }
                    finally
                    {
                        PackedGemm.MaskedCrossings = saved;
                    }
                }
                return y;
            }
            string what = $"{act}, residual {withResidual}, bias {withBias}";
            var masked = Run(true);
            Assert.That(masked, Is.EqualTo(Run(false)), what);
            var got = new float[m * n];
            var expected = new double[m * n];
            for (int img = 0; img < images; img++)
            for (int i = 0; i < m; i++)
            for (int q = 0; q < perImage; q++)
            {
                double v = 0;
                for (int kk = 0; kk < k; kk++)
                    v += (double)a[i * k + kk] * b[img * bImage + kk * perImage + q];
                long at = img * cImage + i * perImage + q;
                v += (withBias ? bias[i] : 0) + (withResidual ? residual[at] : 0);
                int to = (img * m + i) * perImage + q;
                got[to] = masked[at];
                expected[to] = act switch
                {
                    EpilogueActivation.Relu => Math.Max(v, 0),
                    EpilogueActivation.Clip => Math.Clamp(v, -0.5, 0.75),
                    EpilogueActivation.Silu => v / (1 + Math.Exp(-v)),
                    _ => v,
                };
            }
            TensorAssert.Close(got, expected, 1e-6 * k, 1e-5, what);
            for (int img = 0; img < images; img++)
            for (long g = img * cImage + m * perImage; g < (img + 1) * cImage; g++)
                Assert.That(BitConverter.SingleToInt32Bits(masked[g]), Is.EqualTo(BitConverter.SingleToInt32Bits(Sentinel)),
                    $"{what}: the gap after image {img} written at {g}");
        }
    }

    /// <summary>What C holds between images' planes: a NaN of its own bits, which no sum that read B's NaN gives.</summary>
    private static readonly float Sentinel = BitConverter.Int32BitsToSingle(0x7FC0DEAD);

    /// <summary>Images' planes of <paramref name="plane"/> floats from <paramref name="dense"/>, each
    /// <paramref name="stride"/> floats from the last, NaN between them.</summary>
    private static float[] Spaced(float[] dense, int images, long plane, long stride)
    {
        var spaced = new float[images * stride];
        Array.Fill(spaced, float.NaN);
        for (int img = 0; img < images; img++)
            Array.Copy(dense, img * plane, spaced, img * stride, plane);
        return spaced;
    }
}
