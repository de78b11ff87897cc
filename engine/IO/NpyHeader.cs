using System.Globalization;

namespace CamEngine.IO;

/// <summary>Element types the .npy reader converts; <see cref="Unicode"/> is NumPy's fixed-width UTF-32 string.</summary>
internal enum NpyKind
{
    Float16,
    Float32,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Bool,
    Unicode,
}

/// <summary>
/// The parsed header dictionary of a .npy file, e.g. <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), }</c>.
/// The parser accepts exactly the Python literal subset NumPy writes: a dict with the three keys (any order, each once),
/// single- or double-quoted strings without escapes, <c>True</c>/<c>False</c>, and a tuple of non-negative decimal
/// integers (<c>()</c>, <c>(3,)</c>, <c>(2, 3)</c>). Anything else is an error, never guessed at.
/// </summary>
internal sealed class NpyHeader
{
    private NpyHeader(string descr, NpyKind kind, int itemSize, int[] shape, long count)
    {
        Descr = descr;
        Kind = kind;
        ItemSize = itemSize;
        Shape = shape;
        Count = count;
    }

    /// <summary>The dtype string as written, e.g. <c>&lt;f4</c>.</summary>
    public string Descr { get; }

    public NpyKind Kind { get; }

    /// <summary>Bytes per element (4 * characters for unicode).</summary>
    public int ItemSize { get; }

    public int[] Shape { get; }

    /// <summary>Number of elements, checked against <see cref="Tensors.TensorShape.MaxElements"/>.</summary>
    public long Count { get; }

    /// <summary>Bytes of array data that follow the header.</summary>
    public long DataBytes => Count * ItemSize;

    /// <summary>Parses the header text; <paramref name="name"/> names the file in error messages.</summary>
    public static NpyHeader Parse(string text, string name)
    {
        var p = new Parser(text, name);
        return p.ParseDict();
    }

    private static (NpyKind Kind, int Size) ParseDescr(string descr, string name)
    {
        if (descr.Length < 2)
            throw Bad(name, $"unsupported dtype '{descr}'");
        char order = descr[0];
        if (order == '>')
            throw Bad(name, $"big-endian dtype '{descr}' is not supported (expected little-endian, e.g. '<f4')");
        if (order != '<' && order != '|')
            throw Bad(name, $"dtype '{descr}' has no explicit little-endian or not-applicable byte order");
        string code = descr[1..];
        switch (code)
        {
            case "f2": return (NpyKind.Float16, 2);
            case "f4": return (NpyKind.Float32, 4);
            case "f8": return (NpyKind.Float64, 8);
            case "i1": return (NpyKind.Int8, 1);
            case "i2": return (NpyKind.Int16, 2);
            case "i4": return (NpyKind.Int32, 4);
            case "i8": return (NpyKind.Int64, 8);
            case "u1": return (NpyKind.UInt8, 1);
            case "u2": return (NpyKind.UInt16, 2);
            case "u4": return (NpyKind.UInt32, 4);
            case "u8": return (NpyKind.UInt64, 8);
            case "b1": return (NpyKind.Bool, 1);
        }
        if (code.Length >= 2 && code[0] == 'U' && code.Skip(1).All(char.IsAsciiDigit))
        {
            if (!int.TryParse(code.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out int chars)
                || chars > int.MaxValue / 4)
                throw Bad(name, $"string dtype '{descr}' is too wide");
            return (NpyKind.Unicode, chars * 4);
        }
        throw Bad(name, $"unsupported dtype '{descr}' (supported: float16/32/64, (u)int8-64, bool, unicode)");
    }

    private static InvalidInputException Bad(string name, string problem) => new($"{name}: invalid .npy header: {problem}");

    private sealed class Parser(string s, string name)
    {
        private int _i;

