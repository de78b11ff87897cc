using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Deep Feature Factorization (Collins, Achanta and Süsstrunk, ECCV 2018, arXiv:1806.10206), as pytorch-grad-cam's
/// <c>dff()</c> and <c>DeepFeatureFactorization</c> compute it: the layer's activations A, as a (C, h*w) matrix minus
/// each channel's minimum, are factorized by non-negative matrix factorization into K concepts,
/// <code>A - offset ~ W H,   W: (C, K) concept vectors (plus the offset back),   H: (K, h*w) concept maps</code>
/// with scikit-learn's coordinate-descent NMF (random start |N(0,1)| sqrt(mean / K), tolerance 1e-4, 200 iterations).
/// Each concept is labelled with the classes the model's head scores highest on it: the head runs on a feature map
/// filled with the concept vector at every position (for a global-average-pool + linear head, exactly the linear
/// layer on the vector, as pytorch-grad-cam's <c>computation_on_concepts</c>), then a softmax. Each image is
/// factorized on its own (pytorch-grad-cam factorizes a batch jointly; a batch of one is the same). The random start
/// is drawn from <see cref="ExplainOptions.Seed"/> or replayed from <see cref="InitialW"/> and <see cref="InitialH"/>.
/// Outputs: <see cref="Explanation.Concepts"/> (each map min-max normalized then resized, as
/// pytorch-grad-cam's <c>scale_cam_image</c>); raw: the concept maps (K, h, w); map: per pixel the largest
/// normalized concept value, in [0, 1] with maximum 1 (the brightness of pytorch-grad-cam's drawing, which colours each pixel by the concept
/// that wins there: <see cref="ConceptOverlay"/>). Only the first layer is used.
/// </summary>
public sealed class DeepFeatureFactorization : CamMethod
{
    /// <inheritdoc/>
    public override string Name => "dff";

    /// <inheritdoc/>
    public override string Summary => "Deep Feature Factorization: NMF concepts of the layer, each with its top classes";

    /// <inheritdoc/>
    public override string Paper => "Collins et al., Deep Feature Factorization for Concept Discovery, ECCV 2018 (arXiv:1806.10206)";

    /// <inheritdoc/>
    public override bool UsesLayers => true;

    /// <inheritdoc/>
    internal override bool ReadsOnlyLayerSuffix => true;

    /// <summary>Number of concepts K.</summary>
    public int Components { get; init; } = 5;

    /// <summary>Classes kept per concept.</summary>
    public int TopK { get; init; } = 2;

    /// <summary>Most NMF iterations.</summary>
    public int MaxIterations { get; init; } = 200;

    /// <summary>NMF's starting concept vectors (C, K) to replay; null draws them (with <see cref="InitialH"/>).</summary>
    public float[]? InitialW { get; init; }

    /// <summary>NMF's starting maps (K, h*w) to replay; null draws them.</summary>
    public float[]? InitialH { get; init; }

    /// <inheritdoc/>
    public override IReadOnlyList<MethodParameter> Parameters =>
    [
        new("concepts", "5", "number of concepts K, an integer >= 1"),
        new("top", "2", "classes listed per concept, an integer >= 1"),
        new("iterations", "200", "most NMF iterations, an integer >= 1"),
    ];

    private protected override CamMethod Configure(ParameterValues values) => new DeepFeatureFactorization
    {
        Components = values.Int("concepts", Components, 1), TopK = values.Int("top", TopK, 1),
        MaxIterations = values.Int("iterations", MaxIterations, 1), InitialW = InitialW, InitialH = InitialH,
    };

