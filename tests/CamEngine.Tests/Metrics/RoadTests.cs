using CamEngine.Graph;
using CamEngine.Methods;
using CamEngine.Metrics;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Metrics;

/// <summary>ROAD: the noisy linear imputation against a dense direct solve, the percentile semantics, and the
/// score on a hand case.</summary>
[TestFixture]
public sealed class RoadTests
{
    private static readonly (int Dy, int Dx, double W)[] s_stencil =
    [
        (-1, -1, 1.0 / 12), (-1, 0, 1.0 / 6), (-1, 1, 1.0 / 12), (0, -1, 1.0 / 6),
        (0, 1, 1.0 / 6), (1, -1, 1.0 / 12), (1, 0, 1.0 / 6), (1, 1, 1.0 / 12),
    ];

    /// <summary>The imputation equations written densely and solved by Gaussian elimination with partial pivoting.</summary>
    private static double[] DenseImpute(float[] plane, bool[] removed, int h, int w)
    {
        var unknowns = Enumerable.Range(0, h * w).Where(p => removed[p]).ToArray();
        int m = unknowns.Length;
        var index = new Dictionary<int, int>();
        for (int i = 0; i < m; i++)
            index[unknowns[i]] = i;
        var a = new double[m, m + 1];
        for (int i = 0; i < m; i++)
        {
            int y = unknowns[i] / w, x = unknowns[i] % w;
            foreach (var (dy, dx, wt) in s_stencil)
            {
                int ny = y + dy, nx = x + dx;
                if (ny < 0 || nx < 0 || ny >= h || nx >= w)
                    continue;
                a[i, i] += wt; // the renormalizing sum of in-image weights
                int q = ny * w + nx;
                if (removed[q])
                    a[i, index[q]] -= wt;
                else
                    a[i, m] += wt * plane[q];
            }
        }
        for (int col = 0; col < m; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < m; r++)
            {
                if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col]))
                    pivot = r;
            }
            for (int k = 0; k <= m; k++)
                (a[col, k], a[pivot, k]) = (a[pivot, k], a[col, k]);
            for (int r = col + 1; r < m; r++)
            {
                double f = a[r, col] / a[col, col];
                for (int k = col; k <= m; k++)
                    a[r, k] -= f * a[col, k];
            }
        }
        var x0 = new double[m];
        for (int i = m - 1; i >= 0; i--)
        {
            double s = a[i, m];
            for (int k = i + 1; k < m; k++)
                s -= a[i, k] * x0[k];
            x0[i] = s / a[i, i];
        }
        return x0;
    }

    [Test]
    public void Conjugate_gradient_imputation_matches_a_dense_direct_solve_on_an_8x8_random_mask()
    {
        const int h = 8, w = 8, c = 3;
        var rng = new Random(11);
        var image = TensorAssert.Random(rng, c * h * w, 2f);
        var removed = Enumerable.Range(0, h * w).Select(_ => rng.NextDouble() < 0.45).ToArray();
        Assert.That(removed.Count(r => r), Is.InRange(20, 40), "a mask with border and interior holes");
        var imputed = NoisyLinearImputation.Impute(image, c, h, w, removed, 0, null);
        for (int ch = 0; ch < c; ch++)
        {
            var plane = image.AsSpan(ch * h * w, h * w).ToArray();
            var expected = DenseImpute(plane, removed, h, w);
            var got = Enumerable.Range(0, h * w).Where(p => removed[p]).Select(p => imputed[ch * h * w + p]).ToArray();
            TensorAssert.Close(got, expected, 1e-5, 1e-5, $"channel {ch}: CG vs Gaussian elimination");
            for (int p = 0; p < h * w; p++)
            {
                if (!removed[p])
                    Assert.That(imputed[ch * h * w + p], Is.EqualTo(plane[p]), "kept pixels are unchanged");
            }
        }
        // The defining property: every imputed pixel is the renormalized weighted mean of its in-image neighbours.
        for (int p = 0; p < h * w; p++)
        {
            if (!removed[p])
                continue;
            double s = 0, total = 0;
            foreach (var (dy, dx, wt) in s_stencil)
            {
                int ny = p / w + dy, nx = p % w + dx;
                if (ny < 0 || nx < 0 || ny >= h || nx >= w)
                    continue;
                s += wt * imputed[ny * w + nx];
                total += wt;
            }
            Assert.That(imputed[p], Is.EqualTo(s / total).Within(1e-5), $"pixel {p}");
        }
    }

    [Test]
    public void Multigrid_path_matches_a_dense_direct_solve_on_a_24x24_hole_with_scattered_pixels()
    {
        // An 18x18 hole (radius 9, above the multigrid threshold) plus scattered pixels, some at the border.
        const int h = 24, w = 24, c = 2;
        var rng = new Random(31);
        var image = TensorAssert.Random(rng, c * h * w, 2f);
        var removed = Enumerable.Range(0, h * w)
            .Select(p => (p / w is >= 3 and < 21 && p % w is >= 3 and < 21) || rng.NextDouble() < 0.15).ToArray();
        Assert.That(new NoisyLinearImputation.SparseSystem(removed, h, w).Depth,
            Is.GreaterThan(NoisyLinearImputation.MultigridDepth), "the multigrid path is taken");
        var imputed = NoisyLinearImputation.Impute(image, c, h, w, removed, 0, null);
        for (int ch = 0; ch < c; ch++)
        {
            var expected = DenseImpute(image.AsSpan(ch * h * w, h * w).ToArray(), removed, h, w);
            var got = Enumerable.Range(0, h * w).Where(p => removed[p]).Select(p => imputed[ch * h * w + p]).ToArray();
            TensorAssert.Close(got, expected, 1e-5, 1e-5, $"channel {ch}: multigrid-preconditioned CG vs Gaussian elimination");
        }
    }

    /// <summary>
    /// The imputation equations applied by the stencil on the whole grid and solved by unpreconditioned conjugate
    /// gradients to a relative residual of 1e-14: a reference independent of the engine's CSR system and its
    /// preconditioners. Returns the solution at the removed pixels, in pixel order.
    /// </summary>
    private static double[] StencilConjugateGradient(float[] plane, bool[] removed, int h, int w)
    {
        int n = h * w;
        void Apply(double[] v, double[] result, bool homogeneous)
        {
            for (int p = 0; p < n; p++)
            {
                if (!removed[p])
                {
                    result[p] = 0;
                    continue;
                }
                double s = 0;
                foreach (var (dy, dx, wt) in s_stencil)
                {
                    int ny = p / w + dy, nx = p % w + dx;
                    if (ny < 0 || nx < 0 || ny >= h || nx >= w)
                        continue;
                    int q = ny * w + nx;
                    s += homogeneous ? wt * (v[p] - (removed[q] ? v[q] : 0)) : (removed[q] ? 0 : wt * plane[q]);
                }
                result[p] = s;
            }
        }
        static double Dot(double[] a, double[] b) => a.Select((v, i) => v * b[i]).Sum();
        var b = new double[n];
        Apply(b, b, false);
        var x = new double[n];
        var r = (double[])b.Clone();
        var d = (double[])b.Clone();
        var ad = new double[n];
        double rr = Dot(r, r), stop = 1e-28 * rr;
        for (int it = 0; it < 100_000 && rr > stop; it++)
        {
            Apply(d, ad, true);
            double alpha = rr / Dot(d, ad);
            for (int p = 0; p < n; p++)
            {
                x[p] += alpha * d[p];
                r[p] -= alpha * ad[p];
            }
            double next = Dot(r, r);
            for (int p = 0; p < n; p++)
                d[p] = r[p] + next / rr * d[p];
            rr = next;
        }
        Assert.That(rr, Is.LessThanOrEqualTo(stop), "the reference converged");
        return Enumerable.Range(0, n).Where(p => removed[p]).Select(p => x[p]).ToArray();
    }

    [Test]
    public void Multigrid_preconditioned_imputation_of_a_90_percent_block_matches_a_tight_reference_solve()
    {
        // A 61x61 hole in the corner of a 64x64 image (90.8%): border rows/columns renormalized, kept pixels only
        // along two sides, a hole radius far above the multigrid threshold.
        const int h = 64, w = 64, c = 3;
        var rng = new Random(17);
        var image = TensorAssert.Random(rng, c * h * w, 2f);
        var removed = Enumerable.Range(0, h * w).Select(p => p / w < 61 && p % w < 61).ToArray();
        var system = new NoisyLinearImputation.SparseSystem(removed, h, w);
        Assert.That(system.Depth, Is.GreaterThan(NoisyLinearImputation.MultigridDepth), "the multigrid path is taken");
        var imputed = NoisyLinearImputation.Impute(image, c, h, w, removed, 0, null);
        var rhs = new double[system.Count];
        var jacobi = new double[system.Count];
        var multigrid = new double[system.Count];
        var preconditioner = system.CreateMultigrid();
        Assert.That(preconditioner.LevelCount, Is.GreaterThanOrEqualTo(3));
        for (int ch = 0; ch < c; ch++)
        {
            var plane = image.AsSpan(ch * h * w, h * w).ToArray();
            var expected = StencilConjugateGradient(plane, removed, h, w);
            var got = Enumerable.Range(0, h * w).Where(p => removed[p]).Select(p => imputed[ch * h * w + p]).ToArray();
            TensorAssert.Close(got, expected, 1e-4, 1e-4, $"channel {ch}: imputation vs the stencil reference");
            system.RightHandSide(plane, rhs);
            int jacobiSteps = ConjugateGradient.Solve(system.Multiply, system.Diagonal, rhs, jacobi, 1e-10, 100_000);
            int multigridSteps = ConjugateGradient.Solve(system.Multiply, preconditioner.Apply, rhs, multigrid, 1, 1e-10, 100_000);
            TensorAssert.Close(multigrid, expected, 1e-6, 1e-6, $"channel {ch}: multigrid-preconditioned CG");
            TensorAssert.Close(jacobi, expected, 1e-6, 1e-6, $"channel {ch}: Jacobi-preconditioned CG");
            Assert.That(multigridSteps, Is.LessThan(jacobiSteps / 4), $"channel {ch}: {multigridSteps} V-cycle vs {jacobiSteps} Jacobi steps");
        }
    }

    [Test]
    public void Multigrid_preconditioner_is_symmetric_and_positive_definite_on_an_irregular_mask()
    {
        // Two blobs, one touching the border, and scattered single pixels: aggregates with disconnected members.
        const int h = 40, w = 37;
        var rng = new Random(23);
        var removed = Enumerable.Range(0, h * w).Select(p =>
        {
            int y = p / w, x = p % w;
            return (y - 15) * (y - 15) + (x - 12) * (x - 12) < 120 || (y > 28 && x > 20) || rng.NextDouble() < 0.2;
        }).ToArray();
        var system = new NoisyLinearImputation.SparseSystem(removed, h, w);
        var b = system.CreateMultigrid();
        int m = system.Count;
        var u = TensorAssert.Random(rng, m).Select(e => (double)e).ToArray();
        var v = TensorAssert.Random(rng, m).Select(e => (double)e).ToArray();
        var bu = new double[m];
        var bv = new double[m];
        b.Apply(u, bu);
        b.Apply(v, bv);
        double vbu = v.Select((x, i) => x * bu[i]).Sum(), ubv = u.Select((x, i) => x * bv[i]).Sum();
        Assert.That(vbu, Is.EqualTo(ubv).Within(1e-10 * Math.Abs(ubv)), "v.Bu = u.Bv");
        Assert.That(u.Select((x, i) => x * bu[i]).Sum(), Is.GreaterThan(0));
        Assert.That(v.Select((x, i) => x * bv[i]).Sum(), Is.GreaterThan(0));
    }

    [Test]
    public void Imputation_noise_is_seeded_with_the_stated_deviation_and_a_fully_removed_image_becomes_noise()
    {
        const int h = 32, w = 32;
        var rng = new Random(5);
        var image = TensorAssert.Random(rng, h * w);
        var removed = Enumerable.Range(0, h * w).Select(p => p % 3 != 0).ToArray();
        var clean = NoisyLinearImputation.Impute(image, 1, h, w, removed, 0, null);
        var a = NoisyLinearImputation.Impute(image, 1, h, w, removed, 0.01, new Random(3));
        var b = NoisyLinearImputation.Impute(image, 1, h, w, removed, 0.01, new Random(3));
        var other = NoisyLinearImputation.Impute(image, 1, h, w, removed, 0.01, new Random(4));
        Assert.That(a, Is.EqualTo(b), "same seed, same numbers");
        Assert.That(a, Is.Not.EqualTo(other));
        var noise = Enumerable.Range(0, h * w).Where(p => removed[p]).Select(p => (double)a[p] - clean[p]).ToArray();
        double std = Math.Sqrt(noise.Average(v => v * v));
        Assert.That(std, Is.EqualTo(0.01).Within(0.001), "noise standard deviation");
        var all = NoisyLinearImputation.Impute(image, 1, h, w, Enumerable.Repeat(true, h * w).ToArray(), 0, null);
        Assert.That(all.All(v => v == 0), Is.True, "nothing to interpolate from: the normalized mean colour");
    }

    [Test]
    public void Percentiles_follow_numpy_and_morf_removes_the_top_and_lerf_the_bottom()
    {
        Assert.That(MetricEvaluator.Percentile([3.0, 1, 2, 4], 50), Is.EqualTo(2.5));
        Assert.That(MetricEvaluator.Percentile([0.0, 10], 80), Is.EqualTo(8).Within(1e-12));
        var map = Enumerable.Range(0, 10).Select(v => v / 9f).ToArray();
        // p = 80: position 7.2 of 0..9, so the 20% above it (values 8 and 9) go for MoRF, values 0 and 1 for LeRF.
        Assert.That(MetricEvaluator.RoadMask(map, 80, false).Select((r, i) => r ? i : -1).Where(i => i >= 0), Is.EqualTo(new[] { 8, 9 }));
        Assert.That(MetricEvaluator.RoadMask(map, 80, true).Select((r, i) => r ? i : -1).Where(i => i >= 0), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(MetricEvaluator.RoadMask(map, 10, false).Count(r => r), Is.EqualTo(9));
    }

    [Test]
    public void Road_scores_a_hand_case_exactly()
    {
        // 5x5 image, zero except: centre 100, its direct neighbours 6, its diagonals 12, the corner (0, 0) 50.
        var x = new float[25];
        x[12] = 100;
        foreach (int p in new[] { 7, 11, 13, 17 })
            x[p] = 6;
        foreach (int p in new[] { 6, 8, 16, 18 })
            x[p] = 12;
        x[0] = 50;
        // Map 0.5 except the centre (1, the most relevant) and the corner (0, the least).
        var map = Enumerable.Repeat(0.5f, 25).ToArray();
        map[12] = 1;
        map[0] = 0;
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(5, 5), TestDevice.Ilgpu);
        var metrics = new MetricEvaluator(new Explainer(model));
        var options = new RoadOptions { Percentiles = [99], Noise = 0, Score = MetricScore.Logit };
        var r = metrics.Road(new HostTensor([1, 1, 5, 5], x), [LinearModel.Map(0, 0, 5, 5, map)], options);
        // Score = mean pixel = 222 / 25. MoRF imputes the centre: 4 (1/6) 6 + 4 (1/12) 12 = 8.
        // LeRF imputes the corner from (0,1) = 0, (1,0) = 0, (1,1) = 12 with weights renormalized by 5/12: 2.4.
        Assert.That(r.Original[0], Is.EqualTo(8.88).Within(1e-5));
        Assert.That(r.MostRelevantFirst[0][0], Is.EqualTo(130 / 25.0).Within(1e-5));
        Assert.That(r.LeastRelevantFirst[0][0], Is.EqualTo(174.4 / 25).Within(1e-5));
        Assert.That(r.MeanMostRelevantFirst, Is.EqualTo(-3.68).Within(1e-5));
        Assert.That(r.MeanLeastRelevantFirst, Is.EqualTo(-1.904).Within(1e-5));
        Assert.That(r.MeanCombined, Is.EqualTo(0.888).Within(1e-5));
    }

    [Test]
    public void Road_is_deterministic_with_the_seed_and_batched_the_same_way_at_any_batch_size()
    {
        using var model = DeviceModel.Load(LinearModel.PlusMinusMean(6, 6), TestDevice.Ilgpu);
        var metrics = new MetricEvaluator(new Explainer(model));
        var rng = new Random(2);
        var input = new HostTensor([2, 1, 6, 6], TensorAssert.Random(rng, 72));
        var maps = new[]
        {
            LinearModel.Map(0, 0, 6, 6, TensorAssert.Random(rng, 36).Select(Math.Abs).ToArray()),
            LinearModel.Map(1, 1, 6, 6, TensorAssert.Random(rng, 36).Select(Math.Abs).ToArray()),
        };
        var a = metrics.Road(input, maps, new RoadOptions { Seed = 1, BatchSize = 32 });
        var b = metrics.Road(input, maps, new RoadOptions { Seed = 1, BatchSize = 5 });
        var c = metrics.Road(input, maps, new RoadOptions { Seed = 2 });
        Assert.That(a.MostRelevantFirst, Is.EqualTo(b.MostRelevantFirst));
        Assert.That(a.LeastRelevantFirst, Is.EqualTo(b.LeastRelevantFirst));
        Assert.That(a.MostRelevantFirst, Is.Not.EqualTo(c.MostRelevantFirst));
        Assert.That(a.Percentiles, Is.EqualTo(new[] { 10, 20, 30, 40, 50, 60, 70, 80, 90 }));
        double combined = Enumerable.Range(0, 2).Average(i => Enumerable.Range(0, 9)
            .Average(p => (a.LeastRelevantFirst[i][p] - a.MostRelevantFirst[i][p]) / 2));
        Assert.That(a.MeanCombined, Is.EqualTo(combined).Within(1e-12));
        Assert.That(() => metrics.Road(input, maps, new RoadOptions { Percentiles = [0] }),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("1..99"));
    }
}