        public NpyHeader ParseDict()
        {
            SkipSpace();
            Expect('{');
            string? descr = null;
            bool? fortran = null;
            int[]? shape = null;
            while (true)
            {
                SkipSpace();
                if (Peek() == '}')
                {
                    _i++;
                    break;
                }
                string key = ParseString();
                SkipSpace();
                Expect(':');
                SkipSpace();
                switch (key)
                {
                    case "descr":
                        if (descr != null)
                            throw Bad(name, "duplicate key 'descr'");
                        if (Peek() == '[')
                            throw Bad(name, "structured dtypes are not supported");
                        descr = ParseString();
                        break;
                    case "fortran_order":
                        if (fortran != null)
                            throw Bad(name, "duplicate key 'fortran_order'");
                        fortran = ParseBool();
                        break;
                    case "shape":
                        if (shape != null)
                            throw Bad(name, "duplicate key 'shape'");
                        shape = ParseShape();
                        break;
                    default:
                        throw Bad(name, $"unexpected key '{key}'");
                }
                SkipSpace();
                char c = Peek();
                if (c == ',')
                    _i++;
                else if (c != '}')
                    throw Bad(name, $"expected ',' or '}}' at offset {_i}");
            }
            // NumPy pads the dict with spaces and ends it with a newline; nothing else may follow.
            SkipSpace();
            if (_i != s.Length)
                throw Bad(name, $"unexpected text after the dictionary at offset {_i}");
            if (descr == null || fortran == null || shape == null)
                throw Bad(name, "the dictionary must have the keys 'descr', 'fortran_order' and 'shape'");
            if (fortran.Value)
                throw Bad(name, "fortran_order True (column-major data) is not supported");
            var (kind, size) = ParseDescr(descr, name);
            long count;
            try
            {
                count = Tensors.TensorShape.CheckedLength(shape);
            }
            catch (ArgumentException e)
            {
                throw Bad(name, e.Message);
            }
            return new NpyHeader(descr, kind, size, shape, count);
        }

        private char Peek() => _i < s.Length ? s[_i] : '\0';

        private void SkipSpace()
        {
            while (_i < s.Length && (s[_i] == ' ' || s[_i] == '\n' || s[_i] == '\t' || s[_i] == '\r'))
                _i++;
        }

        private void Expect(char c)
        {
            if (Peek() != c)
                throw Bad(name, $"expected '{c}' at offset {_i}");
            _i++;
        }

        private string ParseString()
        {
            char q = Peek();
            if (q != '\'' && q != '"')
                throw Bad(name, $"expected a quoted string at offset {_i}");
            int start = ++_i;
            while (_i < s.Length && s[_i] != q)
            {
                if (s[_i] == '\\' || s[_i] == '\n')
                    throw Bad(name, $"unsupported character in string at offset {_i}");
                _i++;
            }
            if (_i >= s.Length)
                throw Bad(name, "unterminated string");
            return s[start.._i++];
        }

        private bool ParseBool()
        {
            if (string.CompareOrdinal(s, _i, "True", 0, 4) == 0)
            {
                _i += 4;
                return true;
            }
            if (string.CompareOrdinal(s, _i, "False", 0, 5) == 0)
            {
                _i += 5;
                return false;
            }
            throw Bad(name, $"expected True or False at offset {_i}");
        }

        private int[] ParseShape()
        {
            Expect('(');
            var dims = new List<int>();
            bool trailingComma = false;
            while (true)
            {
                SkipSpace();
                if (Peek() == ')')
                {
                    _i++;
                    break;
                }
                if (dims.Count > 0 && !trailingComma)
                    throw Bad(name, $"expected ',' or ')' in shape at offset {_i}");
                dims.Add(ParseDim());
                trailingComma = false;
                SkipSpace();
                if (Peek() == ',')
                {
                    _i++;
                    trailingComma = true;
                }
                if (dims.Count > 32)
                    throw Bad(name, "shape has more than 32 dimensions");
            }
            // Python reads "(3)" as the integer 3, not a tuple; NumPy writes "(3,)".
            if (dims.Count == 1 && !trailingComma)
                throw Bad(name, "shape '(n)' is not a tuple; expected '(n,)'");
            return [.. dims];
        }

        private int ParseDim()
        {
            int start = _i;
            long v = 0;
            while (_i < s.Length && char.IsAsciiDigit(s[_i]))
            {
                v = v * 10 + (s[_i] - '0');
                if (v > int.MaxValue)
                    throw Bad(name, $"shape dimension at offset {start} exceeds {int.MaxValue}");
                _i++;
            }
            if (_i == start)
                throw Bad(name, $"expected a non-negative integer in shape at offset {_i}");
            return (int)v;
        }
    }
}
