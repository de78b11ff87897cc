using System.Globalization;

namespace CamEngine.Cli;

/// <summary>Bad command-line usage: printed as one line with a pointer to --help, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A small, strict argument parser: <c>--name value</c>, <c>--name=value</c>, <c>-o value</c> aliases, flags,
/// and positionals. Unknown options are errors (a typo must not silently change the result).
/// </summary>
internal sealed class Args
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];

    private static readonly AsyncLocal<IReadOnlyCollection<string>?> s_lastDeclared = new();

    private Args() { }

    /// <summary>The option and flag names (long forms, without --help) that the last <see cref="Parse"/> on this
    /// call flow accepted: what a command's help must document (checked by the CLI help tests).</summary>
    internal static IReadOnlyCollection<string>? LastDeclared => s_lastDeclared.Value;

    public IReadOnlyList<string> Positionals => _positionals;

    /// <param name="args">The arguments after the subcommand.</param>
    /// <param name="options">Options that take a value, by long name.</param>
    /// <param name="flags">Options without a value.</param>
    /// <param name="aliases">Short aliases, e.g. <c>-o</c> for <c>--out</c>.</param>
    public static Args Parse(
        IReadOnlyList<string> args, IEnumerable<string> options, IEnumerable<string> flags,
        IReadOnlyDictionary<string, string>? aliases = null)
    {
        var opt = new HashSet<string>(options, StringComparer.Ordinal);
        var flg = new HashSet<string>(flags, StringComparer.Ordinal) { "--help", "-h" };
        s_lastDeclared.Value = opt.Concat(flg).Where(n => n.StartsWith("--", StringComparison.Ordinal) && n != "--help").ToList();
        var r = new Args();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                r._positionals.AddRange(args.Skip(i + 1));
                break;
            }
            if (!a.StartsWith('-') || a == "-")
            {
                r._positionals.Add(a);
                continue;
            }
            string name = a;
            string? value = null;
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = a[..eq];
                value = a[(eq + 1)..];
            }
            if (aliases != null && aliases.TryGetValue(name, out var longName))
                name = longName;
            if (flg.Contains(name))
            {
                if (value != null)
                    throw new UsageException($"option {name} takes no value");
                r._values[name == "-h" ? "--help" : name] = null;
            }
            else if (opt.Contains(name))
            {
                if (value == null)
                {
                    if (i + 1 >= args.Count)
                        throw new UsageException($"option {name} needs a value");
                    value = args[++i];
                }
                if (r._values.ContainsKey(name))
                    throw new UsageException($"option {name} given twice");
                r._values[name] = value;
            }
            else
            {
                throw new UsageException($"unknown option '{name}'");
            }
        }
        return r;
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v : null;

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public int GetInt(string name, int fallback, int min, int max)
    {
        string? v = Get(name);
        if (v == null)
            return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int r) || r < min || r > max)
            throw new UsageException($"{name} must be an integer from {min} to {max}, got '{v}'");
        return r;
    }

    public float[]? GetFloats(string name, int count)
    {
        string? v = Get(name);
        if (v == null)
            return null;
        var parts = v.Split(',', StringSplitOptions.TrimEntries);
        var r = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out r[i]) || !float.IsFinite(r[i]))
                throw new UsageException($"{name} must be {count} comma-separated numbers, got '{v}'");
        }
        if (r.Length != count)
            throw new UsageException($"{name} must be {count} comma-separated numbers, got '{v}'");
        return r;
    }

    public static IReadOnlyList<string> List(string? v) =>
        v == null ? [] : v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}
