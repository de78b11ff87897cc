using System.Globalization;

namespace CamEngine.Methods;

/// <summary>
/// Parameter values given as text for one method: each accessor returns the parsed value of its key, or the
/// current value when the key is absent, and throws <see cref="CamEngineException"/> naming the method, the key
/// and the accepted values when the text does not parse or is out of range.
/// </summary>
internal sealed class ParameterValues(string method, IReadOnlyDictionary<string, string> values)
{
    private string? Text(string key) => values.TryGetValue(key, out var v) ? v.Trim() : null;

    private CamEngineException Bad(string key, string what, string text) =>
        new($"{method}: parameter '{key}' must be {what}, got '{text}'");

    public int Int(string key, int current, int min)
    {
        if (Text(key) is not { } t)
            return current;
        if (!int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
            throw Bad(key, $"an integer >= {min}", t);
        return v;
    }

    public double Double(string key, double current, double min, bool inclusive = true)
    {
        if (Text(key) is not { } t)
            return current;
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v)
            || v < min || (!inclusive && v == min))
            throw Bad(key, double.IsNegativeInfinity(min)
                ? "a number"
                : $"a number {(inclusive ? ">=" : ">")} {min.ToString(CultureInfo.InvariantCulture)}", t);
        return v;
    }

    public float Float(string key, float current, float min, bool inclusive = true) =>
        (float)Double(key, current, min, inclusive);

    /// <summary>A number, or <c>auto</c> for null (the method's own default).</summary>
    public double? OptionalDouble(string key, double? current, double min, bool inclusive)
    {
        if (Text(key) is not { } t)
            return current;
        return string.Equals(t, "auto", StringComparison.OrdinalIgnoreCase) ? null : Double(key, 0, min, inclusive);
    }

    public TEnum Enum<TEnum>(string key, TEnum current) where TEnum : struct, Enum
    {
        if (Text(key) is not { } t)
            return current;
        if (!System.Enum.TryParse(t, ignoreCase: true, out TEnum v) || !System.Enum.IsDefined(v) || t.Any(char.IsDigit))
            throw Bad(key, "one of " + string.Join(", ", System.Enum.GetNames<TEnum>().Select(n => n.ToLowerInvariant())), t);
        return v;
    }

    /// <summary>The raw text of a key, or null when absent.</summary>
    public string? Raw(string key) => Text(key);
}
