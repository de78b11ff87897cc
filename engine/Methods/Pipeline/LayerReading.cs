using System.Globalization;

namespace CamEngine.Methods;

/// <summary>How one layer is read: the layout used (never <see cref="LayerLayoutKind.Auto"/>), the (C, h, w) grid
/// the methods see, and why that layout (the graph evidence when it was decided automatically).</summary>
/// <param name="Layer">The layer's output tensor.</param>
/// <param name="Layout">The layout it is read through.</param>
/// <param name="Channels">C.</param>
/// <param name="Height">h.</param>
/// <param name="Width">w.</param>
/// <param name="Reason">Where the layout came from: "given", or the graph evidence of <c>auto</c>.</param>
public sealed record LayerReading(string Layer, LayerLayout Layout, int Channels, int Height, int Width, string Reason)
{
    /// <summary>E.g. <c>nhwc as (C, h, w) = (768, 7, 7)</c>.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Layout} as (C, h, w) = ({Channels}, {Height}, {Width}); {Reason}");
}
