using CamEngine.Backends;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Occlusion (Zeiler and Fergus, ECCV 2014, arXiv:1311.2901), exactly as Captum's <c>Occlusion.attribute</c> with a
/// window that covers every channel: a <see cref="Window"/> x <see cref="Window"/> patch slides with
/// <see cref="Stride"/> (ceil((H - window) / stride) + 1 positions per axis, the last one clipped at the border), each
/// position is set to the <see cref="Baseline"/> and the model re-scored, and each pixel's attribution is the mean,
/// over the windows that cover it, of
/// <code>a(p) = mean_{windows W containing p} [ y(x) - y(x with W set to the baseline) ]</code>
/// The occluded inputs go through the shared perturbation batching. Raw: the signed (H, W) attribution; map:
/// ReLU, then min-max.
/// </summary>
public sealed class Occlusion : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "occlusion";

    /// <inheritdoc/>
    public override string Summary => "Occlusion: score drop when a sliding window is set to a baseline, averaged per pixel";

    /// <inheritdoc/>
    public override string Paper => "Zeiler and Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 (arXiv:1311.2901)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Forward;

    /// <summary>Side of the square window, in input pixels.</summary>
    public int Window { get; init; } = 16;

    /// <summary>Step between window positions, in input pixels (at most <see cref="Window"/>).</summary>
    public int Stride { get; init; } = 8;

    /// <summary>What the window is set to.</summary>
    public InputBaselineKind Baseline { get; init; } = InputBaselineKind.Zero;

    /// <summary>Standard deviation, in pixels, of the blur baseline.</summary>
    public double Sigma { get; init; } = 5;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("window", "16", "side of the square occlusion window in input pixels, an integer >= 1"),
        new("stride", "8", "step between window positions in input pixels, 1 to window"),
        new("baseline", "zero", "what the window is set to: zero (normalized input space), mean (each channel's image mean) or blur"),
        new("sigma", "5", "standard deviation in pixels of the blur baseline's Gaussian, > 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new Occlusion
    {
        Window = values.Int("window", Window, 1), Stride = values.Int("stride", Stride, 1),
        Baseline = values.Enum("baseline", Baseline), Sigma = values.Double("sigma", Sigma, 0, inclusive: false),
    };

    /// <summary>Window positions along an axis of <paramref name="size"/> pixels, as Captum counts them.</summary>
    internal static int Positions(int size, int window, int stride)
    {
        if (window > size)
            throw new CamEngineException($"occlusion window {window} exceeds the input side {size}");
        if (size > window && stride > window)
            throw new CamEngineException($"occlusion stride {stride} exceeds the window {window}");
        return (size - window + stride - 1) / stride + 1;
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var shape = context.Model.Graph.InputShape;
        int ch = shape[0], h = shape[1], w = shape[2], plane = h * w, size = ch * plane, n = context.Batch;
        int py = Positions(h, Window, Stride), px = Positions(w, Window, Stride), windows = py * px;
        var x = Perturbation.Inputs(context);
        var baselines = new float[n][];
        for (int i = 0; i < n; i++)
            baselines[i] = InputBaselines.Make(Baseline, x.AsSpan(i * size, size), ch, h, w, Sigma);
        (int Y0, int Y1, int X0, int X1) Box(int k)
        {
            int y0 = k / px * Stride, x0 = k % px * Stride;
            return (y0, Math.Min(y0 + Window, h), x0, Math.Min(x0 + Window, w));
        }
        // The windowed inputs are built on the device from the input and the baselines (which go up once).
        var backend = context.Model.Backend;
        var flat = new float[n * size];
        for (int i = 0; i < n; i++)
            baselines[i].CopyTo(flat, i * size);
        using var deviceBaselines = backend.Upload(flat, [n, .. shape]);
        var scores = DeviceMasked.Scores(context, n * windows, item =>
            {
                var (y0, y1, x0, x1) = Box(item % windows);
                return new WindowRow(item / windows, y0, y1, x0, x1);
            }, row => row.Image, row => IsZero(x.AsSpan(row.Image * size, size), baselines[row.Image], row, plane, w),
            (rows, batch) => backend.WindowedInputs(context.Forward.Input, deviceBaselines, rows, batch));
        var outputs = context.Backend.Download(context.Forward.Output);
        int classes = outputs.Length / n;
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            float y = context.Score(i, outputs.AsSpan(i * classes, classes));
            var total = new double[plane];
            var count = new int[plane];
            for (int k = 0; k < windows; k++)
            {
                double drop = y - scores[i * windows + k];
                var (y0, y1, x0, x1) = Box(k);
                for (int yy = y0; yy < y1; yy++)
                {
                    for (int xx = x0; xx < x1; xx++)
                    {
                        total[yy * w + xx] += drop;
                        count[yy * w + xx]++;
                    }
                }
            }
            var raw = new float[plane];
            for (int j = 0; j < plane; j++)
                raw[j] = (float)(total[j] / count[j]);
            result.Add(PixelExplanation(this, context, i, new HostTensor([h, w], raw)));
        }
        return result;
    }

    /// <summary>An explanation whose raw map (H, W) is at input resolution: map = ReLU, then min-max.</summary>
    internal static Explanation PixelExplanation(CamMethod method, ExplainContext context, int image, HostTensor raw)
    {
        var shape = context.Model.Graph.InputShape;
        return new Explanation
        {
            Image = image,
            Method = method.Name,
            TargetClass = context.Classes[image],
            Score = context.Scores[image],
            Layers = [],
            Raw = raw,
            Map = CamPostprocess.Finish([raw], shape[1], shape[2], context.Convention, context.Fusion, $"{method.Name} map of image {image}"),
        };
    }

    /// <summary>True when the windowed input of <paramref name="row"/> is all zero: x outside the window and the
    /// baseline inside it.</summary>
    private static bool IsZero(ReadOnlySpan<float> x, ReadOnlySpan<float> baseline, WindowRow row, int plane, int width)
    {
        for (int j = 0; j < x.Length; j++)
        {
            int p = j % plane, py = p / width, px = p % width;
            bool inside = py >= row.Y0 && py < row.Y1 && px >= row.X0 && px < row.X1;
            if ((inside ? baseline[j] : x[j]) != 0f)
                return false;
        }
        return true;
    }
}
