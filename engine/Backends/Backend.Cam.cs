using CamEngine.Imaging;
using CamEngine.Kernels;

namespace CamEngine.Backends;

/// <summary>One row of a masked batch (<see cref="Backend.MaskedInputs"/>): image <paramref name="Image"/> of x times
/// mask row <paramref name="Mask"/> (plus noise row <paramref name="Noise"/> when it is &gt;= 0), times
/// <paramref name="Scale"/>.</summary>
internal readonly record struct MaskedRow(int Image, int Mask, int Noise, float Scale);

/// <summary>One row of an occlusion batch (<see cref="Backend.WindowedInputs"/>): image <paramref name="Image"/> of x
/// with rows [<paramref name="Y0"/>, <paramref name="Y1"/>) and columns [<paramref name="X0"/>, <paramref name="X1"/>)
/// taken from the baseline.</summary>
internal readonly record struct WindowRow(int Image, int Y0, int Y1, int X0, int X1);

/// <summary>
/// The CAM operations that keep a method's work on the device: the Score-CAM family's masks from a layer's
/// activations and the masked batches from them, and the channel weights and weighted channel sums of the gradient
/// methods, so only the map at layer resolution (h, w) of each image is downloaded. The host defaults here (used by
/// the reference and managed CPU backends, whose memory is the host's) are the arithmetic the methods used before,
/// operation for operation; the ILGPU backend runs <see cref="CamMaps"/> and <see cref="Reductions"/> instead.
/// </summary>
internal abstract partial class Backend
{
    /// <summary>
    /// The Score-CAM masks (N, C, H, W) of activations a (N, C, h, w): every channel upsampled bilinearly to (H, W) and
    /// min-max normalized to <c>(m - min) / (max - min + eps)</c> (a constant channel becomes all zeros), in that
    /// order, or, with <paramref name="normalizeFirst"/>, normalized at layer resolution then upsampled.
    /// </summary>
    public void ActivationMasks(Tensor a, Tensor masks, bool normalizeFirst, bool alignCorners, float eps)
    {
        Check(a, ElementType.Float32, nameof(a));
        Check(masks, ElementType.Float32, nameof(masks));
        if (a.Shape.Length != 4 || masks.Shape.Length != 4 || a.Shape[0] != masks.Shape[0] || a.Shape[1] != masks.Shape[1]
            || a.Length == 0 || masks.Length == 0)
            throw new ArgumentException($"masks {masks.ShapeText} do not match activations {a.ShapeText}: need (N,C,H,W) and (N,C,h,w)");
        if (!(eps >= 0))
            throw new ArgumentException($"mask epsilon must be >= 0, got {eps}");
        ActivationMasksCore(a, masks, normalizeFirst, alignCorners, eps);
    }

    /// <summary>
    /// A masked batch y (rows, C, H, W) from x (N, C, H, W), masks (M, H, W) and optional noise (Q, H, W): row r is
    /// <c>x[img] * (masks[mask] + noise[nz])</c>, times its scale unless it is 1 (<see cref="MaskedRow"/>).
    /// </summary>
    public void MaskedInputs(Tensor x, Tensor masks, Tensor? noise, ReadOnlySpan<MaskedRow> rows, Tensor y)
    {
        Check(x, ElementType.Float32, nameof(x));
        Check(masks, ElementType.Float32, nameof(masks));
        Check(y, ElementType.Float32, nameof(y));
        if (x.Shape.Length != 4 || x.Length == 0)
            throw new ArgumentException($"masked inputs need x as (N,C,H,W), got {x.ShapeText}");
        int n = x.Shape[0], channels = x.Shape[1], plane = x.Shape[2] * x.Shape[3];
        if (masks.Length % plane != 0 || masks.Length == 0)
            throw new ArgumentException($"masks {masks.ShapeText} are not planes of {x.Shape[2]}x{x.Shape[3]}");
        int maskRows = masks.Length / plane, noiseRows = 0;
        if (noise != null)
        {
            Check(noise, ElementType.Float32, nameof(noise));
            if (noise.Length % plane != 0)
                throw new ArgumentException($"noise {noise.ShapeText} is not planes of {x.Shape[2]}x{x.Shape[3]}");
            noiseRows = noise.Length / plane;
        }
        CheckShape(y, [rows.Length, channels, x.Shape[2], x.Shape[3]], nameof(y));
        for (int r = 0; r < rows.Length; r++)
        {
            var row = rows[r];
            if ((uint)row.Image >= (uint)n || (uint)row.Mask >= (uint)maskRows || row.Noise >= noiseRows || row.Noise < -1)
                throw new ArgumentException(
                    $"masked row {r} names image {row.Image}, mask {row.Mask}, noise {row.Noise}; there are {n}, {maskRows} and {noiseRows}");
        }
        if (rows.Length > 0)
            MaskedInputsCore(x, masks, noise, rows, y, new MaskedShape(rows.Length, channels, plane));
    }

