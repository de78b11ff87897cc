namespace CamEngine.Metrics;

/// <summary>Options every model-scoring metric shares.</summary>
public class MetricOptions
{
    /// <summary>Perturbed inputs per forward pass (default 32, as TorchCAM's and pytorch-grad-cam's metrics).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>The score read for the explanation's class (default the softmax probability).</summary>
    public MetricScore Score { get; init; } = MetricScore.Softmax;

    internal void Validate()
    {
        if (BatchSize < 1)
            throw new CamEngineException($"the metric batch size must be at least 1, got {BatchSize}");
    }
}
