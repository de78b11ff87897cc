using System.Globalization;

namespace CamEngine.Metrics;

/// <summary>
/// Ground-truth boxes from a CSV file, one box per line: <c>image,x0,y0,x1,y1</c>. <c>image</c> is the image's file
/// name (<c>cat.png</c>) or stem (<c>cat</c>); the coordinates are pixels of the model input (the map), columns x
/// and rows y, both ends included (<see cref="PixelBox"/>). Several lines for one image make a union. Blank lines and
/// lines starting with <c>#</c> are skipped, and so is a first line whose coordinates are not numbers (a header such
/// as <c>image,x0,y0,x1,y1</c>). Numbers use the invariant culture (a dot for decimals). A malformed line is a
/// <see cref="InvalidInputException"/> naming the file and line.
/// </summary>
public static class BoxFile
{
    /// <summary>Reads the boxes of <paramref name="path"/> (UTF-8, at most <see cref="IO.BoundedReader.DefaultTextBytes"/>
    /// bytes, counted as read), keyed by the image column as written.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable, too long, not UTF-8, or a line is
    /// malformed.</exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<PixelBox>> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StringReader(IO.BoundedReader.ReadAllText(path));
        return Parse(reader, path);
    }

    /// <summary>Parses box lines from <paramref name="reader"/>; <paramref name="name"/> names the source in errors.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<PixelBox>> Parse(TextReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var boxes = new Dictionary<string, List<PixelBox>>(StringComparer.Ordinal);
        int lineNumber = 0;
        bool first = true;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            string text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
                continue;
            var fields = text.Split(',', StringSplitOptions.TrimEntries);
            bool header = first;
            first = false;
            if (fields.Length != 5)
            {
                if (header && !fields.Skip(1).Any(IsNumber))
                    continue;
                throw new InvalidInputException(
                    $"{name}:{lineNumber}: expected 5 fields image,x0,y0,x1,y1, got {fields.Length}: '{text}'");
            }
            var v = new double[4];
            bool numbers = true;
            for (int k = 0; k < 4; k++)
                numbers &= double.TryParse(fields[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]) && double.IsFinite(v[k]);
            if (!numbers)
            {
                if (header && !fields.Skip(1).Any(IsNumber))
                    continue;
                throw new InvalidInputException($"{name}:{lineNumber}: the coordinates must be numbers, got '{text}'");
            }
            if (fields[0].Length == 0)
                throw new InvalidInputException($"{name}:{lineNumber}: the image name is empty");
            if (v[0] > v[2] || v[1] > v[3])
                throw new InvalidInputException($"{name}:{lineNumber}: the box needs x0 <= x1 and y0 <= y1, got '{text}'");
            if (!boxes.TryGetValue(fields[0], out var list))
                boxes[fields[0]] = list = [];
            list.Add(new PixelBox(v[0], v[1], v[2], v[3]));
        }
        return boxes.ToDictionary(p => p.Key, p => (IReadOnlyList<PixelBox>)p.Value, StringComparer.Ordinal);
    }

    /// <summary>The boxes of an image given its file name (or path) and stem: the entry under the file name, else
    /// under the stem; null when neither is present.</summary>
    public static IReadOnlyList<PixelBox>? Find(
        IReadOnlyDictionary<string, IReadOnlyList<PixelBox>> boxes, string fileName, string stem)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        return boxes.TryGetValue(Path.GetFileName(fileName), out var byName) ? byName
            : boxes.TryGetValue(stem, out var byStem) ? byStem : null;
    }

    private static bool IsNumber(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
}
