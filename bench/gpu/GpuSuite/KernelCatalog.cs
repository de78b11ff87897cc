using System.Reflection;
using CamEngine.Kernels;
using ILGPU;

namespace CamEngine.GpuSuite;

/// <summary>One kernel entry point: its method (closed when generic), how it is launched, and its family.</summary>
internal sealed record KernelEntry(string Name, MethodInfo Method, bool ExplicitlyGrouped, bool ConvOrGemm, bool IsTiled);

/// <summary>
/// Every kernel of the kernels assembly: the one-thread-per-output kernels (static methods whose first parameter
/// is <see cref="Index1D"/>, generic ones closed over every unary operator struct), and the explicitly grouped
/// tiled and reduction kernels (<see cref="TiledGemm.Run{TOps}"/> closed over every <see cref="ITileOperands"/>
/// struct, and the static kernels that read <see cref="Grid"/> and <see cref="Group"/>).
/// </summary>
internal static class KernelCatalog
{
    public static IReadOnlyList<KernelEntry> All()
    {
        var asm = typeof(ConvShape).Assembly;
        var list = new List<KernelEntry>();
        foreach (var type in asm.GetTypes())
        {
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                var p = m.GetParameters();
                if (p.Length == 0 || p[0].ParameterType != typeof(Index1D))
                    continue;
                var closed = m.IsGenericMethodDefinition
                    ? UnaryOps.Instantiations.Select(op => m.MakeGenericMethod(op.GetType()))
                    : [m];
                foreach (var c in closed)
                    list.Add(Entry(c, false));
            }
        }
        var run = typeof(TiledGemm).GetMethod(nameof(TiledGemm.Run))!;
        foreach (var ops in asm.GetTypes().Where(t => t.IsValueType && typeof(ITileOperands).IsAssignableFrom(t)))
            list.Add(Entry(run.MakeGenericMethod(ops), true));
        foreach (var m in new Delegate[]
                 {
                     (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, Conv2d.Geometry>)Conv2d.DepthwiseBackwardWeights,
                     (Action<ArrayView<float>, ArrayView<float>, int, int, int, float>)Reductions.ChannelSum,
                     (Action<ArrayView<float>, ArrayView<float>, int, int>)Reductions.RowMeans,
                     (Action<ArrayView<float>, ArrayView<float>, int, float>)Reductions.MinMaxNormalize,
                 })
            list.Add(Entry(m.Method, true));
        return list.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The display name of a kernel: Class.Method, with the operand struct for the tiled core.</summary>
    public static string NameOf(MethodInfo m)
    {
        string owner = m.DeclaringType!.Name;
        if (m.IsGenericMethod && m.DeclaringType == typeof(TiledGemm))
        {
            var ops = m.GetGenericArguments()[0];
            return $"{ops.DeclaringType?.Name}.{ops.Name}";
        }
        string generic = m.IsGenericMethod ? "<" + string.Join(",", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";
        return $"{owner}.{m.Name}{generic}";
    }

    private static KernelEntry Entry(MethodInfo m, bool explicitly)
    {
        string name = NameOf(m);
        bool convOrGemm = name.StartsWith("Conv2d.", StringComparison.Ordinal) || name.StartsWith("Gemm.", StringComparison.Ordinal);
        bool tiled = explicitly || name.Contains("Depthwise", StringComparison.Ordinal);
        return new KernelEntry(name, m, explicitly, convOrGemm && !name.EndsWith("BackwardBias", StringComparison.Ordinal), tiled);
    }
}
