namespace CamEngine.Kernels;

/// <summary>
/// The error function <c>erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt</c> (ONNX Erf; exact GELU is
/// <c>x (1 + erf(x / sqrt 2)) / 2</c>). Smooth; with <c>e(x) = 2/sqrt(pi) exp(-x^2)</c>:
/// <code>f' = e   f'' = -2x e   f''' = (4x^2 - 2) e</code>
/// .NET has no erf, so the value is computed here: the Maclaurin series to x^13 for |x| &lt; 0.5 (truncation
/// below 2e-8), otherwise Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), odd in x.
/// </summary>
internal readonly record struct Erf : IUnaryOp
{
    private const float TwoOverSqrtPi = 1.1283791670955126f;

    /// <inheritdoc/>
    public float Value(float x)
    {
        float a = MathF.Abs(x);
        if (a < 0.5f)
        {
            // 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            float z = x * x;
            float p = 1f + z * (-1f / 3f + z * (1f / 10f + z * (-1f / 42f + z * (1f / 216f + z * (-1f / 1320f + z * (1f / 9360f))))));
            return TwoOverSqrtPi * x * p;
        }
        float t = 1f / (1f + 0.3275911f * a);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float r = 1f - poly * MathF.Exp(-a * a);
        return x < 0 ? -r : r;
    }

    /// <inheritdoc/>
    public float Derivative(float x) => TwoOverSqrtPi * MathF.Exp(-x * x);

    /// <inheritdoc/>
    public float Derivative2(float x) => -2f * x * Derivative(x);

    /// <inheritdoc/>
    public float Derivative3(float x) => (4f * x * x - 2f) * Derivative(x);
}

/// <summary>
/// Exact GELU, <c>x Phi(x)</c> with <c>Phi(x) = (1 + erf(x / sqrt 2)) / 2</c> (torch's default GELU; the converter's
/// fused form of ONNX's Div, Erf, Add, Mul, Mul chain). Smooth; with <c>phi(x) = exp(-x^2/2) / sqrt(2 pi)</c>:
/// <code>f' = Phi + x phi   f'' = (2 - x^2) phi   f''' = x (x^2 - 4) phi</code>
/// The value takes erf from <see cref="Erf.Value"/>, in the chain's order: <c>x (erf(x / sqrt 2) + 1) / 2</c>.
/// </summary>
internal readonly record struct Gelu : IUnaryOp
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <inheritdoc/>
    public float Value(float x) => x * (new Erf().Value(x * InvSqrt2) + 1f) * 0.5f;

    /// <inheritdoc/>
    public float Derivative(float x) => 0.5f * (1f + new Erf().Value(x * InvSqrt2)) + x * Phi(x);

    /// <inheritdoc/>
    public float Derivative2(float x) => (2f - x * x) * Phi(x);

    /// <inheritdoc/>
    public float Derivative3(float x) => x * (x * x - 4f) * Phi(x);

    private static float Phi(float x) => InvSqrt2Pi * MathF.Exp(-0.5f * x * x);
}
