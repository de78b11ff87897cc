using System.Reflection;
using CamEngine.Backends;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using NUnit.Framework;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// Every kernel in the kernels assembly lowers to PTX for the H100 (SM_90) without a GPU, so a kernel that
/// would fail on CUDA fails CI here. Kernels are found by reflection: any public static method whose first
/// parameter is <see cref="Index1D"/>.
/// </summary>
[TestFixture]
public sealed class PtxCompileTests
{
    public static IEnumerable<MethodInfo> AllKernels() =>
        typeof(CamEngine.Kernels.ConvShape).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.GetParameters() is { Length: > 0 } p && p[0].ParameterType == typeof(Index1D))
            .SelectMany(Closed)
            .OrderBy(m => m.DeclaringType!.Name + "." + m.Name + string.Join(",", m.GetGenericArguments().Select(t => t.Name)));

    /// <summary>A generic kernel over an <see cref="CamEngine.Kernels.IUnaryOp"/> is compiled once per operator struct
    /// the backends use (<see cref="CamEngine.Kernels.UnaryOps.Instantiations"/>); other kernels as they are.</summary>
    private static IEnumerable<MethodInfo> Closed(MethodInfo m) =>
        m.IsGenericMethodDefinition
            ? CamEngine.Kernels.UnaryOps.Instantiations.Select(op => m.MakeGenericMethod(op.GetType()))
            : [m];

    [Test]
    public void Every_unary_operator_struct_is_instantiated() =>
        Assert.That(CamEngine.Kernels.UnaryOps.Instantiations.Select(o => o.GetType()),
            Is.EquivalentTo(typeof(CamEngine.Kernels.IUnaryOp).Assembly.GetTypes()
                .Where(t => t.IsValueType && typeof(CamEngine.Kernels.IUnaryOp).IsAssignableFrom(t))));

    [Test]
    public void The_kernel_list_is_not_empty() => Assert.That(AllKernels().Count(), Is.GreaterThanOrEqualTo(17));

    [TestCaseSource(nameof(AllKernels))]
    public void Kernel_compiles_to_PTX_for_SM90(MethodInfo kernel)
    {
        using var context = Context.Create(b => b.EnableAlgorithms());
        using var backend = new PTXBackend(
            context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var compiled = backend.Compile(EntryPointDescription.FromImplicitlyGroupedKernel(kernel), default(KernelSpecialization));
        var ptx = (PTXCompiledKernel)compiled;
        // ILGPU writes the lowest target that has every capability the device offers (sm_80 for SM_90 in
        // 1.5.3), exactly as it does when it compiles for a real H100; the driver JITs that PTX for sm_90.
        Assert.That(ptx.PTXAssembly, Does.Match(@"\.target sm_[5-9]\d"));
        Assert.That(ptx.PTXAssembly, Does.Contain(".entry"));
    }

    [Test]
    public void Cpu_accelerator_configuration_is_the_measured_best() =>
        Assert.That(IlgpuBackend.CpuDevice().WarpSize, Is.EqualTo(2));
}
