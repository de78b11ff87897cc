using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>The reference backend's rank-general operations: straight loops in double from the definitions.</summary>
internal sealed partial class ReferenceBackend
{
    /// <inheritdoc/>
    protected override void TransposeCore(Tensor x, Tensor y, TransposeShape s)
    {
        double[] X = D(x), Y = D(y);
        int[] d = [s.D0, s.D1, s.D2, s.D3, s.D4, s.D5], st = [s.S0, s.S1, s.S2, s.S3, s.S4, s.S5];
        var idx = new int[6];
        for (int o = 0; o < Y.Length; o++)
        {
            int src = 0;
            for (int k = 0; k < 6; k++)
                src += idx[k] * st[k];
            Y[o] = X[src];
            // Next multi-index of y in row-major order.
            for (int k = 5; k >= 0; k--)
            {
                if (++idx[k] < d[k])
                    break;
                idx[k] = 0;
            }
        }
    }

    /// <inheritdoc/>
    protected override void ReduceSumCore(Tensor x, Tensor y, AxisShape s, bool mean)
    {
        double[] X = D(x), Y = D(y);
        for (int o = 0; o < s.Outer; o++)
        for (int j = 0; j < s.Inner; j++)
        {
            double acc = 0;
            for (int l = 0; l < s.Len; l++)
                acc += X[(o * s.Len + l) * s.Inner + j];
            Y[o * s.Inner + j] = mean ? acc / s.Len : acc;
        }
    }

    /// <inheritdoc/>
    protected override void BroadcastAxisCore(Tensor dy, Tensor dx, AxisShape s, bool mean)
    {
        double[] DY = D(dy), DX = D(dx);
        for (int o = 0; o < s.Outer; o++)
        for (int l = 0; l < s.Len; l++)
        for (int j = 0; j < s.Inner; j++)
            DX[(o * s.Len + l) * s.Inner + j] = mean ? DY[o * s.Inner + j] / s.Len : DY[o * s.Inner + j];
    }

    /// <inheritdoc/>
    protected override void ReduceMaxCore(Tensor x, Tensor y, Tensor argmax, AxisShape s)
    {
        double[] X = D(x), Y = D(y);
        int[] A = I(argmax);
        for (int o = 0; o < s.Outer; o++)
        for (int j = 0; j < s.Inner; j++)
        {
            int best = o * s.Len * s.Inner + j;
            for (int l = 1; l < s.Len; l++)
            {
                int at = (o * s.Len + l) * s.Inner + j;
                if (X[at] > X[best])
                    best = at; // strictly greater: the first maximum wins ties
            }
            Y[o * s.Inner + j] = X[best];
            A[o * s.Inner + j] = best;
        }
    }

    /// <inheritdoc/>
    protected override void ReduceMaxBackwardCore(Tensor dy, Tensor argmax, Tensor dx)
    {
        double[] DY = D(dy), DX = D(dx);
        int[] A = I(argmax);
        for (int i = 0; i < DY.Length; i++)
            DX[A[i]] += DY[i];
    }

    /// <inheritdoc/>
    protected override void ReduceMaxRouteCore(Tensor x, Tensor argmax, Tensor y)
    {
        double[] X = D(x), Y = D(y);
        int[] A = I(argmax);
        for (int i = 0; i < Y.Length; i++)
            Y[i] = X[A[i]];
    }

    /// <inheritdoc/>
    protected override void LayerNormCore(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor stats, int rows, int cols, float eps)
    {
        double[] X = D(x), G = D(gamma), B = D(beta), Y = D(y), S = D(stats);
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, v = 0;
            for (int j = 0; j < cols; j++)
                mean += X[r * cols + j];
            mean /= cols;
            for (int j = 0; j < cols; j++)
                v += (X[r * cols + j] - mean) * (X[r * cols + j] - mean);
            double rstd = 1 / Math.Sqrt(v / cols + eps);
            S[2 * r] = mean;
            S[2 * r + 1] = rstd;
            for (int j = 0; j < cols; j++)
                Y[r * cols + j] = G[j] * (X[r * cols + j] - mean) * rstd + B[j];
        }
    }

    /// <inheritdoc/>
    protected override void LayerNormBackwardCore(Tensor x, Tensor gamma, Tensor stats, Tensor dy, Tensor dx, Tensor? dgamma, Tensor? dbeta, int rows, int cols)
    {
        double[] X = D(x), G = D(gamma), S = D(stats), DY = D(dy), DX = D(dx);
        double[]? DG = dgamma == null ? null : D(dgamma), DB = dbeta == null ? null : D(dbeta);
        for (int r = 0; r < rows; r++)
        {
            double mean = S[2 * r], rstd = S[2 * r + 1], sg = 0, sgx = 0;
            for (int j = 0; j < cols; j++)
            {
                double g = DY[r * cols + j] * G[j];
                sg += g;
                sgx += g * (X[r * cols + j] - mean) * rstd;
            }
            sg /= cols;
            sgx /= cols;
            for (int j = 0; j < cols; j++)
            {
                double xhat = (X[r * cols + j] - mean) * rstd;
                DX[r * cols + j] = rstd * (DY[r * cols + j] * G[j] - sg - xhat * sgx);
                if (DG != null)
                    DG[j] += DY[r * cols + j] * xhat;
                if (DB != null)
                    DB[j] += DY[r * cols + j];
            }
        }
    }

    /// <summary>
    /// erf in double, independent of the float kernel's approximation: the Maclaurin series
    /// <c>2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))</c> for |x| &lt; 3 (terms until they vanish; the largest term
    /// is below 1e4, so about 1e-12 of precision remains), and <c>1 - erfc</c> beyond, erfc from its continued
    /// fraction <c>exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))</c> evaluated backwards.
    /// </summary>
    internal static double ErfDouble(double x)
    {
        double a = Math.Abs(x);
        double r;
        if (a < 3)
        {
            double term = a, sum = a;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -a * a / n;
                sum += term / (2 * n + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double f = a;
            for (int k = 60; k >= 1; k--)
                f = a + k / 2.0 / f;
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }
}
