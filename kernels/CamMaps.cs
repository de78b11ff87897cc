using ILGPU;

namespace CamEngine.Kernels;

/// <summary>Geometry of a bilinear resize of <see cref="Planes"/> row-major (InH, InW) planes to (OutH, OutW).
/// <see cref="ScaleH"/> and <see cref="ScaleW"/> are the source step per output index: (in - 1) / (out - 1) with
/// align_corners (0 for an output side of 1), else in / out.</summary>
internal readonly record struct ResizeShape(int Planes, int InH, int InW, int OutH, int OutW, int AlignCorners,
    double ScaleH, double ScaleW)
{
    /// <summary>The geometry, with the scales computed as the host's <c>Resize.Bilinear</c> computes them.</summary>
    public static ResizeShape Create(int planes, int inH, int inW, int outH, int outW, bool alignCorners) =>
        new(planes, inH, inW, outH, outW, alignCorners ? 1 : 0, Scale(inH, outH, alignCorners), Scale(inW, outW, alignCorners));

    private static double Scale(int inSize, int outSize, bool alignCorners) =>
        alignCorners ? (outSize > 1 ? (inSize - 1) / (double)(outSize - 1) : 0) : inSize / (double)outSize;
}

/// <summary>Geometry of a masked batch: <see cref="Rows"/> output rows of <see cref="Channels"/> planes of
/// <see cref="Plane"/> = H*W pixels.</summary>
internal readonly record struct MaskedShape(int Rows, int Channels, int Plane);

/// <summary>
/// The device side of the CAM methods: building the Score-CAM family's masks from activations (bilinear upsampling;
/// the min-max normalization is <see cref="Reductions.MinMaxNormalize"/>) and the masked batches from them, and the
/// channel weights and weighted channel sums that turn a layer's activations A and gradients G into a map, so only
/// the final (h, w) map of each image leaves the device.
/// <code>A, G: (N, C, P)   weights: (N, C)   map: (N, P)   masks: (R, P_in)   x: (N, C_in, P_in)</code>
/// The arithmetic follows the host code it replaces operation for operation (same float expressions, same order),
/// so on a device without fused multiply-add contraction the results are equal bit for bit.
/// </summary>
internal static class CamMaps
{
    /// <summary>
    /// Bilinear resize, one thread per output pixel, as <c>Resize.Bilinear</c> on the host: source position
    /// <c>o * scale</c> with align_corners, else <c>max((o + 0.5) * scale - 0.5, 0)</c>; the two taps clamp to the
    /// last row/column, and the weight of the second tap is 0 where both taps are the same.
    /// </summary>
    public static void Upsample(Index1D i, ArrayView<float> src, ArrayView<float> dst, ResizeShape s)
    {
        int ox = i % s.OutW;
        int oy = i / s.OutW % s.OutH;
        int p = i / (s.OutW * s.OutH);
        Tap(oy, s.InH, s.ScaleH, s.AlignCorners, out int y0, out int y1, out float ly);
        Tap(ox, s.InW, s.ScaleW, s.AlignCorners, out int x0, out int x1, out float lx);
        int b = p * s.InH * s.InW;
        int rowA = b + y0 * s.InW, rowB = b + y1 * s.InW;
        float top = (1 - lx) * src[rowA + x0] + lx * src[rowA + x1];
        float bottom = (1 - lx) * src[rowB + x0] + lx * src[rowB + x1];
        dst[i] = (1 - ly) * top + ly * bottom;
    }

    private static void Tap(int o, int inSize, double scale, int alignCorners, out int i0, out int i1, out float w)
    {
        double s = alignCorners != 0 ? o * scale : (o + 0.5) * scale - 0.5;
        if (s < 0)
            s = 0;
        int a = (int)s;
        if (a > inSize - 1)
            a = inSize - 1;
        i0 = a;
        i1 = a + 1 > inSize - 1 ? inSize - 1 : a + 1;
        w = i1 == a ? 0f : (float)(s - a);
    }

