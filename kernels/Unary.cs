using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// A smooth or piecewise-linear element-wise function, written once and used by every backend: the ILGPU
/// <see cref="Unary.Forward{TOp}"/> / <see cref="Unary.Backward{TOp}"/> kernels, and any managed backend.
/// Higher-order derivatives for Taylor-mode autodiff belong beside <see cref="Derivative"/> in each struct.
/// </summary>
internal interface IUnaryOp
{
    /// <summary>f(x).</summary>
    float Value(float x);

    /// <summary>f'(x), with the op's kink convention where f is not differentiable.</summary>
    float Derivative(float x);

    /// <summary>Second derivative (zero wherever f is piecewise linear; the op's convention at a kink).</summary>
    float Derivative2(float x);

    /// <summary>Third derivative.</summary>
    float Derivative3(float x);
}

/// <summary>
/// Generic element-wise map and its backward over an <see cref="IUnaryOp"/>.
/// <code>x, y, dy, dx: any shape, same length</code>
/// Every instantiation used by a backend is listed in <see cref="UnaryOps.Instantiations"/> (PTX tests compile each).
/// </summary>
internal static class Unary
{
    /// <summary>Forward: <c>y = f(x)</c>. Index: one per element.</summary>
    public static void Forward<TOp>(Index1D i, ArrayView<float> x, ArrayView<float> y, TOp op)
        where TOp : struct, IUnaryOp
    {
        y[i] = op.Value(x[i]);
    }

    /// <summary>Backward of <c>y = f(x)</c>: <c>dx = dy * f'(x)</c>. Index: one per element.</summary>
    public static void Backward<TOp>(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, TOp op)
        where TOp : struct, IUnaryOp
    {
        dx[i] = dy[i] * op.Derivative(x[i]);
    }

    /// <summary>
    /// Taylor coefficients of orders 1..3 of <c>y(t) = f(x(t))</c>, <c>x(t) = x0 + x1 t + x2 t^2 + x3 t^3</c>
    /// (Faa di Bruno), with d1, d2, d3 the first three derivatives of f at x0:
    /// <code>
    /// y1 = d1 x1
    /// y2 = d1 x2 + d2 x1^2 / 2
    /// y3 = d1 x3 + d2 x1 x2 + d3 x1^3 / 6
    /// </code>
    /// <c>xs</c> and <c>ys</c> hold orders 1, 2, 3 one after another, <paramref name="n"/> elements each.
    /// Index: one per element of x0.
    /// </summary>
    public static void Jet<TOp>(Index1D i, ArrayView<float> x0, ArrayView<float> xs, ArrayView<float> ys, TOp op, int n)
        where TOp : struct, IUnaryOp
    {
        float a = x0[i];
        float x1 = xs[i], x2 = xs[n + i], x3 = xs[2 * n + i];
        float d1 = op.Derivative(a), d2 = op.Derivative2(a), d3 = op.Derivative3(a);
        ys[i] = d1 * x1;
        ys[n + i] = d1 * x2 + 0.5f * d2 * x1 * x1;
        ys[2 * n + i] = d1 * x3 + d2 * x1 * x2 + d3 * x1 * x1 * x1 / 6f;
    }
}

/// <summary>The closed set of unary operator structs, for reflection-driven tests.</summary>
internal static class UnaryOps
{
    /// <summary>One representative value of every operator struct the backends instantiate.</summary>
    public static readonly IReadOnlyList<IUnaryOp> Instantiations =
    [
        new Sigmoid(), new HardSigmoid(1f / 6f, 0.5f), new HardSwish(), new LeakyRelu(0.01f), new Clip(0f, 6f),
        new Erf(), new Gelu(), new Pow(2f), new Sqrt(), new Tanh(),
    ];
}

