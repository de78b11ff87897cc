using System.Buffers.Binary;
using NUnit.Framework;

namespace CamEngine.Tests.Robustness;

/// <summary>
/// Seeded mutation fuzzing: each case mutates a valid file (bit flips, truncation, a length field overwritten
/// with a boundary value, a duplicated chunk, two swapped chunks, random bytes) and runs a parser on it under a
/// per-case time limit. A case passes when the parser returns or throws the parser's typed input error (one of the
/// given <see cref="CamEngineException"/> types) with a one-line printable message; any other exception, a
/// message with control bytes, or running past the limit fails the test with the case number and mutation.
/// CI runs <see cref="DefaultCases"/> cases per parser (the seeds are fixed, so every run tries the same
/// mutants); set CAMENGINE_FUZZ_CASES for more.
/// </summary>
public static class Fuzz
{
    public const int DefaultCases = 2000;

    public static int Cases =>
        int.TryParse(Environment.GetEnvironmentVariable("CAMENGINE_FUZZ_CASES"), out int n) && n > 0 ? n : DefaultCases;

    private static readonly uint[] s_boundaries = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0];

    /// <summary>One mutation of <paramref name="valid"/>; <paramref name="hot"/> bytes at the start (a header)
    /// receive half of the mutations.</summary>
    public static (byte[] Bytes, string What) Mutate(byte[] valid, Random rng, int hot)
    {
        var b = (byte[])valid.Clone();
        int Offset() => hot > 0 && rng.Next(2) == 0 ? rng.Next(Math.Min(hot, b.Length)) : rng.Next(b.Length);
        switch (rng.Next(6))
        {
            case 0:
            {
                int flips = 1 + rng.Next(8);
                for (int i = 0; i < flips; i++)
                    b[Offset()] ^= (byte)(1 << rng.Next(8));
                return (b, $"{flips} bit flips");
            }
            case 1:
            {
                int len = rng.Next(b.Length);
                return (b[..len], $"truncated to {len}");
            }
            case 2:
            {
                int at = Math.Min(Offset(), b.Length - 8);
                uint v = s_boundaries[rng.Next(s_boundaries.Length)];
                if (rng.Next(2) == 0)
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
                else
                    BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), (ulong)v << rng.Next(33));
                return (b, $"length field at {at} set from {v}");
            }
            case 3:
            {
                int start = Offset(), len = 1 + rng.Next(Math.Min(64, b.Length - start));
                int at = Offset();
                var r = b[..at].Concat(b.AsSpan(start, len).ToArray()).Concat(b[at..]).ToArray();
                return (r, $"chunk {start}+{len} duplicated at {at}");
            }
            case 4:
            {
                int len = 1 + rng.Next(Math.Max(1, Math.Min(32, b.Length / 4)));
                int p = rng.Next(b.Length - len), q = rng.Next(b.Length - len);
                var tmp = b.AsSpan(p, len).ToArray();
                b.AsSpan(q, len).CopyTo(b.AsSpan(p, len));
                tmp.CopyTo(b.AsSpan(q, len));
                return (b, $"chunks {p} and {q} (+{len}) swapped");
            }
            default:
            {
                int n = 1 + rng.Next(16), at = Offset();
                for (int i = 0; i < n && at + i < b.Length; i++)
                    b[at + i] = (byte)rng.Next(256);
                return (b, $"{n} random bytes at {at}");
            }
        }
    }

    /// <summary>Runs <paramref name="cases"/> (default <see cref="Cases"/>) mutations through <paramref name="parse"/>;
    /// a refusal must be one of <paramref name="typed"/> (default: any <see cref="CamEngineException"/>). Returns how
    /// many were accepted.</summary>
    public static int Run(string parser, byte[] valid, Action<byte[]> parse, int seed, int hot = 0, double secondsPerCase = 10,
        Type[]? typed = null, int? cases = null)
    {
        var rng = new Random(seed);
        int accepted = 0;
        int total = cases ?? Cases;
        typed ??= [typeof(CamEngineException)];
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < total; i++)
        {
            var (bytes, what) = Mutate(valid, rng, hot);
            var task = Task.Run(() => parse(bytes));
            bool finished;
            try
            {
                finished = task.Wait(TimeSpan.FromSeconds(secondsPerCase));
            }
            catch (AggregateException e) when (e.InnerException is CamEngineException refused)
            {
                if (!typed.Any(t => t.IsInstanceOfType(refused)))
                    Assert.Fail($"{parser} case {i} ({what}): {refused.GetType().Name} is not the parser's typed error "
                                + $"({string.Join(" or ", typed.Select(t => t.Name))}): {refused.Message}");
                if (refused.Message.Length == 0 || refused.Message.Any(PrintableText.NeedsEscape))
                    Assert.Fail($"{parser} case {i} ({what}): the message is not one printable line: {PrintableText.Escape(refused.Message)}");
                continue;
            }
            catch (AggregateException e)
            {
                var inner = e.InnerException!;
                Assert.Fail($"{parser} case {i} ({what}): {inner.GetType().Name}: {inner.Message}\n{inner.StackTrace}");
                throw;
            }
            if (!finished)
                Assert.Fail($"{parser} case {i} ({what}) ran past {secondsPerCase} s");
            accepted++;
        }
        TestContext.Out.WriteLine(
            $"{parser}: {total} cases, {accepted} accepted, {total - accepted} refused with a typed error, {watch.Elapsed.TotalSeconds:0.0} s");
        return accepted;
    }
}
