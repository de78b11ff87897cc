using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// Deep Feature Factorization against pytorch-grad-cam's <c>dff()</c> with scikit-learn's coordinate-descent NMF
/// (written out in the fixture script, as scikit-learn is not installed there), from the same replayed start, on both
/// fixture models; and the concept drawing.
/// </summary>
[TestFixture]
public sealed class DeepFeatureFactorizationTests
{
    public static IEnumerable<TestCaseData> Cases() => MethodFixtures.Cases();

    [TestCaseSource(nameof(Cases))]
    public void Concepts_maps_and_labels_match_pytorch_grad_cam(string model, string image)
    {
        var r = FixtureData.Load(model, image);
        var f = MethodFixtures.Load(model, image);
        var method = new DeepFeatureFactorization { InitialW = f.Get("dff.init_w"), InitialH = f.Get("dff.init_h") };
        var e = MethodFixtures.Explain(model, image, method, r.L0, batch: 3);
        const int k = 5;
        var maps = f.Get("dff.maps");
        MethodFixtures.AssertClose(e.Raw.Data, maps, 1e-4, "dff.maps");
        var concepts = f.Get("dff.concepts"); // (C, K)
        int c = concepts.Length / k;
        Assert.That(e.Concepts, Has.Count.EqualTo(k));
        var probs = f.Get("dff.concept_probs");
        int classes = probs.Length / k;
        for (int t = 0; t < k; t++)
        {
            var expected = Enumerable.Range(0, c).Select(ch => concepts[ch * k + t]).ToArray();
            MethodFixtures.AssertClose(e.Concepts![t].Vector, expected, 1e-4, $"dff concept {t}");
            var row = probs.AsSpan(t * classes, classes).ToArray();
            var top = Enumerable.Range(0, classes).OrderByDescending(j => row[j]).Take(2).ToArray();
            Assert.That(e.Concepts[t].TopClasses, Is.EqualTo(top), $"concept {t} top classes");
            TensorAssert.Close(e.Concepts[t].TopProbabilities, top.Select(j => row[j]).ToArray(), 1e-5, 1e-4, $"concept {t} probabilities");
            Assert.That(e.Concepts[t].Map.Shape, Is.EqualTo(new[] { 32, 32 }));
        }
        // The map is the brightest normalized concept at each pixel.
        for (int j = 0; j < 32 * 32; j++)
            Assert.That(e.Map.Data[j], Is.EqualTo(e.Concepts!.Max(x => x.Map.Data[j])).Within(1e-6f));
    }

    [Test]
    public void The_factorization_reconstructs_a_nonnegative_low_rank_matrix()
    {
        // X = W H with W (6 x 2), H (2 x 8) non-negative: NMF with K = 2 recovers X (not necessarily W and H).
        var rng = new Random(3);
        double[] w0 = Enumerable.Range(0, 12).Select(_ => rng.NextDouble()).ToArray();
        double[] h0 = Enumerable.Range(0, 16).Select(_ => rng.NextDouble()).ToArray();
        var x = new double[6 * 8];
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 8; j++)
                x[i * 8 + j] = w0[i * 2] * h0[j] + w0[i * 2 + 1] * h0[8 + j];
        }
        var w = Enumerable.Range(0, 12).Select(_ => 0.1 + rng.NextDouble()).ToArray();
        var h = Enumerable.Range(0, 16).Select(_ => 0.1 + rng.NextDouble()).ToArray();
        Nmf.Factorize(x, 6, 8, w, h, 2, 5000, 1e-12);
        Assert.That(w.Concat(h).All(v => v >= 0));
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 8; j++)
                Assert.That(w[i * 2] * h[j] + w[i * 2 + 1] * h[8 + j], Is.EqualTo(x[i * 8 + j]).Within(1e-4));
        }
    }

    [Test]
    public void The_seeded_start_is_repeatable_and_each_concept_is_drawn_in_its_own_colour()
    {
        var r = FixtureData.Load("tiny_resnet", "chelsea");
        var a = MethodFixtures.Explain("tiny_resnet", "chelsea", new DeepFeatureFactorization(), r.L0);
        var b = MethodFixtures.Explain("tiny_resnet", "chelsea", new DeepFeatureFactorization(), r.L0);
        Assert.That(a.Raw.Data, Is.EqualTo(b.Raw.Data));
        var picture = ConceptOverlay.Draw(new RgbImage(32, 32), a, imageWeight: 0);
        // Below the legend, a pixel where concept t wins at full brightness has concept t's colour.
        for (int t = 0; t < a.Concepts!.Count; t++)
        {
            int at = Enumerable.Range(0, 32 * 32).Where(j => j / 32 >= 28).OrderByDescending(j => a.Concepts[t].Map.Data[j] - a.Concepts.Where((_, u) => u != t).Max(o => o.Map.Data[j])).First();
            if (a.Concepts[t].Map.Data[at] < a.Concepts.Where((_, u) => u != t).Max(o => o.Map.Data[at]))
                continue; // concept t wins nowhere in those rows
            var expected = ConceptOverlay.Colour(t, a.Concepts.Count, a.Concepts[t].Map.Data[at]);
            Assert.That(picture[at % 32, at / 32], Is.EqualTo(expected), $"concept {t}");
        }
        // cam explain draws it that way: the explanation picture of a factorization is its concept overlay.
        var crop = new RgbImage(32, 32);
        Assert.That(ExplanationPicture.Draw(a, crop, null, null, OverlayOptions.Default).Data, Is.EqualTo(ConceptOverlay.Draw(crop, a).Data));
        Assert.Throws<CamEngineException>(() => ConceptOverlay.Draw(new RgbImage(32, 32),
            new Explanation { Image = 0, Method = "gradcam", TargetClass = 0, Score = 0, Layers = [], Map = new HostTensor([1, 1]), Raw = new HostTensor([1, 1]) }));
    }
}
