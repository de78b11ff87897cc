using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using CamEngine.Tensors;

namespace CamEngine.Model;

/// <summary>
/// Reads and writes the safetensors format (huggingface/safetensors, README "Format"): an 8-byte
/// little-endian header length N, N bytes of UTF-8 JSON, then one contiguous byte buffer holding every
/// tensor, row-major and little-endian. The reader treats the file as hostile and applies the checks of
/// the reference validator (<c>safetensors/src/tensor.rs</c>): header cap, checked arithmetic, dtype
/// whitelist, sizes that match shapes, tensors contiguous from offset 0 with no gap or overlap, and a
/// buffer that ends exactly at the end of the file.
/// </summary>
internal static class Safetensors
{
    /// <summary>Default cap on the JSON header (the reference allows 100 MB; a CNN's header is a few KB
    /// plus its graph).</summary>
    public const long DefaultMaxHeaderBytes = 16L << 20;

    /// <summary>Nesting limit of the header JSON: root object, tensor entry, shape array.</summary>
    public const int MaxHeaderDepth = 8;

    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Parses a whole safetensors file. F16 and BF16 tensors are widened to float32.
    /// </summary>
    /// <param name="file">The complete file contents.</param>
    /// <param name="maxHeaderBytes">Largest header length accepted.</param>
    /// <exception cref="InvalidModelFileException">The file breaks any rule; the message names it.</exception>
    public static SafetensorsContents Read(ReadOnlySpan<byte> file, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        if (file.Length < 8)
            throw new InvalidModelFileException(
                $"safetensors file is {file.Length} bytes; it needs at least 8 for the header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n > (ulong)Math.Max(0, maxHeaderBytes))
            throw new InvalidModelFileException(
                $"safetensors header length {n} exceeds the limit of {maxHeaderBytes} bytes");
        // n <= maxHeaderBytes (a long), so 8 + n cannot overflow a ulong; keep it checked anyway.
        ulong headerEnd = checked(8UL + n);
        if (headerEnd > (ulong)file.Length)
            throw new InvalidModelFileException(
                $"safetensors header length {n} runs past the end of the file ({file.Length} bytes)");
        var header = file.Slice(8, (int)n);
        var buffer = file[(int)headerEnd..];

        if (header.IsEmpty || header[0] != (byte)'{')
            throw new InvalidModelFileException("safetensors header does not begin with '{'");
        if (!Utf8.IsValid(header))
            throw new InvalidModelFileException("safetensors header is not valid UTF-8");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions
            {
                MaxDepth = MaxHeaderDepth,
                AllowDuplicateProperties = false,
            });
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // The duplicate-key check decodes property names and throws InvalidOperationException on an
            // escaped lone surrogate ("\udc00").
            throw new InvalidModelFileException($"safetensors header is not valid JSON: {OneLine(e.Message)}", e);
        }

