namespace CamEngine.Metrics;

/// <summary>
/// The number a faithfulness metric reads from the model output for an explanation's class c.
/// </summary>
public enum MetricScore
{
    /// <summary><c>softmax(y)_c</c>, computed in double with the maximum subtracted: the "confidence" of the
    /// Grad-CAM++ and RISE papers and of TorchCAM's metrics.</summary>
    Softmax,

    /// <summary>The raw output <c>y_c</c> (logit): what pytorch-grad-cam's metrics read with its default
    /// <c>ClassifierOutputTarget</c>.</summary>
    Logit,
}
