namespace CamEngine.Imaging;

/// <summary>What an overlay shows of a photo (<see cref="OverlayOptions.View"/>).</summary>
public enum OverlayView
{
    /// <summary>The whole photo, upright, scaled to at most <see cref="OverlayOptions.MaxFullViewSide"/> pixels on its
    /// longer side, with the map placed over the region the model saw (its centre crop) and that region outlined.</summary>
    Full,

    /// <summary>Only the region the model saw (its centre crop) at the photo's resolution, up to 1024 pixels a side.</summary>
    Crop,
}