        using (doc)
        {
            try
            {
                var (metadata, entries) = ParseHeader(doc.RootElement);
                CheckLayout(entries, buffer.Length);
                var tensors = new Dictionary<string, HostTensor>(entries.Count, StringComparer.Ordinal);
                foreach (var e in entries)
                    tensors.Add(e.Name, Decode(e, buffer));
                return new SafetensorsContents(metadata, tensors);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException
                                          or OverflowException or KeyNotFoundException)
            {
                // JsonElement throws InvalidOperationException on strings with invalid escapes (lone
                // surrogates); the rest are safety nets behind the explicit checks.
                throw new InvalidModelFileException($"safetensors header is invalid: {OneLine(e.Message)}", e);
            }
        }
    }

    /// <summary>
    /// The data buffer length a header declares: the largest <c>data_offsets</c> end of its tensors (0 with no
    /// tensors), so a reader can stop at the end of the declared data instead of reading a stream to its end.
    /// Null when the header is not JSON of the expected shape; <see cref="Read"/> then names the problem.
    /// </summary>
    public static ulong? DeclaredBufferBytes(ReadOnlySpan<byte> header)
    {
        if (header.IsEmpty || header[0] != (byte)'{' || !Utf8.IsValid(header))
            return null;
        try
        {
            using var doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = MaxHeaderDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return null;
            ulong end = 0;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == MetadataKey)
                    continue;
                if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("data_offsets", out var offsets)
                    || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
                    || !offsets[1].TryGetUInt64(out ulong e))
                    return null;
                end = Math.Max(end, e);
            }
            return end;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes a safetensors file: float32 little-endian, tensors in ordinal name order, the header padded
    /// with spaces to a multiple of 8 bytes so the buffer stays aligned. Output is byte-for-byte
    /// deterministic for equal inputs.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor name is empty or <c>__metadata__</c>, or the header
    /// would exceed <see cref="DefaultMaxHeaderBytes"/> (the file could not be read back).</exception>
    public static void Write(Stream stream, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyDictionary<string, HostTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);

        var names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions
               {
                   // The header is never embedded in HTML; keep the graph JSON readable with `head -c`.
                   Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
               }))
        {
            w.WriteStartObject();
            if (metadata.Count > 0)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var key in metadata.Keys.Order(StringComparer.Ordinal))
                    w.WriteString(key, metadata[key]);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                if (name.Length == 0 || name == MetadataKey)
                    throw new ArgumentException($"'{name}' cannot be a tensor name", nameof(tensors));
                var t = tensors[name];
                long bytes = 4L * t.Length;
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (int d in t.Shape)
                    w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        while (json.Length % 8 != 0)
            json.WriteByte((byte)' ');
        if (json.Length > DefaultMaxHeaderBytes)
            throw new ArgumentException(
                $"the header would be {json.Length} bytes, more than the {DefaultMaxHeaderBytes} this reader accepts",
                nameof(metadata));

        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)json.Length);
        stream.Write(len);
        stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
        foreach (var name in names)
            WriteFloats(stream, tensors[name].Data);
    }

    private static void WriteFloats(Stream stream, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }
        var chunk = new byte[4096];
        for (int i = 0; i < data.Length;)
        {
            int count = Math.Min(chunk.Length / 4, data.Length - i);
            for (int j = 0; j < count; j++)
                BinaryPrimitives.WriteSingleLittleEndian(chunk.AsSpan(4 * j), data[i + j]);
            stream.Write(chunk, 0, 4 * count);
            i += count;
        }
    }

    private enum DType
    {
        F32,
        F16,
        BF16,
    }

    private sealed record Entry(string Name, DType DType, int[] Shape, int Count, ulong Begin, ulong End);

    private static (Dictionary<string, string> Metadata, List<Entry> Entries) ParseHeader(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException("safetensors header must be a JSON object");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        foreach (var prop in root.EnumerateObject())
        {
            if (prop.Name == MetadataKey)
            {
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    throw new InvalidModelFileException("safetensors __metadata__ must be an object");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new InvalidModelFileException(
                            $"safetensors __metadata__ value '{Show(m.Name)}' must be a string, got {m.Value.ValueKind}");
                    metadata.Add(m.Name, m.Value.GetString()!);
                }
                continue;
            }
            entries.Add(ParseEntry(prop.Name, prop.Value));
        }
        return (metadata, entries);
    }

    private static Entry ParseEntry(string name, JsonElement e)
    {
        if (name.Length == 0)
            throw new InvalidModelFileException("safetensors tensor has an empty name");
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': entry must be an object");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": dtypeEl = p.Value; break;
                case "shape": shapeEl = p.Value; break;
                case "data_offsets": offsetsEl = p.Value; break;
                default:
                    throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': unexpected field '{Show(p.Name)}'");
            }
        }
        if (dtypeEl is not { } dtypeV || shapeEl is not { } shapeV || offsetsEl is not { } offV)
            throw new InvalidModelFileException(
                $"safetensors tensor '{Show(name)}': needs exactly the fields dtype, shape and data_offsets");

        if (dtypeV.ValueKind != JsonValueKind.String)
            throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': dtype must be a string");
        string dtypeName = dtypeV.GetString()!;
        DType dtype = dtypeName switch
        {
            "F32" => DType.F32,
            "F16" => DType.F16,
            "BF16" => DType.BF16,
            _ => throw new InvalidModelFileException(
                $"safetensors tensor '{Show(name)}': dtype '{Show(dtypeName)}' is not supported (F32, F16 or BF16)"),
        };

        if (shapeV.ValueKind != JsonValueKind.Array)
            throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': shape must be an array");
        var shape = new int[shapeV.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in shapeV.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidModelFileException(
                    $"safetensors tensor '{Show(name)}': shape dimension {i} must be a non-negative integer");
            if (dim > TensorShape.MaxElements)
                throw new InvalidModelFileException(
                    $"safetensors tensor '{Show(name)}': shape dimension {i} ({dim}) is too large");
            shape[i++] = (int)dim;
            // Both factors are <= int.MaxValue, so the product fits a long before the cap is checked.
            count *= dim;
            if (count > TensorShape.MaxElements)
                throw new InvalidModelFileException(
                    $"safetensors tensor '{Show(name)}': shape has more than {TensorShape.MaxElements} elements");
        }

        if (offV.ValueKind != JsonValueKind.Array || offV.GetArrayLength() != 2)
            throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': data_offsets must be [begin, end]");
        if (offV[0].ValueKind != JsonValueKind.Number || !offV[0].TryGetUInt64(out ulong begin)
            || offV[1].ValueKind != JsonValueKind.Number || !offV[1].TryGetUInt64(out ulong end))
            throw new InvalidModelFileException(
                $"safetensors tensor '{Show(name)}': data_offsets must be non-negative integers");
        if (end < begin)
            throw new InvalidModelFileException($"safetensors tensor '{Show(name)}': data_offsets end {end} is before begin {begin}");
        ulong bytes = checked((ulong)count * (ulong)(dtype == DType.F32 ? 4 : 2));
        if (end - begin != bytes)
            throw new InvalidModelFileException(
                $"safetensors tensor '{Show(name)}': data_offsets span {end - begin} bytes but {dtypeName} {TensorShape.Format(shape)} needs {bytes}");
        return new Entry(name, dtype, shape, (int)count, begin, end);
    }

    /// <summary>Tensors sorted by offset must tile the buffer exactly: start at 0, no gap, no overlap,
    /// and end where the file ends.</summary>
    private static void CheckLayout(List<Entry> entries, int bufferLength)
    {
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        ulong cursor = 0;
        foreach (var e in entries)
        {
            if (e.Begin != cursor)
            {
                string what = e.Begin > cursor ? "leaves a gap before it" : "overlaps the previous tensor";
                throw new InvalidModelFileException(
                    $"safetensors tensor '{Show(e.Name)}': data_offsets [{e.Begin}, {e.End}] {what} (expected begin {cursor})");
            }
            if (e.End > (ulong)bufferLength)
                throw new InvalidModelFileException(
                    $"safetensors tensor '{Show(e.Name)}': data_offsets end {e.End} is past the data buffer ({bufferLength} bytes)");
            cursor = e.End;
        }
        if (cursor != (ulong)bufferLength)
            throw new InvalidModelFileException(
                $"safetensors data buffer is {bufferLength} bytes but the tensors cover {cursor}; the file has trailing bytes");
    }

    private static HostTensor Decode(Entry e, ReadOnlySpan<byte> buffer)
    {
        // CheckLayout proved End <= buffer length (an int), so these casts are exact.
        var src = buffer[(int)e.Begin..(int)e.End];
        var data = new float[e.Count];
        switch (e.DType)
        {
            case DType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(src).CopyTo(data);
                }
                else
                {
                    for (int i = 0; i < data.Length; i++)
                        data[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                }
                break;
            case DType.F16:
                for (int i = 0; i < data.Length; i++)
                    data[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case DType.BF16:
                // bfloat16 is the top half of a float32: widen by shifting the bits into place.
                for (int i = 0; i < data.Length; i++)
                    data[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
        }
        return new HostTensor(e.Shape, data);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>A name from the file made safe for a one-line message: clipped, control characters escaped.</summary>
    private static string Show(string s)
    {
        var clipped = s.Length <= 80 ? s : s[..80] + "...";
        return string.Concat(clipped.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
