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
}
