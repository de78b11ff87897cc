using CamEngine.GpuSuite;
using CamEngine.Kernels;
using ILGPU.Runtime.Cuda;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// The PTX half of <c>bench/gpu/run.sh --dry</c> in CI: every kernel, the explicitly grouped tiled and reduction
/// kernels included, lowers to PTX for the H100 (sm_90) and the T4 generation (sm_75); the tiled conv and GEMM
/// kernels declare their double-buffered shared tiles and do at least 8 FMAs per global load in their main loop;
/// and the PTX reader behind those figures counts a known loop right.
/// </summary>
[TestFixture]
internal sealed class GpuSuitePtxTests
{
    public static IEnumerable<TestCaseData> Compiles()
    {
        foreach (var k in KernelCatalog.All())
        {
            // The one-thread-per-output kernels' sm_90 compile is PtxCompileTests' business.
            if (k.ExplicitlyGrouped)
                yield return new TestCaseData(k.Name, CudaArchitecture.SM_90).SetArgDisplayNames(k.Name, "sm_90");
            yield return new TestCaseData(k.Name, CudaArchitecture.SM_75).SetArgDisplayNames(k.Name, "sm_75");
        }
    }

    [TestCaseSource(nameof(Compiles))]
    public void Kernel_compiles_to_PTX(string name, CudaArchitecture arch)
    {
        var k = KernelCatalog.All().Single(e => e.Name == name);
        var f = Ptx.Compile(k.Method, k.ExplicitlyGrouped, arch);
        Assert.That(f.Target, Does.Match(@"sm_\d+"));
    }

    [Test]
    public void The_catalog_holds_every_tiled_operand_struct_and_the_reductions()
    {
        var names = KernelCatalog.All().Select(k => k.Name).ToList();
        Assert.That(names, Is.Unique);
        Assert.That(names, Is.SupersetOf(new[]
        {
            "Conv2d.TiledForward", "Conv2d.TiledBackwardData", "Conv2d.TiledBackwardWeights", "Gemm.TiledForward",
            "Gemm.TiledBackwardData", "Gemm.TiledBackwardWeights", "Conv2d.DepthwiseForward",
            "Conv2d.DepthwiseBackwardWeights", "Reductions.ChannelSum", "Reductions.RowMeans", "Reductions.MinMaxNormalize", "CamMaps.Upsample", "CamMaps.MinMaxRow",
            "CamMaps.Masked", "CamMaps.Windowed", "CamMaps.ChannelWeights", "CamMaps.WeightedChannelSum", "CamMaps.ProductChannelSum",
        }));
        int operandStructs = typeof(ITileOperands).Assembly.GetTypes()
            .Count(t => t.IsValueType && typeof(ITileOperands).IsAssignableFrom(t));
        Assert.That(names.Count(n => n.Contains(".Tiled", StringComparison.Ordinal)), Is.EqualTo(operandStructs));
    }

    public static IEnumerable<string> TiledConvAndGemm() =>
        KernelCatalog.All().Where(k => k.Name.Contains(".Tiled", StringComparison.Ordinal)).Select(k => k.Name);

    [TestCaseSource(nameof(TiledConvAndGemm))]
    public void Tiled_kernel_reuses_each_global_load_for_at_least_8_FMAs(string name)
    {
        var k = KernelCatalog.All().Single(e => e.Name == name);
        var f = Ptx.Compile(k.Method, k.ExplicitlyGrouped, CudaArchitecture.SM_90);
        Assert.That(f.LoopHasBarrier, Is.True, "the main loop is the K loop with its barrier");
        Assert.That(f.SharedBytes, Is.EqualTo(TiledGemm.SharedBytes), "two A tiles and two B tiles in shared memory");
        Assert.That(f.LoopFmas, Is.EqualTo(TiledGemm.BK * 32), "BK steps of an 8x4 register micro-tile");
        Assert.That(f.FmaPerLoad, Is.GreaterThanOrEqualTo(8));
    }

    [Test]
    public void The_PTX_reader_counts_the_loop_not_the_code_around_it()
    {
        const string ptx = """
            .version 7.0
            .target sm_80
            .visible .entry k(
            )
            {
                .shared .align 4 .b8 tile[256];
                ld.global.f32 %f9, [%rd9];
                mul.f32 %f10, %f9, %f9;
                add.f32 %f11, %f10, %f9;
            L_1:
                ld.f32 %f1, [%rd1];
                ld.global.f32 %f2, [%rd2];
                ld.shared.f32 %f3, [%rd3];
                fma.rn.f32 %f4, %f1, %f2, %f4;
                mul.f32 %f5, %f1, %f3;
                add.f32 %f4, %f4, %f5;
                mul.f32 %f6, %f1, %f1;
                bar.sync 0;
                @%p1 bra L_1;
                bra.uni L_2;
            L_2:
                ld.global.f32 %f7, [%rd7];
                ret;
            }
            """;
        var f = Ptx.Analyze(ptx);
        Assert.That(f.Target, Is.EqualTo("sm_80"));
        Assert.That(f.SharedBytes, Is.EqualTo(256));
        Assert.That(f.LoopHasBarrier, Is.True);
        Assert.That(f.LoopGlobalLoads, Is.EqualTo(2), "the generic and the global load in the loop; not the shared one, not those outside");
        Assert.That(f.LoopFmas, Is.EqualTo(2), "one fma, one mul feeding an add; a mul feeding nothing is no FMA");
    }
}
