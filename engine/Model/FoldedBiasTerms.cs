namespace CamEngine.Model;

/// <summary>
/// Conv attributes the ONNX converter records when it folds a BatchNormalization into a convolution that had its
/// own bias: the folded bias mixes two biases that pytorch-grad-cam's FullGrad counts as separate terms (the
/// Conv2d's bias at the conv output and the BatchNorm2d's effective bias at the BN output). Both are per output
/// channel and expressed against the gradient at the folded conv's output: <see cref="ConvBias"/> =
/// <c>b * gamma / sqrt(var + eps)</c> (d/dconv = scale * d/dfolded), <see cref="BatchNormBias"/> =
/// <c>beta - mean * gamma / sqrt(var + eps)</c>. Absent (older model files, convs without their own bias) the
/// folded conv's bias is the single term.
/// </summary>
internal static class FoldedBiasTerms
{
    /// <summary>The conv's own bias times the folded BN scale, per output channel.</summary>
    public const string ConvBias = "fullgrad_conv_bias";

    /// <summary>The folded BN's effective bias, per output channel.</summary>
    public const string BatchNormBias = "fullgrad_bn_bias";
}
