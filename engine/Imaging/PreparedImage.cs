using CamEngine.Tensors;

namespace CamEngine.Imaging;

/// <summary>A preprocessed model input together with the RGB pixels it shows (after resize and crop).</summary>
/// <param name="Input">The normalised input, (1, 3, H, W).</param>
/// <param name="Cropped">The resized and cropped image, H x W, for drawing overlays.</param>
internal sealed record PreparedImage(HostTensor Input, RgbImage Cropped);