    /// <summary>Min-max normalization of one row, one thread per row (the CPU accelerator's form of
    /// <see cref="Reductions.MinMaxNormalize"/>): <c>(x - min) / (max - min + eps)</c>, 0 for a constant row; may run
    /// in place. Index: one per row.</summary>
    public static void MinMaxRow(Index1D i, ArrayView<float> x, ArrayView<float> y, int length, float eps)
    {
        int start = i * length;
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        for (int j = 0; j < length; j++)
        {
            float v = x[start + j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        float range = hi - lo;
        float denominator = range + eps;
        for (int j = 0; j < length; j++)
            y[start + j] = range > 0f ? (x[start + j] - lo) / denominator : 0f;
    }

    /// <summary>
    /// One row of a masked batch per item r: <c>y[r, c, j] = x[img, c, j] * m</c> with <c>m = masks[mask, j]</c>
    /// (plus <c>noise[nz, j]</c> when nz &gt;= 0), times <c>scales[r]</c> unless it is 1 (Score-CAM, SS-CAM's noisy
    /// masks, IS-CAM's scaled inputs). <paramref name="items"/> holds (img, mask, nz) per row. Index: one per element of y.
    /// </summary>
    public static void Masked(Index1D i, ArrayView<float> x, ArrayView<float> masks, ArrayView<float> noise,
        ArrayView<int> items, ArrayView<float> scales, ArrayView<float> y, MaskedShape s)
    {
        int j = i % s.Plane;
        int c = i / s.Plane % s.Channels;
        int r = i / (s.Plane * s.Channels);
        int image = items[3 * r], mask = items[3 * r + 1], nz = items[3 * r + 2];
        float m = masks[mask * s.Plane + j];
        if (nz >= 0)
            m = m + noise[nz * s.Plane + j];
        float v = x[(image * s.Channels + c) * s.Plane + j] * m;
        float scale = scales[r];
        y[i] = scale == 1f ? v : scale * v;
    }

    /// <summary>
    /// One row of an occlusion batch per item r: image img of x with the window [y0, y1) x [x0, x1) of every channel
    /// taken from <paramref name="baseline"/> instead. <paramref name="items"/> holds (img, y0, y1, x0, x1) per row;
    /// <paramref name="width"/> is W (Plane = H*W). Index: one per element of y.
    /// </summary>
    public static void Windowed(Index1D i, ArrayView<float> x, ArrayView<float> baseline, ArrayView<int> items,
        ArrayView<float> y, MaskedShape s, int width)
    {
        int j = i % s.Plane;
        int c = i / s.Plane % s.Channels;
        int r = i / (s.Plane * s.Channels);
        int image = items[5 * r], py = j / width, px = j % width;
        int at = (image * s.Channels + c) * s.Plane + j;
        bool inside = py >= items[5 * r + 1] && py < items[5 * r + 2] && px >= items[5 * r + 3] && px < items[5 * r + 4];
        y[i] = inside ? baseline[at] : x[at];
    }

    /// <summary><c>map[n, j] = sum_k weights[n, k] * a[n, k, j]</c>, k in order (Grad-CAM, XGrad-CAM, Grad-CAM++,
    /// Score-CAM's map). Index: one per element of map (N * P).</summary>
    public static void WeightedChannelSum(Index1D i, ArrayView<float> a, ArrayView<float> weights, ArrayView<float> map,
        int channels, int plane)
    {
        int n = i / plane, j = i % plane;
        float acc = 0f;
        for (int k = 0; k < channels; k++)
            acc += weights[n * channels + k] * a[(n * channels + k) * plane + j];
        map[i] = acc;
    }

    /// <summary><c>map[n, j] = sum_k f(g[n, k, j]) * a[n, k, j]</c> with f the identity (HiResCAM,
    /// <paramref name="reluGradient"/> = 0) or max(g, 0) (Layer-CAM, 1; NaN stays NaN as in Math.Max). Index: one per element of map (N * P).</summary>
    public static void ProductChannelSum(Index1D i, ArrayView<float> a, ArrayView<float> g, ArrayView<float> map,
        int channels, int plane, int reluGradient)
    {
        int n = i / plane, j = i % plane;
        float acc = 0f;
        for (int k = 0; k < channels; k++)
        {
            int at = (n * channels + k) * plane + j;
            float gv = g[at];
            if (reluGradient != 0 && gv < 0f)
                gv = 0f;
            acc += gv * a[at];
        }
        map[i] = acc;
    }

    /// <summary>
    /// Channel weights of one (n, k) row of A and G (P values each), one thread per row, with the sums in double as
    /// the host methods compute them (<see cref="CamWeightRule"/>). Index: one per row (N * C).
    /// </summary>
    public static void ChannelWeights(Index1D i, ArrayView<float> a, ArrayView<float> g, ArrayView<float> weights,
        int plane, int rule, double eps)
    {
        int start = i * plane;
        if (rule == (int)CamWeightRule.GradCam)
        {
            double s = 0;
            for (int j = 0; j < plane; j++)
                s += g[start + j];
            weights[i] = (float)(s / plane);
            return;
        }
        double sumA = 0, ga = 0;
        for (int j = 0; j < plane; j++)
        {
            ga += (double)g[start + j] * a[start + j];
            sumA += a[start + j];
        }
        if (rule == (int)CamWeightRule.XGradCam)
        {
            double denom = sumA + eps;
            weights[i] = denom == 0 ? 0f : (float)(ga / denom);
            return;
        }
        double w = 0;
        for (int j = 0; j < plane; j++)
        {
            double gj = g[start + j], g2 = gj * gj;
            double alpha;
            if (rule == (int)CamWeightRule.GradCamPlusPlusSquared)
                alpha = g2;
            else if (g2 == 0)
                alpha = 0;
            else
            {
                double denom = 2 * g2 + sumA * (g2 * gj) + eps;
                alpha = denom == 0 ? 0 : g2 / denom;
            }
            w += alpha * (gj > 0 ? gj : 0);
        }
        weights[i] = (float)w;
    }
}

/// <summary>How <see cref="CamMaps.ChannelWeights"/> turns a channel's A and G (P values each) into its weight.</summary>
internal enum CamWeightRule
{
    /// <summary>Grad-CAM: <c>sum_j g / P</c>.</summary>
    GradCam = 0,

    /// <summary>XGrad-CAM: <c>sum_j g a / (sum_j a + eps)</c>, 0 where the denominator is 0.</summary>
    XGradCam = 1,

    /// <summary>Grad-CAM++: <c>sum_j alpha_j max(g_j, 0)</c> with <c>alpha = g^2 / (2 g^2 + sum(A) g^3 + eps)</c>,
    /// 0 where g or the denominator is 0.</summary>
    GradCamPlusPlus = 2,

    /// <summary>Grad-CAM++ as TorchCAM computes it under its convention: <c>alpha = g^2</c>.</summary>
    GradCamPlusPlusSquared = 3,
}