    /// <summary>An occlusion batch y (rows, C, H, W) from x and baseline (N, C, H, W): row r is image <c>img</c> of x
    /// with its window (every channel) taken from the baseline (<see cref="WindowRow"/>).</summary>
    public void WindowedInputs(Tensor x, Tensor baseline, ReadOnlySpan<WindowRow> rows, Tensor y)
    {
        Check(x, ElementType.Float32, nameof(x));
        if (x.Shape.Length != 4 || x.Length == 0)
            throw new ArgumentException($"windowed inputs need x as (N,C,H,W), got {x.ShapeText}");
        CheckShape(baseline, x.Shape, nameof(baseline));
        CheckShape(y, [rows.Length, x.Shape[1], x.Shape[2], x.Shape[3]], nameof(y));
        for (int r = 0; r < rows.Length; r++)
        {
            var w = rows[r];
            if ((uint)w.Image >= (uint)x.Shape[0] || w.Y0 < 0 || w.Y1 < w.Y0 || w.Y1 > x.Shape[2] || w.X0 < 0 || w.X1 < w.X0
                || w.X1 > x.Shape[3])
                throw new ArgumentException($"occlusion row {r} ({w}) is outside the {x.Shape[0]} images of {x.Shape[2]}x{x.Shape[3]}");
        }
        if (rows.Length > 0)
            WindowedInputsCore(x, baseline, rows, y, new MaskedShape(rows.Length, x.Shape[1], x.Shape[2] * x.Shape[3]), x.Shape[3]);
    }

    /// <summary>Channel weights (N, C) from a layer's activations and gradients (N, C, h, w) under
    /// <paramref name="rule"/> (<see cref="CamWeightRule"/>; <paramref name="eps"/> for XGrad-CAM and Grad-CAM++).</summary>
    public void CamChannelWeights(Tensor a, Tensor g, Tensor weights, CamWeightRule rule, double eps)
    {
        CheckCamLayer(a, nameof(a));
        CheckShape(g, a.Shape, nameof(g));
        CheckShape(weights, [a.Shape[0], a.Shape[1]], nameof(weights));
        if (!Enum.IsDefined(rule))
            throw new ArgumentOutOfRangeException(nameof(rule), rule, "unknown channel weight rule");
        CamChannelWeightsCore(a, g, weights, rule, eps, a.Shape[2] * a.Shape[3]);
    }

    /// <summary>The map (N, h, w) <c>sum_k weights[n, k] a[n, k]</c> of activations a (N, C, h, w).</summary>
    public void WeightedChannelSum(Tensor a, Tensor weights, Tensor map)
    {
        CheckCamLayer(a, nameof(a));
        CheckShape(weights, [a.Shape[0], a.Shape[1]], nameof(weights));
        CheckShape(map, [a.Shape[0], a.Shape[2], a.Shape[3]], nameof(map));
        WeightedChannelSumCore(a, weights, map, a.Shape[1], a.Shape[2] * a.Shape[3]);
    }

    /// <summary>The map (N, h, w) <c>sum_k f(g[n, k]) a[n, k]</c>, f the identity (HiResCAM) or <c>max(g, 0)</c> with
    /// <paramref name="reluGradient"/> (Layer-CAM).</summary>
    public void ProductChannelSum(Tensor a, Tensor g, Tensor map, bool reluGradient)
    {
        CheckCamLayer(a, nameof(a));
        CheckShape(g, a.Shape, nameof(g));
        CheckShape(map, [a.Shape[0], a.Shape[2], a.Shape[3]], nameof(map));
        ProductChannelSumCore(a, g, map, a.Shape[1], a.Shape[2] * a.Shape[3], reluGradient);
    }

