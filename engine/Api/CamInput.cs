using CamEngine.Imaging;

namespace CamEngine;

/// <summary>
/// One image read and preprocessed for a model by <see cref="CamModel.LoadInputs(string)"/>: load a few at a time and
/// pass them to <see cref="CamModel.Explain(IReadOnlyList{CamInput}, IReadOnlyList{Methods.CamMethod}, Methods.ExplainOptions?, IDictionary{string, double}?, Methods.PassLedger?)"/>,
/// so that a folder of any size runs in bounded memory and each image is decoded once however many methods run.
/// </summary>
public sealed class CamInput
{
    internal CamInput(InputImage image, string? source)
    {
        Image = image;
        Source = source;
    }

    /// <summary>The file's name without its extension; for an (N, C, H, W) .npy file, <c>NAME_i</c> per image.</summary>
    public string Name => Image.Stem;

    /// <summary>The file it was read from; null for pictures and tensors passed in memory.</summary>
    public string? Source { get; }

    /// <summary>The picture maps are drawn over: the part of the photo the model sees, at the photo's resolution (up
    /// to 1024 pixels a side); the denormalized tensor for a .npy input; null when the input has no RGB or grey form.</summary>
    public RgbImage? Picture => Image.Display;

    /// <summary>The whole photo (EXIF orientation applied) that <see cref="Picture"/> is the model's crop of; null for
    /// inputs that are not photos. Overlays in the full view are drawn over it.</summary>
    public RgbImage? Photo => Image.Photo?.Photo;

    internal InputImage Image { get; }
}
