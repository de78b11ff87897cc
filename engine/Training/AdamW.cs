namespace CamEngine.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov and Hutter 2019), on host arrays, in PyTorch's formulation:
/// <code>
/// p -= lr * wd * p                              (decay: weights only, not biases)
/// m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
/// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
/// </code>
/// </summary>
internal sealed class AdamW(float learningRate, float weightDecay = 1e-4f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
{
    private readonly Dictionary<string, (float[] M, float[] V)> _state = new(StringComparer.Ordinal);
    private int _step;

    /// <summary>The learning rate (may be changed between steps, e.g. by a schedule).</summary>
    public float LearningRate { get; set; } = learningRate;

    /// <summary>Starts a new step (advances the bias-correction counter once for all parameters).</summary>
    public void BeginStep() => _step++;

    /// <summary>Updates <paramref name="param"/> in place from its gradient.</summary>
    public void Update(string name, Span<float> param, ReadOnlySpan<float> grad, bool decay)
    {
        if (param.Length != grad.Length)
            throw new ArgumentException($"{name}: parameter and gradient lengths differ");
        if (!_state.TryGetValue(name, out var s))
            _state[name] = s = (new float[param.Length], new float[param.Length]);
        double c1 = 1 - Math.Pow(beta1, _step), c2 = 1 - Math.Pow(beta2, _step);
        float lr = LearningRate;
        for (int i = 0; i < param.Length; i++)
        {
            float g = grad[i];
            if (decay)
                param[i] -= lr * weightDecay * param[i];
            s.M[i] = beta1 * s.M[i] + (1 - beta1) * g;
            s.V[i] = beta2 * s.V[i] + (1 - beta2) * g * g;
            param[i] -= (float)(lr * (s.M[i] / c1) / (Math.Sqrt(s.V[i] / c2) + eps));
        }
    }
}