    private void CheckCamLayer(Tensor a, string name)
    {
        Check(a, ElementType.Float32, name);
        if (a.Shape.Length != 4 || a.Length == 0)
            throw new ArgumentException($"{name} must be a non-empty (N,C,h,w) layer, got {a.ShapeText}");
    }

#pragma warning disable CS1591 // documented by the public operations above
    protected virtual void ActivationMasksCore(Tensor a, Tensor masks, bool normalizeFirst, bool alignCorners, float eps)
    {
        int h = a.Shape[2], w = a.Shape[3], bigH = masks.Shape[2], bigW = masks.Shape[3];
        int planes = a.Shape[0] * a.Shape[1], plane = h * w, big = bigH * bigW;
        var src = Read(a.Storage, a.Length);
        var dst = new float[masks.Length];
        for (int p = 0; p < planes; p++)
            HostMask(src.AsSpan(p * plane, plane), h, w, dst.AsSpan(p * big, big), bigH, bigW, normalizeFirst, alignCorners, eps);
        Write(masks.Storage, dst);
    }

    /// <summary>One Score-CAM mask on the host (the arithmetic every backend reproduces).</summary>
    internal static void HostMask(ReadOnlySpan<float> channel, int h, int w, Span<float> mask, int bigH, int bigW,
        bool normalizeFirst, bool alignCorners, float eps)
    {
        if (normalizeFirst)
        {
            var low = channel.ToArray();
            NormalizeMask(low, eps);
            Resize.Bilinear(low, h, w, mask, bigH, bigW, alignCorners);
        }
        else
        {
            Resize.Bilinear(channel, h, w, mask, bigH, bigW, alignCorners);
            NormalizeMask(mask, eps);
        }
    }