    internal override IReadOnlyList<Explanation> Run(ExplainContext context)
    {
        var model = context.Model;
        var layer = context.Layers[0];
        var shape = context.GridShape(0);
        int c = shape[0], hh = shape[1], ww = shape[2], plane = hh * ww, size = c * plane, k = Components, n = context.Batch;
        if ((InitialW == null) != (InitialH == null)
            || (InitialW != null && (InitialW.Length != c * k || InitialH!.Length != k * plane)))
            throw new CamEngineException($"dff: a replayed start needs W ({c}x{k}) and H ({k}x{plane})");
        var a = context.Activations(0); // (N, C, h, w) through the layer's layout
        var concepts = new double[n][];
        var maps = new double[n][];
        for (int i = 0; i < n; i++)
            (concepts[i], maps[i]) = Factorize(context, a.AsSpan(i * size, size), c, plane, k, i);
        var scores = ConceptScores(context, shape, concepts);

        var input = model.Graph.InputShape;
        int bigH = input[1], bigW = input[2];
        var result = new List<Explanation>();
        for (int i = 0; i < n; i++)
        {
            var list = new List<Concept>();
            var best = new float[bigH * bigW];
            for (int t = 0; t < k; t++)
            {
                var m = new float[plane];
                for (int j = 0; j < plane; j++)
                    m[j] = (float)maps[i][t * plane + j];
                MapOps.MinMaxNormalize(m);
                var up = Resize.Bilinear(new HostTensor([hh, ww], m), bigH, bigW);
                for (int j = 0; j < best.Length; j++)
                    best[j] = Math.Max(best[j], up.Data[j]);
                var vector = new float[c];
                for (int ch = 0; ch < c; ch++)
                    vector[ch] = (float)concepts[i][ch * k + t];
                var (top, prob) = Top(scores[i * k + t], TopK);
                list.Add(new Concept { Map = up, Vector = vector, TopClasses = top, TopProbabilities = prob });
            }
            result.Add(new Explanation
            {
                Image = i,
                Method = Name,
                TargetClass = context.Classes[i],
                Score = context.Scores[i],
                Layers = [layer.Output],
                Raw = new HostTensor([k, hh, ww], maps[i].Select(v => (float)v).ToArray()),
                Map = new HostTensor([bigH, bigW], best),
                Concepts = list,
            });
        }
        return result;
    }

    // Concept vectors (C, K) with the offset added back, and maps (K, plane), of one image's activations (C, plane).
    private (double[] Concepts, double[] Maps) Factorize(ExplainContext context, ReadOnlySpan<float> a, int c, int plane, int k, int row)
    {
        var x = new double[c * plane];
        var offset = new double[c];
        double mean = 0;
        for (int ch = 0; ch < c; ch++)
        {
            double min = double.PositiveInfinity;
            for (int j = 0; j < plane; j++)
                min = Math.Min(min, a[ch * plane + j]);
            offset[ch] = min;
            for (int j = 0; j < plane; j++)
                mean += x[ch * plane + j] = a[ch * plane + j] - min;
        }
        mean /= x.Length;
        var w = new double[c * k];
        var h = new double[k * plane];
        if (InitialW != null)
        {
            for (int j = 0; j < w.Length; j++)
                w[j] = InitialW[j];
            for (int j = 0; j < h.Length; j++)
                h[j] = InitialH![j];
        }
        else
        {
            // scikit-learn's init='random': H first, then W, |N(0, 1)| * sqrt(mean / K).
            var rng = context.NewRandom(unchecked(0x44464600 + row));
            double avg = Math.Sqrt(mean / k);
            for (int j = 0; j < h.Length; j++)
                h[j] = Math.Abs(avg * Perturbation.Gaussian(rng));
            for (int j = 0; j < w.Length; j++)
                w[j] = Math.Abs(avg * Perturbation.Gaussian(rng));
        }
        Nmf.Factorize(x, c, plane, w, h, k, MaxIterations, 1e-4);
        for (int ch = 0; ch < c; ch++)
        {
            for (int t = 0; t < k; t++)
                w[ch * k + t] += offset[ch];
        }
        return (w, h);
    }

    // The head's output on a feature map filled with each concept vector: row i * K + t.
    private float[][] ConceptScores(ExplainContext context, int[] shape, double[][] concepts)
    {
        var model = context.Model;
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane, k = Components, count = context.Batch * k;
        int batch = Math.Max(1, context.PerturbationBatch);
        var outputs = new float[count][];
        var buffer = new float[Math.Min(batch, count) * size];
        for (int start = 0; start < count; start += batch)
        {
            int m = Math.Min(batch, count - start);
            var rows = new int[m];
            for (int r = 0; r < m; r++)
            {
                int item = start + r, i = item / k, t = item % k;
                rows[r] = i;
                for (int ch = 0; ch < c; ch++)
                    buffer.AsSpan(r * size + ch * plane, plane).Fill((float)concepts[i][ch * k + t]);
            }
            using var pass = context.ForwardFromGrid(0, buffer, m, rows);
            var y = model.Backend.Download(pass.Output);
            int classes = y.Length / m;
            for (int r = 0; r < m; r++)
                outputs[start + r] = y.AsSpan(r * classes, classes).ToArray();
        }
        return outputs;
    }

    // The top classes of one output row by softmax probability.
    private static (int[] Classes, float[] Probabilities) Top(float[] logits, int top)
    {
        var p = StableSoftmax.Probabilities(logits);
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(j => p[j]).ThenBy(j => j).Take(top).ToArray();
        return (order, order.Select(j => (float)p[j]).ToArray());
    }
}
