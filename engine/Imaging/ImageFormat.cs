namespace CamEngine.Imaging;

/// <summary>Encoded image formats the engine accepts, as recognised by <see cref="ImageDecoder.Sniff"/>.</summary>
internal enum ImageFormat
{
    /// <summary>None of the accepted formats.</summary>
    Unknown,

    /// <summary>PNG.</summary>
    Png,

    /// <summary>JPEG (baseline or progressive).</summary>
    Jpeg,

    /// <summary>Windows bitmap.</summary>
    Bmp,
}
