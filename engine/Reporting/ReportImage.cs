using CamEngine.Imaging;

namespace CamEngine.Reporting;

/// <summary>One explained image of a <see cref="ReportContent"/>: its input picture and each method's
/// overlay, shown side by side under its name.</summary>
public sealed class ReportImage
{
    /// <summary>The image's name (e.g. the file stem).</summary>
    public required string Name { get; init; }

    /// <summary>The input as the model saw it (the crop); null for inputs with no picture (a .npy tensor).</summary>
    public RgbImage? Input { get; init; }

    /// <summary>(method name, overlay) pairs, in display order.</summary>
    public IReadOnlyList<(string Method, RgbImage Image)> Overlays { get; init; } = [];
}
