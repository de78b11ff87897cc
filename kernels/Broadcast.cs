using ILGPU;

namespace CamEngine.Kernels;

/// <summary>
/// Binary arithmetic with numpy broadcasting over up to four axes, and its backward (a reduction over the
/// axes an operand was broadcast along). Shapes are right-aligned and padded with 1 to rank 4 by
/// <see cref="BroadcastShape"/>.
/// <code>
/// a: (A0,A1,A2,A3)   b: (B0,B1,B2,B3)   y, dy: (D0,D1,D2,D3) with Ak, Bk in {1, Dk}
/// add: y = a + b   sub: y = a - b   mul: y = a * b   div: y = a / b
/// </code>
/// All four are smooth where defined (div at b = 0 gives IEEE infinities, as PyTorch).
/// </summary>
internal static class Broadcast
{
    private static float Apply(int op, float a, float b) =>
        op == 0 ? a + b : op == 1 ? a - b : op == 2 ? a * b : a / b;

    /// <summary>Forward. Index: one per element of y.</summary>
    public static void Forward(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, BroadcastShape s)
    {
        int i3 = i % s.D3;
        int t = i / s.D3;
        int i2 = t % s.D2;
        t /= s.D2;
        int i1 = t % s.D1;
        int i0 = t / s.D1;
        int ia = i0 * s.SA0 + i1 * s.SA1 + i2 * s.SA2 + i3 * s.SA3;
        int ib = i0 * s.SB0 + i1 * s.SB1 + i2 * s.SB2 + i3 * s.SB3;
        y[i] = Apply(s.Op, a[ia], b[ib]);
    }

    /// <summary>
    /// d(operand)/: for operand 0 (a), <c>da[p] = sum_{o : a-index(o) = p} dy[o] * dy/da(o)</c> with dy/da = 1, 1, b, 1/b
    /// for add, sub, mul, div; for operand 1 (b), dy/db = 1, -1, a, -a/b^2. The sum runs over the output elements
    /// that read p (the broadcast axes). Index: one per element of the operand's gradient.
    /// </summary>
    public static void Backward(
        Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dy, ArrayView<float> grad,
        BroadcastShape s, int operand)
    {
        // The operand's own rank-4 dims, 1 along the axes it is broadcast over.
        int e0 = operand == 0 ? s.A0 : s.B0, e1 = operand == 0 ? s.A1 : s.B1;
        int e2 = operand == 0 ? s.A2 : s.B2, e3 = operand == 0 ? s.A3 : s.B3;
        int p3 = i % e3;
        int t = i / e3;
        int p2 = t % e2;
        t /= e2;
        int p1 = t % e1;
        int p0 = t / e1;
        int n0 = e0 == 1 ? s.D0 : 1, n1 = e1 == 1 ? s.D1 : 1, n2 = e2 == 1 ? s.D2 : 1, n3 = e3 == 1 ? s.D3 : 1;
        float acc = 0f;
        for (int j0 = 0; j0 < n0; j0++)
        {
            int o0 = e0 == 1 ? j0 : p0;
            for (int j1 = 0; j1 < n1; j1++)
            {
                int o1 = e1 == 1 ? j1 : p1;
                for (int j2 = 0; j2 < n2; j2++)
                {
                    int o2 = e2 == 1 ? j2 : p2;
                    for (int j3 = 0; j3 < n3; j3++)
                    {
                        int o3 = e3 == 1 ? j3 : p3;
                        int o = ((o0 * s.D1 + o1) * s.D2 + o2) * s.D3 + o3;
                        float g = dy[o];
                        if (s.Op == 1 && operand == 1)
                        {
                            g = -g;
                        }
                        else if (s.Op >= 2)
                        {
                            float av = a[o0 * s.SA0 + o1 * s.SA1 + o2 * s.SA2 + o3 * s.SA3];
                            float bv = b[o0 * s.SB0 + o1 * s.SB1 + o2 * s.SB2 + o3 * s.SB3];
                            if (s.Op == 2)
                                g *= operand == 0 ? bv : av;
                            else
                                g = operand == 0 ? g / bv : -g * av / (bv * bv);
                        }
                        acc += g;
                    }
                }
            }
        }
        grad[i] = acc;
    }
}
