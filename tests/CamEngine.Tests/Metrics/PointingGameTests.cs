using CamEngine.Metrics;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Metrics;

/// <summary>The pointing game and its box file on hand-made maps.</summary>
[TestFixture]
public sealed class PointingGameTests
{
    private static HostTensor Peak(int x, int y, int h = 10, int w = 10)
    {
        var map = new HostTensor(h, w);
        map.Data[y * w + x] = 1;
        return map;
    }

    [Test]
    public void Hits_inside_outside_and_within_the_tolerance_of_a_box()
    {
        var box = GroundTruth.FromBoxes(10, 10, [new PixelBox(2, 2, 4, 4)]);
        var maps = new[] { Peak(3, 3), Peak(7, 3), Peak(4, 4), Peak(9, 9) };
        var truths = Enumerable.Repeat(box, 4).ToArray();
        // Distances to the box: 0, 3 (columns 7 vs 4), 0 (its inclusive corner), sqrt(25 + 25) = 7.07.
        Assert.That(PointingGame.Evaluate(maps, truths, 2).Hits, Is.EqualTo(new[] { true, false, true, false }));
        Assert.That(PointingGame.Evaluate(maps, truths, 3).Hits, Is.EqualTo(new[] { true, true, true, false }));
        var standard = PointingGame.Evaluate(maps, truths);
        Assert.That(standard.Hits, Is.EqualTo(new[] { true, true, true, true }), "15 pixels by default");
        Assert.That(PointingGame.Evaluate(maps, truths, 7).HitRate, Is.EqualTo(0.75));
        Assert.That(standard.Points[1], Is.EqualTo((7, 3)));
        Assert.That(PointingGame.Distance(box, 9, 9), Is.EqualTo(Math.Sqrt(50)).Within(1e-12));
    }

    [Test]
    public void Energy_is_the_share_of_map_mass_inside_the_ground_truth()
    {
        var box = GroundTruth.FromBoxes(10, 10, [new PixelBox(2, 2, 4, 4)]);
        var map = new HostTensor(10, 10);
        for (int y = 2; y <= 4; y++)
        {
            for (int x = 2; x <= 4; x++)
                map.Data[y * 10 + x] = 1;
        }
        map.Data[0] = 3; // the maximum is outside: a miss with tolerance 1, mass 9 of 12 inside
        var r = PointingGame.Evaluate([map], [box], 1);
        Assert.That(r.Hits[0], Is.False);
        Assert.That(r.Energies[0], Is.EqualTo(0.75).Within(1e-12));
        Assert.That(r.MeanEnergy, Is.EqualTo(0.75).Within(1e-12));
        // Two boxes make a union; a mask works the same way; first maximum in row-major order on ties.
        var union = GroundTruth.FromBoxes(10, 10, [new PixelBox(0, 0, 0, 0), new PixelBox(2, 2, 4, 4)]);
        Assert.That(PointingGame.Energy(map, union), Is.EqualTo(1).Within(1e-12));
        var maskData = new float[100];
        maskData[99] = 1;
        var mask = GroundTruth.FromMask(new HostTensor([10, 10], maskData));
        Assert.That(PointingGame.Evaluate([Peak(9, 9)], [mask], 0).Hits[0], Is.True);
        Assert.That(PointingGame.ArgMax(new HostTensor([2, 3], [0, 5, 1, 5, 5, 0])), Is.EqualTo((1, 0)));
    }

    [Test]
    public void Boxes_are_clipped_to_the_map_and_empty_or_outside_boxes_are_refused()
    {
        var clipped = GroundTruth.FromBoxes(4, 4, [new PixelBox(-5, 2.5, 10, 3)]);
        Assert.That(clipped.Mask.Select((m, i) => m ? i : -1).Where(i => i >= 0), Is.EqualTo(new[] { 12, 13, 14, 15 }));
        Assert.That(() => GroundTruth.FromBoxes(4, 4, [new PixelBox(5, 5, 9, 9)]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("covers no pixel"));
        Assert.That(() => GroundTruth.FromBoxes(4, 4, [new PixelBox(3, 0, 1, 2)]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("x0 <= x1"));
        Assert.That(() => PointingGame.Evaluate([Peak(1, 1, 4, 4)], [GroundTruth.FromBoxes(10, 10, [new PixelBox(0, 0, 1, 1)])]),
            Throws.TypeOf<CamEngineException>().With.Message.Contains("10x10"));
    }

    [Test]
    public void The_box_file_reads_names_stems_headers_and_comments_and_names_bad_lines()
    {
        const string text = "image,x0,y0,x1,y1\n# a comment\n\ncat.png, 1, 2, 3, 4\ncat.png,0,0,0.5,0\ndog,5,5,6,6\n";
        var boxes = BoxFile.Parse(new StringReader(text), "boxes.csv");
        Assert.That(boxes["cat.png"], Is.EqualTo(new[] { new PixelBox(1, 2, 3, 4), new PixelBox(0, 0, 0.5, 0) }));
        Assert.That(BoxFile.Find(boxes, "/data/cat.png", "cat"), Has.Count.EqualTo(2));
        Assert.That(BoxFile.Find(boxes, "dog.jpg", "dog"), Is.EqualTo(new[] { new PixelBox(5, 5, 6, 6) }));
        Assert.That(BoxFile.Find(boxes, "bird.jpg", "bird"), Is.Null);
        Assert.That(() => BoxFile.Parse(new StringReader("cat,1,2,3\n"), "b.csv"),
            Throws.TypeOf<InvalidInputException>().With.Message.EqualTo("b.csv:1: expected 5 fields image,x0,y0,x1,y1, got 4: 'cat,1,2,3'"));
        Assert.That(() => BoxFile.Parse(new StringReader("cat,1,2,3,4\ncat,1,x,3,4\n"), "b.csv"),
            Throws.TypeOf<InvalidInputException>().With.Message.StartsWith("b.csv:2: the coordinates must be numbers"));
        Assert.That(() => BoxFile.Parse(new StringReader("cat,4,2,3,4\n"), "b.csv"),
            Throws.TypeOf<InvalidInputException>().With.Message.StartsWith("b.csv:1: the box needs x0 <= x1"));
        Assert.That(() => BoxFile.Parse(new StringReader(",1,2,3,4\n"), "b.csv"),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("image name is empty"));
    }
}
