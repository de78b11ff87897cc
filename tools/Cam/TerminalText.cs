using System.Globalization;
using System.Text;

namespace CamEngine.Cli;

/// <summary>
/// Text from a model file or an input (labels, layer names, file names, library messages) made safe for a terminal:
/// control characters (escape sequences, carriage returns, NUL, C1 controls, bidi overrides) become visible
/// <c>\xNN</c> / <c>\u{NNNN}</c> escapes, and the result is one line.
/// </summary>
internal static class TerminalText
{
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return text ?? "";
        StringBuilder? b = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool unsafeChar = char.IsControl(c) || c is '\u2028' or '\u2029' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');
            if (!unsafeChar)
            {
                b?.Append(c);
                continue;
            }
            b ??= new StringBuilder(text, 0, i, text.Length + 16);
            b.Append(c <= 0xFF
                ? string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:X2}")
                : string.Create(CultureInfo.InvariantCulture, $"\\u{{{(int)c:X4}}}"));
        }
        return b?.ToString() ?? text;
    }
}