    // (m - min) / (max - min + eps); a constant channel becomes all zeros.
    private static void NormalizeMask(Span<float> m, float eps)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in m)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        float range = max - min;
        if (range == 0)
        {
            m.Clear();
            return;
        }
        float denom = range + eps;
        for (int j = 0; j < m.Length; j++)
            m[j] = (m[j] - min) / denom;
    }

    protected virtual void MaskedInputsCore(Tensor x, Tensor masks, Tensor? noise, ReadOnlySpan<MaskedRow> rows, Tensor y,
        MaskedShape s)
    {
        var xs = Read(x.Storage, x.Length);
        var ms = Read(masks.Storage, masks.Length);
        var ns = noise != null ? Read(noise.Storage, noise.Length) : null;
        var r = new float[y.Length];
        for (int row = 0; row < rows.Length; row++)
        {
            var item = rows[row];
            HostMasked(xs.AsSpan(item.Image * s.Channels * s.Plane, s.Channels * s.Plane), ms.AsSpan(item.Mask * s.Plane, s.Plane),
                item.Noise >= 0 ? ns.AsSpan(item.Noise * s.Plane, s.Plane) : default, item.Scale,
                r.AsSpan(row * s.Channels * s.Plane, s.Channels * s.Plane));
        }
        Write(y.Storage, r);
    }

    /// <summary>Writes <c>scale * x * (mask + noise)</c> for one item: x (C, H, W), mask and noise (H, W) (the
    /// arithmetic of <see cref="CamMaps.Masked"/>).</summary>
    internal static void HostMasked(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, ReadOnlySpan<float> noise, float scale,
        Span<float> output)
    {
        int big = mask.Length;
        for (int ch = 0; ch * big < x.Length; ch++)
        {
            var xc = x.Slice(ch * big, big);
            var oc = output.Slice(ch * big, big);
            for (int j = 0; j < big; j++)
            {
                float m = noise.IsEmpty ? mask[j] : mask[j] + noise[j];
                oc[j] = scale == 1f ? xc[j] * m : scale * (xc[j] * m);
            }
        }
    }

    protected virtual void WindowedInputsCore(Tensor x, Tensor baseline, ReadOnlySpan<WindowRow> rows, Tensor y, MaskedShape s, int width)
    {
        var xs = Read(x.Storage, x.Length);
        var bs = Read(baseline.Storage, baseline.Length);
        var r = new float[y.Length];
        int size = s.Channels * s.Plane;
        for (int row = 0; row < rows.Length; row++)
        {
            var w = rows[row];
            var output = r.AsSpan(row * size, size);
            xs.AsSpan(w.Image * size, size).CopyTo(output);
            for (int c = 0; c < s.Channels; c++)
            {
                for (int yy = w.Y0; yy < w.Y1; yy++)
                {
                    int at = c * s.Plane + yy * width + w.X0;
                    bs.AsSpan(w.Image * size + at, w.X1 - w.X0).CopyTo(output.Slice(at, w.X1 - w.X0));
                }
            }
        }
        Write(y.Storage, r);
    }

    protected virtual void CamChannelWeightsCore(Tensor a, Tensor g, Tensor weights, CamWeightRule rule, double eps, int plane)
    {
        var av = Read(a.Storage, a.Length);
        var gv = Read(g.Storage, g.Length);
        var w = new float[weights.Length];
        for (int row = 0; row < w.Length; row++)
            w[row] = HostChannelWeight(av.AsSpan(row * plane, plane), gv.AsSpan(row * plane, plane), rule, eps);
        Write(weights.Storage, w);
    }

    /// <summary>One channel's weight on the host (the arithmetic of <see cref="CamMaps.ChannelWeights"/>).</summary>
    internal static float HostChannelWeight(ReadOnlySpan<float> a, ReadOnlySpan<float> g, CamWeightRule rule, double eps)
    {
        int plane = a.Length;
        if (rule == CamWeightRule.GradCam)
        {
            double s = 0;
            foreach (float v in g)
                s += v;
            return (float)(s / plane);
        }
        double sumA = 0, ga = 0;
        for (int j = 0; j < plane; j++)
        {
            ga += (double)g[j] * a[j];
            sumA += a[j];
        }
        if (rule == CamWeightRule.XGradCam)
        {
            double denom = sumA + eps;
            return denom == 0 ? 0 : (float)(ga / denom);
        }
        double w = 0;
        for (int j = 0; j < plane; j++)
        {
            double gj = g[j], g2 = gj * gj;
            double alpha;
            if (rule == CamWeightRule.GradCamPlusPlusSquared)
                alpha = g2;
            else if (g2 == 0)
                alpha = 0;
            else
            {
                double denom = 2 * g2 + sumA * (g2 * gj) + eps;
                alpha = denom == 0 ? 0 : g2 / denom;
            }
            w += alpha * Math.Max(gj, 0);
        }
        return (float)w;
    }

    protected virtual void WeightedChannelSumCore(Tensor a, Tensor weights, Tensor map, int channels, int plane)
    {
        var av = Read(a.Storage, a.Length);
        var w = Read(weights.Storage, weights.Length);
        var m = new float[map.Length];
        for (int n = 0; n < weights.Length / channels; n++)
        {
            var mn = m.AsSpan(n * plane, plane);
            for (int k = 0; k < channels; k++)
            {
                float wk = w[n * channels + k];
                var ak = av.AsSpan((n * channels + k) * plane, plane);
                for (int j = 0; j < plane; j++)
                    mn[j] += wk * ak[j];
            }
        }
        Write(map.Storage, m);
    }

    protected virtual void ProductChannelSumCore(Tensor a, Tensor g, Tensor map, int channels, int plane, bool reluGradient)
    {
        var av = Read(a.Storage, a.Length);
        var gv = Read(g.Storage, g.Length);
        var m = new float[map.Length];
        for (int n = 0; n < map.Length / plane; n++)
        {
            var mn = m.AsSpan(n * plane, plane);
            for (int k = 0; k < channels; k++)
            {
                int at = (n * channels + k) * plane;
                for (int j = 0; j < plane; j++)
                {
                    float gj = gv[at + j];
                    mn[j] += (reluGradient ? Math.Max(gj, 0f) : gj) * av[at + j];
                }
            }
        }
        Write(map.Storage, m);
    }
#pragma warning restore CS1591
}
