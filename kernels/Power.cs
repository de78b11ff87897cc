namespace CamEngine.Kernels;

/// <summary>
/// <c>x^P</c> for a constant exponent P (ONNX Pow with a constant exponent: the decomposed LayerNorm's
/// <c>(x - mean)^2</c>, tanh-GELU's <c>x^3</c>). Integer P up to 4 multiply exactly; other exponents use
/// <c>pow</c>, NaN for negative x as in PyTorch.
/// <code>f' = P x^(P-1)   f'' = P (P-1) x^(P-2)   f''' = P (P-1) (P-2) x^(P-3)</code>
/// </summary>
/// <param name="P">The exponent.</param>
internal readonly record struct Pow(float P) : IUnaryOp
{
    private static float Power(float x, float p) =>
        p == 0f ? 1f : p == 1f ? x : p == 2f ? x * x : p == 3f ? x * x * x : p == 4f ? x * x * x * x : MathF.Pow(x, p);

    /// <inheritdoc/>
    public float Value(float x) => Power(x, P);

    /// <inheritdoc/>
    public float Derivative(float x) => P == 0f ? 0f : P * Power(x, P - 1f);

    /// <inheritdoc/>
    public float Derivative2(float x) => P == 0f || P == 1f ? 0f : P * (P - 1f) * Power(x, P - 2f);

    /// <inheritdoc/>
    public float Derivative3(float x) => P == 0f || P == 1f || P == 2f ? 0f : P * (P - 1f) * (P - 2f) * Power(x, P - 3f);
}

/// <summary>
/// <c>sqrt(x)</c> (ONNX Sqrt: the decomposed LayerNorm's <c>sqrt(var + eps)</c>). NaN below 0, as PyTorch.
/// <code>f' = 1 / (2 sqrt x)   f'' = -1 / (4 x^(3/2))   f''' = 3 / (8 x^(5/2))</code>
/// </summary>
internal readonly record struct Sqrt : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => MathF.Sqrt(x);

    /// <inheritdoc/>
    public float Derivative(float x) => 0.5f / MathF.Sqrt(x);

    /// <inheritdoc/>
    public float Derivative2(float x) => -0.25f / (x * MathF.Sqrt(x));

    /// <inheritdoc/>
    public float Derivative3(float x) => 0.375f / (x * x * MathF.Sqrt(x));
}

/// <summary>
/// <c>tanh(x)</c> (ONNX Tanh: tanh-approximated GELU). Smooth; with t = tanh x:
/// <code>f' = 1 - t^2   f'' = -2t (1 - t^2)   f''' = (6t^2 - 2)(1 - t^2)</code>
/// </summary>
internal readonly record struct Tanh : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => MathF.Tanh(x);

    /// <inheritdoc/>
    public float Derivative(float x)
    {
        float t = MathF.Tanh(x);
        return 1f - t * t;
    }

    /// <inheritdoc/>
    public float Derivative2(float x)
    {
        float t = MathF.Tanh(x);
        return -2f * t * (1f - t * t);
    }

    /// <inheritdoc/>
    public float Derivative3(float x)
    {
        float t = MathF.Tanh(x);
        return (6f * t * t - 2f) * (1f - t * t);
    }
}
