using System.Buffers.Binary;

namespace CamEngine.Model;

/// <summary>Loading and saving: a safetensors file whose <c>__metadata__</c> carries the graph.</summary>
internal sealed partial class ModelFile
{
    /// <summary>Metadata key holding the model format version.</summary>
    public const string FormatKey = "engine.format";

    /// <summary>Metadata key holding the graph JSON (<see cref="ModelGraph.ToJson"/>).</summary>
    public const string GraphKey = "engine.graph";

    /// <summary>The only model format version this engine reads and writes.</summary>
    public const string FormatValue = "1";

    /// <summary>Largest model file accepted: the whole file is parsed from one span, so it must fit
    /// <see cref="Array.MaxLength"/> bytes (just under 2 GiB).</summary>
    public static long MaxFileBytes => Array.MaxLength;

    /// <summary>Loads and validates a model file.</summary>
    /// <exception cref="CamEngineException">The file does not exist or cannot be read.</exception>
    /// <exception cref="InvalidModelFileException">The file is corrupt, hostile or inconsistent; the
    /// message starts with the path.</exception>
    /// <exception cref="UnsupportedModelException">The graph uses an operator this engine lacks.</exception>
    public static ModelFile Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        int length;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16,
                FileOptions.SequentialScan);
            (bytes, length) = ReadBounded(fs, LengthHint(fs));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidModelFileException)
        {
            throw ReadError(path, e);
        }

        return FromFileBytes(bytes.AsSpan(0, length), path);
    }

    /// <summary>Reads a model file asynchronously, then parses and validates it (as <see cref="Load(string)"/>).</summary>
    /// <exception cref="CamEngineException">The file does not exist or cannot be read.</exception>
    /// <exception cref="InvalidModelFileException">The file is corrupt, hostile or inconsistent; the
    /// message starts with the path.</exception>
    /// <exception cref="UnsupportedModelException">The graph uses an operator this engine lacks.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<ModelFile> LoadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        int length;
        try
        {
            var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16,
                FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (fs.ConfigureAwait(false))
                (bytes, length) = await ReadBoundedAsync(fs, LengthHint(fs), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidModelFileException)
        {
            throw ReadError(path, e);
        }
        return FromFileBytes(bytes.AsSpan(0, length), path);
    }

    /// <summary>The error of a failed read of the model file at <paramref name="path"/>: a missing file, an I/O or
    /// permission failure, or a corrupt file (whose message then starts with the path).</summary>
    private static CamEngineException ReadError(string path, Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => new CamEngineException($"model file '{path}' does not exist", e),
        InvalidModelFileException => new InvalidModelFileException($"{path}: {e.Message}", e),
        _ => new CamEngineException($"cannot read model file '{path}': {e.Message}", e),
    };

    /// <summary>Reads a model from a stream asynchronously (at most <see cref="MaxFileBytes"/> bytes, to its end),
    /// then parses and validates it.</summary>
    /// <exception cref="InvalidModelFileException">The stream holds no valid model, or too many bytes.</exception>
    /// <exception cref="UnsupportedModelException">The graph uses an operator this engine lacks.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<ModelFile> LoadAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        long hint = LengthHint(stream);
        var (bytes, length) = await ReadBoundedAsync(stream, hint, cancellationToken).ConfigureAwait(false);
        return FromBytes(bytes.AsSpan(0, length));
    }

    /// <summary><see cref="FromBytes"/>, with <paramref name="path"/> in front of every parse error.</summary>
    private static ModelFile FromFileBytes(ReadOnlySpan<byte> file, string path)
    {
        try
        {
            return FromBytes(file);
        }
        catch (InvalidModelFileException e)
        {
            throw new InvalidModelFileException($"{path}: {e.Message}", e);
        }
        catch (UnsupportedModelException e)
        {
            throw new UnsupportedModelException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Reads a model from a stream (at most <see cref="MaxFileBytes"/> bytes, to its end) and validates it.</summary>
    /// <exception cref="InvalidModelFileException">The stream holds no valid model, or too many bytes.</exception>
    /// <exception cref="UnsupportedModelException">The graph uses an operator this engine lacks.</exception>
    public static ModelFile Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        long hint = LengthHint(stream);
        var (bytes, length) = ReadBounded(stream, hint);
        return FromBytes(bytes.AsSpan(0, length));
    }

    /// <summary>Parses and validates a model from the complete file contents.</summary>
    /// <exception cref="InvalidModelFileException">The bytes hold no valid model; the message names the problem.</exception>
    /// <exception cref="UnsupportedModelException">The graph uses an operator this engine lacks.</exception>
    public static ModelFile FromBytes(ReadOnlySpan<byte> file)
    {
        var contents = Safetensors.Read(file);
        var meta = contents.Metadata;
        if (!meta.TryGetValue(GraphKey, out var graphJson))
            throw new InvalidModelFileException(
                $"not a CamEngine model: the safetensors header has no {GraphKey} metadata; "
                + "convert the ONNX model with `cam convert`");
        if (!meta.TryGetValue(FormatKey, out var format))
            throw new InvalidModelFileException($"the safetensors header has {GraphKey} but no {FormatKey} metadata");
        if (format != FormatValue)
            throw new InvalidModelFileException(
                $"model format '{(format.Length <= 16 ? format : format[..16] + "...")}' is not supported "
                + $"(this engine reads format {FormatValue}); convert the model again with this version's `cam convert`");
        var graph = ModelGraph.FromJson(graphJson);
        var model = new ModelFile(graph, contents.Tensors);
        model.Validate();
        return model;
    }

    /// <summary>
    /// Validates, then writes the model to <paramref name="path"/> atomically: the bytes go to a temporary
    /// file in the same folder, which then replaces the target, so a failure never leaves a half-written model.
    /// </summary>
    /// <exception cref="CamEngineException">The folder does not exist or the file cannot be written.</exception>
    /// <exception cref="InvalidModelFileException">The model does not validate.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Validate();
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new CamEngineException($"'{path}' is not a file path");
        if (!Directory.Exists(dir))
            throw new CamEngineException($"cannot save model to '{path}': folder '{dir}' does not exist");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new CamEngineException($"cannot save model to '{path}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Validates, then writes the model in safetensors form to <paramref name="stream"/>.</summary>
    /// <exception cref="InvalidModelFileException">The model does not validate.</exception>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Validate();
        Write(stream);
    }

    private void Write(Stream stream)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [FormatKey] = FormatValue,
            [GraphKey] = Graph.ToJson(),
        };
        Safetensors.Write(stream, meta, Weights);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error matters more than a leftover temporary file.
        }
    }

    /// <summary>
    /// Reads a safetensors file from <paramref name="stream"/> in three bounded steps: the 8-byte header length, the
    /// header (at most <see cref="Safetensors.DefaultMaxHeaderBytes"/>), then exactly the data buffer the header
    /// declares plus one byte to detect trailing data. Nothing trusts the file's stated length, so <c>/dev/zero</c>
    /// (header length 0) stops after 8 bytes and an endless pipe after the declared data. Where a step finds the
    /// file malformed it returns what it read, and the parser names the problem.
    /// </summary>
    private static (byte[] Buffer, int Length) ReadBounded(Stream stream, long lengthHint)
    {
        var prefix = new byte[8];
        int got = stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false);
        if (got < 8)
            return (prefix, got);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > Safetensors.DefaultMaxHeaderBytes)
            return (prefix, 8);
        var buffer = new byte[8 + (int)n];
        prefix.CopyTo(buffer, 0);
        got = 8 + stream.ReadAtLeast(buffer.AsSpan(8), (int)n, throwOnEndOfStream: false);
        if (got < buffer.Length || Safetensors.DeclaredBufferBytes(buffer.AsSpan(8)) is not { } declared)
            return (buffer, got);
        long total = WithProbe(8 + (long)n, declared);
        int length = buffer.Length;
        Array.Resize(ref buffer, FirstBuffer(total, lengthHint, length));
        while (length < total)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(total, 2L * buffer.Length));
            int read = stream.Read(buffer, length, buffer.Length - length);
            if (read == 0)
                break;
            length += read;
        }
        return (buffer, length);
    }

    /// <summary>The asynchronous form of <see cref="ReadBounded"/>: the same steps and bounds.</summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBoundedAsync(Stream stream, long lengthHint, CancellationToken ct)
    {
        var prefix = new byte[8];
        int got = await stream.ReadAtLeastAsync(prefix, 8, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < 8)
            return (prefix, got);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > Safetensors.DefaultMaxHeaderBytes)
            return (prefix, 8);
        var buffer = new byte[8 + (int)n];
        prefix.CopyTo(buffer, 0);
        got = 8 + await stream.ReadAtLeastAsync(buffer.AsMemory(8), (int)n, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < buffer.Length || Safetensors.DeclaredBufferBytes(buffer.AsSpan(8)) is not { } declared)
            return (buffer, got);
        long total = WithProbe(8 + (long)n, declared);
        int length = buffer.Length;
        Array.Resize(ref buffer, FirstBuffer(total, lengthHint, length));
        while (length < total)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(total, 2L * buffer.Length));
            int read = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
            if (read == 0)
                break;
            length += read;
        }
        return (buffer, length);
    }

    /// <summary>The bytes a stream says are left, as a buffer-size hint only; 0 for devices and pipes.</summary>
    private static long LengthHint(Stream stream)
    {
        try
        {
            return stream.CanSeek ? Math.Max(0, stream.Length - stream.Position) : 0;
        }
        catch (Exception e) when (e is NotSupportedException or IOException)
        {
            return 0;
        }
    }

    /// <summary>Bytes to read: the header and the declared data, plus one probe byte that shows trailing data.</summary>
    private static long WithProbe(long headerEnd, ulong declared)
    {
        if (declared > (ulong)(MaxFileBytes - headerEnd))
            throw new InvalidModelFileException(
                $"the safetensors header declares {declared} bytes of tensor data; with the header that is more than "
                + $"the {MaxFileBytes} bytes this engine reads");
        return Math.Min(headerEnd + (long)declared + 1, MaxFileBytes);
    }

    /// <summary>The first data buffer: the file's stated length where it is known (a regular file), else 1 MiB,
    /// growing by doubling as bytes arrive, so a pipe that claims much and sends little costs little.</summary>
    private static int FirstBuffer(long total, long lengthHint, int have) =>
        (int)Math.Max(have, Math.Min(total, Math.Max(lengthHint + 1, 1L << 20)));
}
