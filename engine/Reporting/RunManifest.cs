using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using CamEngine.IO;

namespace CamEngine.Reporting;

/// <summary>
/// What produced a folder of outputs, written beside them as <see cref="FileName"/> (indented JSON, snake_case
/// names): the model file and its SHA-256, the methods, layers, target, convention, fusion and seed, the device,
/// the software versions, per-method timings, the files written and the time. With it a result can be traced to
/// the exact model bytes and settings, and re-run.
/// </summary>
public sealed record RunManifest
{
    /// <summary>The manifest's file name in the output folder.</summary>
    public const string FileName = "manifest.json";

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>The command that wrote the outputs (e.g. explain).</summary>
    public string Command { get; init; } = "";

    /// <summary>The model file as given on the command line.</summary>
    public string ModelPath { get; init; } = "";

    /// <summary>SHA-256 of the model file's bytes, lower-case hex (<see cref="Sha256Of"/>).</summary>
    public string ModelSha256 { get; init; } = "";

    /// <summary>The methods run, in order.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>The layers explained (resolved output names); empty when no method works at a layer.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>The target as given (top1, a class, topK, softmax, similar:IMAGE, ...).</summary>
    public string Target { get; init; } = "";

    /// <summary>The convention (paper, pytorch-grad-cam or torchcam).</summary>
    public string Convention { get; init; } = "";

    /// <summary>How several layers were fused (mean, max or product).</summary>
    public string Fusion { get; init; } = "";

    /// <summary>The seed of every random draw.</summary>
    public int Seed { get; init; }

    /// <summary>The backend's name (cpu, ilgpu-cpu, cuda, ...).</summary>
    public string Device { get; init; } = "";

    /// <summary>The backend's description of the device.</summary>
    public string DeviceDescription { get; init; } = "";

    /// <summary>The CamEngine library version.</summary>
    public string CamEngineVersion { get; init; } = VersionOf(typeof(RunManifest).Assembly);

    /// <summary>The ILGPU library version.</summary>
    public string IlgpuVersion { get; init; } = VersionOf(typeof(ILGPU.Context).Assembly);

    /// <summary>The .NET runtime (e.g. ".NET 10.0.0").</summary>
    public string DotnetVersion { get; init; } = RuntimeInformation.FrameworkDescription;

    /// <summary>The operating system.</summary>
    public string Os { get; init; } = RuntimeInformation.OSDescription;

    /// <summary>Wall-clock milliseconds per method, summed over batches (each method's own forward pass
    /// included).</summary>
    public IReadOnlyDictionary<string, double> TimingsMs { get; init; } = new Dictionary<string, double>();

    /// <summary>Where the explain time went (per method: re-run rows by kind, batch sizes, wall time and the ideal time,
    /// rows x the run's best per-image pass time); null for commands that do not explain.</summary>
    public Methods.RunBreakdown? Breakdown { get; init; }

    /// <summary>Other settings of the run by option name (e.g. colormap, alpha), as text.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Every file the run wrote, relative to the manifest's folder ('/' separated), in writing order;
    /// the manifest itself is not listed.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>When the run finished, UTC.</summary>
    public DateTime CreatedUtc { get; init; } = DateTime.UtcNow;

    /// <summary>SHA-256 of the file at <paramref name="path"/>, lower-case hex, computed in managed code
    /// (<see cref="Sha256"/>: the platform's libssl aborted runs under an address-space limit).</summary>
    /// <exception cref="CamEngineException">The file cannot be read.</exception>
    public static string Sha256Of(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            return Convert.ToHexStringLower(Sha256.Hash(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CamEngineException($"cannot hash '{path}': {e.Message}", e);
        }
    }

    /// <summary>The informational version of <paramref name="assembly"/> without a source-revision suffix.</summary>
    public static string VersionOf(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
               ?? assembly.GetName().Version?.ToString()
               ?? "unknown";
    }

    /// <summary>The manifest as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, s_json);

    /// <summary>Writes the manifest to <paramref name="path"/> atomically.</summary>
    public void Write(string path)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(this, s_json);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>Largest manifest read back (a manifest lists settings and file names: kilobytes to a few megabytes).</summary>
    public const long MaxManifestBytes = 64L << 20;

    /// <summary>Reads a manifest written by <see cref="Write"/>; throws <see cref="CamEngineException"/> for a
    /// file that is not one.</summary>
    public static RunManifest Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<RunManifest>(BoundedReader.ReadAllBytes(path, MaxManifestBytes), s_json)
                   ?? throw new CamEngineException($"{path}: the manifest is null");
        }
        catch (JsonException e)
        {
            throw new CamEngineException($"{path}: not a CamEngine manifest ({e.Message})", e);
        }
    }

    /// <summary>The fields as ordered (name, text) pairs, for <see cref="ReportContent.Info"/>.</summary>
    public IReadOnlyList<(string Key, string Value)> ToInfo()
    {
        var info = new List<(string, string)>
        {
            ("model", ModelPath),
            ("model SHA-256", ModelSha256),
            ("methods", string.Join(", ", Methods)),
        };
        if (Layers.Count > 0)
            info.Add(("layers", string.Join(", ", Layers)));
        info.Add(("target", Target));
        info.Add(("convention", Convention));
        info.Add(("fusion", Fusion));
        info.Add(("seed", Seed.ToString(CultureInfo.InvariantCulture)));
        info.Add(("device", $"{Device} ({DeviceDescription})"));
        foreach (var (key, value) in Settings)
            info.Add((key, value));
        foreach (var (method, ms) in TimingsMs)
            info.Add(($"time {method}", string.Create(CultureInfo.InvariantCulture, $"{ms:F1} ms")));
        if (Breakdown is { } b)
            info.Add(("time / ideal", string.Create(CultureInfo.InvariantCulture,
                $"{b.WallMs:F0} ms / {b.IdealMs:F0} ms = {b.Ratio:F2} (ideal: re-run rows x best per-image pass time)")));
        info.Add(("versions", $"CamEngine {CamEngineVersion}, ILGPU {IlgpuVersion}, {DotnetVersion}"));
        info.Add(("OS", Os));
        info.Add(("created (UTC)", CreatedUtc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)));
        return info;
    }
}