/// <summary>Logistic sigmoid, <c>1 / (1 + exp(-x))</c>; smooth, <c>f' = f (1 - f)</c>.</summary>
internal readonly record struct Sigmoid : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => 1f / (1f + MathF.Exp(-x));

    /// <inheritdoc/>
    public float Derivative(float x)
    {
        float s = Value(x);
        return s * (1f - s);
    }

    /// <summary>Second derivative: <c>s (1 - s) (1 - 2 s)</c>.</summary>
    public float Derivative2(float x)
    {
        float s = Value(x);
        return s * (1f - s) * (1f - 2f * s);
    }

    /// <summary>Third derivative: <c>s (1 - s) (1 - 6 s + 6 s^2)</c>.</summary>
    public float Derivative3(float x)
    {
        float s = Value(x);
        return s * (1f - s) * (1f - 6f * s + 6f * s * s);
    }
}

/// <summary>
/// ONNX HardSigmoid, <c>max(0, min(1, alpha x + beta))</c> (PyTorch's Hardsigmoid is alpha 1/6, beta 1/2).
/// Kink convention: the derivative is alpha strictly inside 0 &lt; alpha x + beta &lt; 1 and 0 at and beyond the
/// corners, as PyTorch's hardsigmoid_backward (gradient where -3 &lt; x &lt; 3).
/// </summary>
internal readonly record struct HardSigmoid(float Alpha, float Beta) : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x)
    {
        float t = Alpha * x + Beta;
        return t <= 0f ? 0f : t >= 1f ? 1f : t;
    }

    /// <inheritdoc/>
    public float Derivative(float x)
    {
        float t = Alpha * x + Beta;
        return t > 0f && t < 1f ? Alpha : 0f;
    }

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative2(float x) => 0f;

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative3(float x) => 0f;
}

/// <summary>
/// HardSwish, <c>x * max(0, min(1, x / 6 + 1/2))</c>. Kink convention (PyTorch's hardswish_backward):
/// f'(x) = 0 for x &lt; -3, x / 3 + 1/2 for -3 &lt;= x &lt;= 3 (so f'(-3) = -1/2 and f'(3) = 3/2), 1 for x &gt; 3.
/// </summary>
internal readonly record struct HardSwish : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => x <= -3f ? 0f : x >= 3f ? x : x * (x + 3f) / 6f;

    /// <inheritdoc/>
    public float Derivative(float x) => x < -3f ? 0f : x <= 3f ? x / 3f + 0.5f : 1f;

    /// <summary>1/3 on [-3, 3] (the closed interval of the first-derivative convention), 0 outside.</summary>
    public float Derivative2(float x) => x < -3f || x > 3f ? 0f : 1f / 3f;

    /// <summary>Zero: piecewise quadratic.</summary>
    public float Derivative3(float x) => 0f;
}

/// <summary>Leaky ReLU, <c>x &gt; 0 ? x : alpha x</c>. Kink convention (PyTorch's): f'(0) = alpha.</summary>
internal readonly record struct LeakyRelu(float Alpha) : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => x > 0f ? x : Alpha * x;

    /// <inheritdoc/>
    public float Derivative(float x) => x > 0f ? 1f : Alpha;

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative2(float x) => 0f;

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative3(float x) => 0f;
}

/// <summary>
/// Clip to [min, max] (ReLU6 is Clip(0, 6)). Kink convention: the gradient passes strictly inside,
/// min &lt; x &lt; max, and is 0 at either bound, as PyTorch's hardtanh_backward (nn.ReLU6, the module torchvision
/// uses) does. (PyTorch's torch.clamp would pass it at the bounds; the two differ only on exact ties.)
/// </summary>
internal readonly record struct Clip(float Min, float Max) : IUnaryOp
{
    /// <inheritdoc/>
    public float Value(float x) => x < Min ? Min : x > Max ? Max : x;

    /// <inheritdoc/>
    public float Derivative(float x) => x > Min && x < Max ? 1f : 0f;

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative2(float x) => 0f;

    /// <summary>Zero: the function is piecewise linear.</summary>
    public float Derivative3(float x) => 0f;
}
