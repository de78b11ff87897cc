using System.Globalization;
using System.Text;

namespace CamEngine;

/// <summary>
/// Makes text safe to show on one terminal line: control characters (C0, DEL, C1), line and paragraph separators
/// and the bidirectional overrides become visible escapes (<c>\n</c>, <c>\t</c>, <c>\x1B</c>, <c>\u202E</c>), so a
/// file name, a decoder's message or a label from a model cannot break the line, ring the bell, move the cursor
/// or reorder what follows. Every <see cref="CamEngineException"/> message passes through here.
/// </summary>
public static class PrintableText
{
    /// <summary><paramref name="text"/> on one line with every non-printable character escaped; the same string
    /// when there is nothing to escape.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return text ?? "";
        int first = 0;
        while (first < text.Length && !NeedsEscape(text[first]))
            first++;
        if (first == text.Length)
            return text;
        var sb = new StringBuilder(text.Length + 16);
        sb.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!NeedsEscape(c))
            {
                sb.Append(c);
                continue;
            }
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                < '\u0100' => string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:X2}"),
                _ => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"),
            });
        }
        return sb.ToString();
    }

    /// <summary>True for characters that are not printable on a terminal line: C0 controls, DEL, C1 controls, the
    /// line and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates.</summary>
    public static bool NeedsEscape(char c) =>
        c < ' ' || c is >= '\u007F' and <= '\u009F' || c is '\u2028' or '\u2029' || c is >= '\u202A' and <= '\u202E'
        || c is >= '\u2066' and <= '\u2069' || c is '\u200E' or '\u200F' or '\u061C';
}
