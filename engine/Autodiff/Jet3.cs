namespace CamEngine.Autodiff;

/// <summary>
/// A truncated Taylor series <c>f(t) = C0 + C1 t + C2 t^2 + C3 t^3</c> in double precision: the host-side
/// arithmetic of forward-mode jets up to third order. Coefficients are normalized (Ck = f^(k)(0) / k!).
/// Products and quotients follow the Cauchy product; <see cref="Exp"/> and <see cref="Log"/> use the standard
/// recurrences (Griewank and Walther, Evaluating Derivatives, ch. 13).
/// </summary>
internal readonly record struct Jet3(double C0, double C1, double C2, double C3)
{
    /// <summary>A constant.</summary>
    public static Jet3 Constant(double v) => new(v, 0, 0, 0);

    /// <summary>Derivatives of order 0..3 at t = 0: f, f', f'', f'''.</summary>
    public (double F, double D1, double D2, double D3) Derivatives => (C0, C1, 2 * C2, 6 * C3);

#pragma warning disable CS1591 // arithmetic operators
    public static Jet3 operator +(Jet3 a, Jet3 b) => new(a.C0 + b.C0, a.C1 + b.C1, a.C2 + b.C2, a.C3 + b.C3);

    public static Jet3 operator -(Jet3 a, Jet3 b) => new(a.C0 - b.C0, a.C1 - b.C1, a.C2 - b.C2, a.C3 - b.C3);

    public static Jet3 operator -(Jet3 a) => new(-a.C0, -a.C1, -a.C2, -a.C3);

    public static Jet3 operator *(double s, Jet3 a) => new(s * a.C0, s * a.C1, s * a.C2, s * a.C3);

    public static Jet3 operator *(Jet3 a, Jet3 b) => new(
        a.C0 * b.C0,
        a.C0 * b.C1 + a.C1 * b.C0,
        a.C0 * b.C2 + a.C1 * b.C1 + a.C2 * b.C0,
        a.C0 * b.C3 + a.C1 * b.C2 + a.C2 * b.C1 + a.C3 * b.C0);

    public static Jet3 operator /(Jet3 a, Jet3 b)
    {
        // q = a / b  <=>  q b = a: solve order by order.
        double q0 = a.C0 / b.C0;
        double q1 = (a.C1 - q0 * b.C1) / b.C0;
        double q2 = (a.C2 - q0 * b.C2 - q1 * b.C1) / b.C0;
        double q3 = (a.C3 - q0 * b.C3 - q1 * b.C2 - q2 * b.C1) / b.C0;
        return new Jet3(q0, q1, q2, q3);
    }
#pragma warning restore CS1591

    /// <summary>exp of a series: with e = exp(a), e' = a' e gives k e_k = sum_{j=1..k} j a_j e_{k-j}.</summary>
    public static Jet3 Exp(Jet3 a)
    {
        double e0 = Math.Exp(a.C0);
        double e1 = a.C1 * e0;
        double e2 = (a.C1 * e1 + 2 * a.C2 * e0) / 2;
        double e3 = (a.C1 * e2 + 2 * a.C2 * e1 + 3 * a.C3 * e0) / 3;
        return new Jet3(e0, e1, e2, e3);
    }

    /// <summary>log of a series: with l = log(a), a l' = a' gives k l_k a_0 = k a_k - sum_{j=1..k-1} j l_j a_{k-j}.</summary>
    public static Jet3 Log(Jet3 a)
    {
        double l0 = Math.Log(a.C0);
        double l1 = a.C1 / a.C0;
        double l2 = (2 * a.C2 - l1 * a.C1) / (2 * a.C0);
        double l3 = (3 * a.C3 - l1 * a.C2 - 2 * l2 * a.C1) / (3 * a.C0);
        return new Jet3(l0, l1, l2, l3);
    }
}
