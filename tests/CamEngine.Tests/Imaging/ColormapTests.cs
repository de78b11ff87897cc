using CamEngine.Imaging;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class ColormapTests
{
    [Test]
    public void Jet_MatchesMatplotlib()
    {
        // matplotlib 3.6: jet(0.0) = (0, 0, 0.5); jet(1.0) = (0.5, 0, 0);
        // jet(0.5) = index 128, x = 128/255: red (x - 0.35) / 0.31 = 0.490196, blue 1 - (x - 0.34) / 0.31 = 0.477546.
        Assert.That(Colormap.JetColor(0f), Is.EqualTo((0f, 0f, 0.5f)));
        Assert.That(Colormap.JetColor(1f), Is.EqualTo((0.5f, 0f, 0f)));
        var (r, g, b) = Colormap.JetColor(0.5f);
        Assert.That(r, Is.EqualTo(0.4901960784313725f).Within(1e-6f));
        Assert.That(g, Is.EqualTo(1f));
        Assert.That(b, Is.EqualTo(0.4775458570524984f).Within(1e-6f));
        // jet(0.25) = (0, 0.503922, 1); jet(0.75) = (1, 0.581699, 0).
        Assert.That(Colormap.JetColor(0.25f).G, Is.EqualTo(0.503921568627451f).Within(1e-6f));
        Assert.That(Colormap.JetColor(0.75f).G, Is.EqualTo(0.5816993464052289f).Within(1e-6f));
    }

    [Test]
    public void Index_FollowsMatplotlibLookup()
    {
        Assert.That(Colormap.Index(0f), Is.EqualTo(0));
        Assert.That(Colormap.Index(0.5f), Is.EqualTo(128));
        Assert.That(Colormap.Index(0.999f), Is.EqualTo(255));
        Assert.That(Colormap.Index(1f), Is.EqualTo(255));
        Assert.That(Colormap.Index(-3f), Is.EqualTo(0));
        Assert.That(Colormap.Index(7f), Is.EqualTo(255));
        Assert.That(Colormap.Jet.Length, Is.EqualTo(768));
    }

    [Test]
    public void Listed_tables_match_matplotlib_entries()
    {
        // matplotlib 3.6 _cm_listed.py: _viridis_data[0], [128], [255]; _inferno_data[0], [128]; _turbo_data[0], [255].
        AssertEntry(ColormapKind.Viridis, 0, 0.267004f, 0.004874f, 0.329415f);
        AssertEntry(ColormapKind.Viridis, 128, 0.127568f, 0.566949f, 0.550556f);
        AssertEntry(ColormapKind.Viridis, 255, 0.993248f, 0.906157f, 0.143936f);
        AssertEntry(ColormapKind.Inferno, 0, 0.001462f, 0.000466f, 0.013866f);
        AssertEntry(ColormapKind.Inferno, 128, 0.735683f, 0.215906f, 0.330245f);
        AssertEntry(ColormapKind.Turbo, 0, 0.18995f, 0.07176f, 0.23217f);
        AssertEntry(ColormapKind.Turbo, 255, 0.47960f, 0.01583f, 0.01055f);
        foreach (var kind in Enum.GetValues<ColormapKind>())
            Assert.That(Colormap.Table(kind).Length, Is.EqualTo(768), kind.ToString());
        // The lookup is matplotlib's: 0.5 -> floor(128) = entry 128; 1 and above -> 255; NaN -> 0.
        Assert.That(Colormap.Color(ColormapKind.Viridis, 0.5f), Is.EqualTo((0.127568f, 0.566949f, 0.550556f)));
        Assert.That(Colormap.Color(ColormapKind.Turbo, 1f), Is.EqualTo((0.47960f, 0.01583f, 0.01055f)));
        Assert.That(Colormap.Color(ColormapKind.Inferno, float.NaN), Is.EqualTo((0.001462f, 0.000466f, 0.013866f)));
        Assert.That(Colormap.Color(ColormapKind.Jet, 0.5f), Is.EqualTo(Colormap.JetColor(0.5f)));
    }

    [Test]
    public void Colormaps_are_looked_up_by_name()
    {
        Assert.That(Colormap.Names, Is.EqualTo(new[] { "jet", "viridis", "turbo", "inferno" }));
        Assert.That(Colormap.Parse("viridis"), Is.EqualTo(ColormapKind.Viridis));
        Assert.That(Colormap.Parse(" Inferno "), Is.EqualTo(ColormapKind.Inferno));
        Assert.That(Colormap.Get("viridis")[..3].ToArray(), Is.EqualTo(new[] { 0.267004f, 0.004874f, 0.329415f }));
        Assert.That(Colormap.Get("JET")[..3].ToArray(), Is.EqualTo(new[] { 0f, 0f, 0.5f }));
        Assert.That(() => Colormap.Parse("rainbow"), Throws.TypeOf<CamEngineException>()
            .With.Message.EqualTo("unknown colormap 'rainbow': use jet, viridis, turbo, inferno"));
    }

    private static void AssertEntry(ColormapKind kind, int i, float r, float g, float b)
    {
        var t = Colormap.Table(kind);
        Assert.That(new[] { t[3 * i], t[3 * i + 1], t[3 * i + 2] }, Is.EqualTo(new[] { r, g, b }), $"{kind}[{i}]");
    }
}
