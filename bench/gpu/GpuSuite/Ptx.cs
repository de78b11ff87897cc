using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace CamEngine.GpuSuite;

/// <summary>What the PTX of one kernel shows without running it.</summary>
internal sealed record PtxFigures(string Target, int SharedBytes, int LoopGlobalLoads, int LoopFmas, bool LoopHasBarrier)
{
    /// <summary>FMAs per global load in the main loop (infinity when the loop loads nothing from global memory).</summary>
    public double FmaPerLoad => LoopGlobalLoads == 0 ? double.PositiveInfinity : (double)LoopFmas / LoopGlobalLoads;
}

/// <summary>
/// Compiles kernels to PTX with ILGPU's PTX backend (no GPU needed) and reads figures off the assembly text:
/// the static shared memory it declares, and, in its main loop, the global loads against the FMAs. The main loop
/// is the innermost backward branch that contains a barrier (a tiled kernel's K step), or else the loop with the
/// most FMAs (a simple kernel's reduction).
/// </summary>
internal static partial class Ptx
{
    public static PtxFigures Compile(MethodInfo kernel, bool explicitlyGrouped, CudaArchitecture arch)
    {
        using var context = Context.Create(b => b.EnableAlgorithms());
        using var backend = new PTXBackend(
            context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
        return Analyze(compiled.PTXAssembly);
    }

    /// <summary>The PTX text of a kernel (for inspection).</summary>
    public static string Text(MethodInfo kernel, bool explicitlyGrouped, CudaArchitecture arch)
    {
        using var context = Context.Create(b => b.EnableAlgorithms());
        using var backend = new PTXBackend(
            context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        return ((PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization))).PTXAssembly;
    }

    public static PtxFigures Analyze(string ptx)
    {
        var lines = ptx.Split('\n').Select(l => l.Trim()).ToArray();
        string target = TargetRegex().Match(ptx) is { Success: true } t ? t.Groups[1].Value : "?";
        int shared = 0;
        foreach (Match m in SharedRegex().Matches(ptx))
            shared += Int(m.Groups[1].Value) * Int(m.Groups[2].Value) / 8;

        var blocks = Blocks(lines);
        var loops = new List<HashSet<int>>();
        for (int b = 0; b < blocks.Count; b++)
        {
            foreach (int h in blocks[b].Succ)
            {
                if (h <= b)
                    loops.Add(NaturalLoop(blocks, h, b));
            }
        }
        bool Has(HashSet<int> loop, string op) => loop.Any(b => Lines(lines, blocks[b]).Any(l => l.StartsWith(op, StringComparison.Ordinal)));
        var barrierLoops = loops.Where(l => Has(l, "bar.sync") || Has(l, "barrier.sync")).OrderBy(l => l.Count).ToList();
        HashSet<int>? main = barrierLoops.Count > 0
            ? barrierLoops[0]
            : loops.OrderByDescending(l => Fmas(lines, blocks, l)).ThenBy(l => l.Count).FirstOrDefault();
        if (main == null)
            return new PtxFigures(target, shared, 0, 0, false);
        int loads = main.Sum(b => Lines(lines, blocks[b]).Count(IsGlobalLoad));
        return new PtxFigures(target, shared, loads, Fmas(lines, blocks, main), barrierLoops.Count > 0);
    }

    private static int Int(string s) => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A load from global memory: <c>ld.global</c>, or a generic <c>ld</c> (ILGPU passes views as generic
    /// pointers), but not a load from the parameter, shared, local or constant space.</summary>
    private static bool IsGlobalLoad(string l) =>
        l.StartsWith("ld.", StringComparison.Ordinal) && !l.StartsWith("ld.param", StringComparison.Ordinal)
        && !l.StartsWith("ld.shared", StringComparison.Ordinal) && !l.StartsWith("ld.local", StringComparison.Ordinal)
        && !l.StartsWith("ld.const", StringComparison.Ordinal);

    /// <summary>FMAs in a loop: explicit <c>fma</c> instructions, plus every <c>mul.f32</c> (no rounding modifier, so
    /// ptxas may contract it) whose result an <c>add.f32</c> of the loop consumes: ptxas fuses that pair into one FFMA.</summary>
    private static int Fmas(string[] lines, List<Block> blocks, HashSet<int> loop)
    {
        var body = loop.SelectMany(b => Lines(lines, blocks[b])).ToList();
        int fma = body.Count(l => l.StartsWith("fma.", StringComparison.Ordinal));
        var adds = body.Where(l => l.StartsWith("add.f32", StringComparison.Ordinal))
            .SelectMany(l => l.Split([' ', '\t', ',', ';'], StringSplitOptions.RemoveEmptyEntries).Skip(2))
            .ToHashSet(StringComparer.Ordinal);
        foreach (var l in body.Where(l => l.StartsWith("mul.f32", StringComparison.Ordinal)))
        {
            var parts = l.Split([' ', '\t', ',', ';'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 1 && adds.Contains(parts[1]))
                fma++;
        }
        return fma;
    }

    private sealed record Block(int Start, int End, List<int> Succ, List<int> Pred);

    private static IEnumerable<string> Lines(string[] lines, Block b)
    {
        for (int i = b.Start; i <= b.End; i++)
            yield return lines[i];
    }

    /// <summary>Basic blocks of the kernel body: a block starts at a label or after a branch or return.</summary>
    private static List<Block> Blocks(string[] lines)
    {
        int first = Array.FindIndex(lines, l => l.StartsWith(".entry", StringComparison.Ordinal) || l.StartsWith(".visible .entry", StringComparison.Ordinal));
        var blocks = new List<Block>();
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        int start = Math.Max(0, first);
        for (int i = start; i < lines.Length; i++)
        {
            var lm = LabelRegex().Match(lines[i]);
            bool ends = BranchRegex().IsMatch(lines[i]) || lines[i].StartsWith("ret", StringComparison.Ordinal);
            if (lm.Success && i > start)
            {
                blocks.Add(new Block(start, i - 1, [], []));
                start = i;
            }
            if (lm.Success)
                labels[lm.Groups[1].Value] = blocks.Count;
            if (ends)
            {
                blocks.Add(new Block(start, i, [], []));
                start = i + 1;
            }
        }
        if (start < lines.Length)
            blocks.Add(new Block(start, lines.Length - 1, [], []));
        for (int b = 0; b < blocks.Count; b++)
        {
            string last = lines[blocks[b].End];
            var bm = BranchRegex().Match(last);
            if (bm.Success && labels.TryGetValue(bm.Groups[1].Value, out int target))
                blocks[b].Succ.Add(target);
            bool unconditional = (bm.Success && !last.StartsWith('@')) || last.StartsWith("ret", StringComparison.Ordinal);
            if (!unconditional && b + 1 < blocks.Count)
                blocks[b].Succ.Add(b + 1);
        }
        for (int b = 0; b < blocks.Count; b++)
        {
            foreach (int s in blocks[b].Succ)
                blocks[s].Pred.Add(b);
        }
        return blocks;
    }

    /// <summary>The natural loop of the back edge latch -&gt; header: the header and every block that reaches the latch
    /// without passing through the header.</summary>
    private static HashSet<int> NaturalLoop(List<Block> blocks, int header, int latch)
    {
        var body = new HashSet<int> { header };
        var stack = new Stack<int>();
        stack.Push(latch);
        while (stack.Count > 0)
        {
            int x = stack.Pop();
            if (!body.Add(x))
                continue;
            foreach (int p in blocks[x].Pred)
                stack.Push(p);
        }
        return body;
    }

    [GeneratedRegex(@"\.target\s+(sm_\d+)")]
    private static partial Regex TargetRegex();

    [GeneratedRegex(@"\.shared\s+(?:\.align\s+\d+\s+)?\.b(\d+)\s+\S+\[(\d+)\]")]
    private static partial Regex SharedRegex();

    [GeneratedRegex(@"^(\$?[A-Za-z_][\w$]*):")]
    private static partial Regex LabelRegex();

    [GeneratedRegex(@"\bbra(?:\.uni)?\s+(\$?[A-Za-z_][\w$]*)\s*;")]
    private static partial Regex BranchRegex();
}
