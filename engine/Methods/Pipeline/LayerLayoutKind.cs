namespace CamEngine.Methods;

/// <summary>How a layer's tensor is laid out, so that every layer method reads it as a (C, h, w) grid.</summary>
public enum LayerLayoutKind
{
    /// <summary>Decided from the graph, per layer (<see cref="LayerLayout.Auto"/>).</summary>
    Auto,

    /// <summary>(C, h, w) per image: convolutional layers, read as is.</summary>
    Nchw,

    /// <summary>(h, w, C) per image: channels last, as in ConvNeXt and Swin blocks.</summary>
    Nhwc,

    /// <summary>(T, C) per image: a token sequence whose first K tokens (class token...) are not on the grid and the
    /// other T - K form a square grid in row-major order.</summary>
    Tokens,
}
