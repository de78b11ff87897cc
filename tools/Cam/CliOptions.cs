using System.CommandLine;
using System.Globalization;

namespace CamEngine.Cli;

/// <summary>
/// Option and argument factories shared by the commands, and typed reads with range checks and one-line errors.
/// Values are declared as text and parsed here, so every bad value gets the same kind of message
/// (<c>--batch must be an integer from 1 to 4096, got 'x'</c>).
/// </summary>
internal static class CliOptions
{
    public static Option<string> Text(string name, string helpName, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, HelpName = helpName };

    public static Option<bool> Flag(string name, string description) =>
        new(name) { Description = description, Arity = ArgumentArity.Zero };

    public static Argument<string> Model() => new("MODEL") { Description = "the model file (.safetensors written by cam convert or cam train)" };

    public static Argument<string[]> Images(int minimum = 1) =>
        new("IMAGE") { Description = "image files, .npy tensors, folders or globs", Arity = minimum == 0 ? ArgumentArity.ZeroOrMore : ArgumentArity.OneOrMore };

    public static Option<string> Device() =>
        Text("--device", "D", "auto|cpu|ilgpu-cpu|cuda|opencl|reference (default auto, or CAMENGINE_DEVICE)");

    public static Option<string> Labels() =>
        Text("--labels", "FILE", "class labels, one per line (default: the labels stored in the model)");

    public static Option<bool> Quiet() => Flag("--quiet", "no progress line on stderr (it shows only when stderr is a console)");

    public static Option<bool> Overwrite() => Flag("--overwrite", "replace existing output files (otherwise an existing file stops the run before any work)");

    public static bool Has(this ParseResult r, Option option) => r.GetResult(option) is { Implicit: false };

    public static string? Get(this ParseResult r, Option<string> option) => r.GetValue(option);

    public static string Get(this ParseResult r, Option<string> option, string fallback) => r.GetValue(option) ?? fallback;

    public static int GetInt(this ParseResult r, Option<string> option, int fallback, int min, int max)
    {
        string? v = r.GetValue(option);
        if (v == null)
            return fallback;
        if (!int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            throw new UsageException($"{option.Name} must be an integer from {min} to {max}, got '{PrintableText.Escape(v)}'");
        return value;
    }

    public static double GetDouble(this ParseResult r, Option<string> option, double fallback, double min, double max)
    {
        string? v = r.GetValue(option);
        if (v == null)
            return fallback;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value >= min && value <= max))
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"{option.Name} must be a number from {min} to {max}, got '{PrintableText.Escape(v)}'"));
        return value;
    }

    /// <summary>
    /// A byte count written as a number with an optional binary unit: <c>1.5G</c>, <c>800M</c>, <c>512MiB</c>,
    /// <c>64K</c>, <c>2000000</c> (K, M, G, T and KiB..TiB are powers of 1024; a trailing B is allowed); null when the
    /// option is absent. Zero, negative, malformed or over 8 EiB: a usage error.
    /// </summary>
    public static long? GetBytes(this ParseResult r, Option<string> option)
    {
        string? v = r.GetValue(option);
        if (v == null)
            return null;
        return ParseBytes(v) ?? throw new UsageException(
            $"{option.Name} must be a positive size such as 1.5G, 800M or 2000000 (K, M, G, T: powers of 1024), got '{PrintableText.Escape(v)}'");
    }

    /// <summary>The bytes of <paramref name="text"/> (see <see cref="GetBytes"/>), or null when it is not a positive size.</summary>
    internal static long? ParseBytes(string text)
    {
        string t = text.Trim();
        int end = 0;
        while (end < t.Length && (char.IsAsciiDigit(t[end]) || t[end] == '.'))
            end++;
        if (end == 0 || !double.TryParse(t[..end], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            return null;
        string unit = t[end..].Trim().ToUpperInvariant();
        if (unit.EndsWith('B'))
            unit = unit[..^1];
        if (unit.EndsWith('I') && unit.Length == 2)
            unit = unit[..1];
        int power = unit switch { "" => 0, "K" => 1, "M" => 2, "G" => 3, "T" => 4, _ => -1 };
        if (power < 0)
            return null;
        double bytes = Math.Floor(number * Math.Pow(1024, power));
        return bytes >= 1 && bytes < 9.2e18 ? (long)bytes : null;
    }

    public static float[]? GetFloats(this ParseResult r, Option<string> option, int count)
    {
        string? v = r.GetValue(option);
        if (v == null)
            return null;
        var parts = v.Split(',', StringSplitOptions.TrimEntries);
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !float.IsFinite(values[i]))
                throw new UsageException($"{option.Name} must be {count} comma-separated numbers, got '{PrintableText.Escape(v)}'");
        }
        if (values.Length != count)
            throw new UsageException($"{option.Name} must be {count} comma-separated numbers, got '{PrintableText.Escape(v)}'");
        return values;
    }

    public static IReadOnlyList<string> List(string? v) =>
        v == null ? [] : v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>One of <paramref name="choices"/> (case ignored), or a usage error with the nearest choice.</summary>
    public static string Choice(string option, string value, params string[] choices)
    {
        string v = value.Trim().ToLowerInvariant();
        if (choices.Contains(v))
            return v;
        string? near = CamNames.Suggest(v, choices);
        throw new UsageException($"unknown {option.TrimStart('-')} '{PrintableText.Escape(value)}'"
                                 + (near != null ? $"; did you mean '{near}'?" : "") + $" (use {string.Join(", ", choices)})");
    }
}
