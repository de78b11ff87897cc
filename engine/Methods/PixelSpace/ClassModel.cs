using CamEngine.Graph;
using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Class model visualization (Simonyan, Vedaldi and Zisserman, 2014, arXiv:1312.6034, section 2): the image
/// that maximizes the class score under an L2 penalty, by gradient ascent from the zero image,
/// <code>I* = argmax_I S_c(I) - lambda |I|^2;   I_{t+1} = I_t + lr (dS_c/dI - 2 lambda I_t)</code>
/// in the model's normalized input space, all images of the batch (one per target class) at once. The input
/// image only chooses the class. Raw: the synthesized image (C, H, W); Map: its per-pixel magnitude
/// <c>sqrt(sum_c I_c^2)</c>, min-max normalized. <see cref="ToPicture"/> turns the image back into pixels with the
/// model's own preprocessing; the CLI writes that picture as the PNG.
/// </summary>
public sealed class ClassModel : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "class-model";

    /// <inheritdoc/>
    public override string Summary => "Class model visualization: the image synthesized by gradient ascent on the class score";

    /// <inheritdoc/>
    public override string Paper => "Simonyan et al., Deep Inside Convolutional Networks, ICLR 2014 workshop (arXiv:1312.6034)";

    /// <inheritdoc/>
    public override bool UsesLayers => false;

    /// <summary>Gradient-ascent steps.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Step size.</summary>
    public float LearningRate { get; init; } = 1f;

    /// <summary>L2 penalty weight (lambda).</summary>
    public float L2 { get; init; } = 0.05f;

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("steps", "100", "gradient-ascent steps, an integer >= 0"),
        new("lr", "1", "step size, > 0"),
        new("l2", "0.05", "L2 penalty weight (lambda), >= 0"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new ClassModel
    {
        Steps = values.Int("steps", Steps, 0), LearningRate = values.Float("lr", LearningRate, 0, inclusive: false),
        L2 = values.Float("l2", L2, 0),
    };

    /// <summary>Runs the ascent for each image's target class; returns the images (N, C, H, W) and the objective
    /// <c>S_c - lambda |I|^2</c> of every image before each step and after the last (Steps + 1 values each).</summary>
    internal (float[] Images, double[][] Objective) Synthesize(ExplainContext context)
    {
        if (Steps < 0 || !(LearningRate > 0) || !(L2 >= 0))
            throw new CamEngineException($"class-model needs steps >= 0, a positive learning rate and lambda >= 0");
        var model = context.Model;
        var shape = model.Graph.InputShape;
        int n = context.Batch, size = shape[0] * shape[1] * shape[2];
        var images = new float[n * size];
        var objective = Enumerable.Range(0, n).Select(_ => new double[Steps + 1]).ToArray();
        for (int step = 0; step <= Steps; step++)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            using var x = model.Backend.Upload(images, [n, .. shape]);
            using var pass = model.Forward(x);
            var y = model.Backend.Download(pass.Output);
            int k = y.Length / n;
            var seed = new float[y.Length];
            for (int i = 0; i < n; i++)
            {
                double norm = 0;
                for (int j = 0; j < size; j++)
                    norm += (double)images[i * size + j] * images[i * size + j];
                objective[i][step] = context.Score(i, y.AsSpan(i * k, k)) - L2 * norm;
                context.ScoreGradient(i, y.AsSpan(i * k, k), seed.AsSpan(i * k, k));
            }
            if (step == Steps)
                break;
            using var seedTensor = model.Backend.Upload(seed, pass.Output.Shape);
            using var grads = model.Backward(pass, seedTensor, new BackwardRequest { Input = true });
            var g = model.Backend.Download(grads.Input!);
            context.Plan.Record(Reruns.Gradient, n, t0); // one forward and reverse pass per step, timed for the run's breakdown
            for (int j = 0; j < images.Length; j++)
                images[j] += LearningRate * (g[j] - 2 * L2 * images[j]);
        }
        return (images, objective);
    }

    /// <summary>Byte levels that the 99th percentile of |pattern| is stretched to when the pattern is fainter.</summary>
    internal const float PatternLevels = 96f;

    /// <summary>
    /// The synthesized image <paramref name="raw"/> (C, H, W), in the model's normalized input space, as an RGB
    /// picture, undoing every field of <paramref name="p"/> (<see cref="ImagePreprocessor.Normalize(RgbImage, Preprocessing)"/>):
    /// the byte value of colour channel src(c) is <c>(raw[c] * Std[c] + Mean[c] + MeanImage[c]) / Scale</c>, with src(c)
    /// = c for RGB and 2 - c for BGR models; one channel becomes grey. That value is <c>base + d</c>: the picture
    /// of the zero image (the mean colour, or the mean image) plus the synthesized pattern d = raw * Std / Scale. On
    /// models fed bytes (Scale 1, e.g. the Caffe/CNTK ResNet-18), the L2 penalty keeps d within a fraction of a byte
    /// level, which would show the mean image alone; so d is multiplied by
    /// <c>gain = max(1, PatternLevels / p99(|d|))</c> (p99: numpy's linear 99th percentile over all values), a
    /// gain of 1 when the pattern is already visible. Rounded half away from zero, clamped to [0, 255].
    /// </summary>
    internal static RgbImage ToPicture(HostTensor raw, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentNullException.ThrowIfNull(p);
        var s = raw.Shape;
        int c = p.Mean.Length;
        if (s.Length != 3 || s[0] != c || (c != 3 && c != 1) || p.Std.Length != c)
            throw new CamEngineException($"class-model image {raw.ShapeText} does not fit the model's {c}-channel preprocessing");
        if (!(p.Scale > 0) || !float.IsFinite(p.Scale))
            throw new CamEngineException($"invalid preprocessing scale {p.Scale}");
        int h = s[1], w = s[2], plane = h * w;
        float[]? meanImage = null;
        if (p.MeanImage != null)
        {
            var m = p.MeanImageTensor ?? throw new CamEngineException(
                $"the preprocessing adds mean image '{p.MeanImage}', but its values are not attached (load the model with ModelFile)");
            if (!TensorShape.Equal(m.Shape, [c, h, w]))
                throw new CamEngineException($"mean image '{p.MeanImage}' has shape {m.ShapeText}, the image is ({c}, {h}, {w})");
            meanImage = m.Data;
        }
        double factor = 1.0 / p.Scale;
        var pattern = new float[c * plane];
        var magnitude = new float[c * plane];
        for (int ch = 0; ch < c; ch++)
        {
            for (int j = 0; j < plane; j++)
            {
                pattern[ch * plane + j] = (float)(raw.Data[ch * plane + j] * (double)p.Std[ch] * factor);
                magnitude[ch * plane + j] = Math.Abs(pattern[ch * plane + j]);
            }
        }
        MapOps.EnsureFinite(pattern, "class-model image");
        float p99 = Overlay.TopThreshold(magnitude, 1);
        double gain = p99 > 0 ? Math.Max(1.0, PatternLevels / p99) : 1.0;
        var dst = new byte[plane * 3];
        for (int ch = 0; ch < c; ch++)
        {
            int to = c == 3 ? p.SourceChannel(ch) : 0;
            for (int j = 0; j < plane; j++)
            {
                double zero = (p.Mean[ch] + (meanImage?[ch * plane + j] ?? 0)) * factor;
                double v = zero + gain * pattern[ch * plane + j];
                byte b = (byte)Math.Clamp(Math.Round(v, MidpointRounding.AwayFromZero), 0, 255);
                if (c == 3)
                    dst[3 * j + to] = b;
                else
                    dst[3 * j] = dst[3 * j + 1] = dst[3 * j + 2] = b;
            }
        }
        return new RgbImage(w, h, dst);
    }

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var (images, _) = Synthesize(context);
        var shape = context.Model.Graph.InputShape;
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        var result = new List<Explanation>();
        for (int i = 0; i < context.Batch; i++)
        {
            var raw = images.AsSpan(i * size, size).ToArray();
            var map = new float[plane];
            for (int j = 0; j < plane; j++)
            {
                double s = 0;
                for (int ch = 0; ch < c; ch++)
                    s += (double)raw[ch * plane + j] * raw[ch * plane + j];
                map[j] = (float)Math.Sqrt(s);
            }
            Imaging.MapOps.EnsureFinite(raw, $"class-model image {i}");
            Imaging.MapOps.MinMaxNormalize(map);
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = [],
                Raw = new HostTensor([c, shape[1], shape[2]], raw),
                Map = new HostTensor([shape[1], shape[2]], map),
            });
        }
        return result;
    }
}
