using CamEngine.Imaging;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

/// <summary>Pixel-space attributions drawn as Captum's <c>visualize_image_attr</c> does: the cumulative-sum
/// threshold, the sign modes, the colour tables and the grey blend, each against hand-worked numbers.</summary>
public class AttributionPictureTests
{
    [Test]
    public void The_threshold_is_where_the_sorted_running_sum_reaches_the_percentile()
    {
        var values = Enumerable.Range(1, 100).Select(i => (float)i).ToArray();  // total 5050
        Assert.That(AttributionPicture.Threshold(values, 99), Is.EqualTo(100f), "99% = 4999.5 > 99 * 100 / 2");
        Assert.That(AttributionPicture.Threshold(values, 98), Is.EqualTo(99f), "98% = 4949 <= 4950");
        Assert.That(AttributionPicture.Threshold(values, 50), Is.EqualTo(71f), "2525 <= 71 * 72 / 2 = 2556");
        // 100 ones and an outlier of 1000 holding 91% of the mass: Captum's rule keeps the outlier as the scale.
        float[] outlier = [.. Enumerable.Repeat(1f, 100), 1000f];
        Assert.That(AttributionPicture.Threshold(outlier, 99), Is.EqualTo(1000f));
        Assert.That(AttributionPicture.Threshold(outlier, 9), Is.EqualTo(1f));
    }

    [Test]
    public void Sign_modes_sum_channels_then_divide_and_clip()
    {
        // Channels [1, -4, 2] and [1, 0, 0]: sums s = [2, -4, 2].
        var raw = new HostTensor([2, 1, 3], [1, -4, 2, 1, 0, 0]);
        // |s| sorted 2, 2, 4 (total 8, 99% = 7.92): threshold 4.
        Assert.That(AttributionPicture.Normalize(raw, AttributionSign.All, 1).Data, Is.EqualTo(new[] { 0.5f, -1f, 0.5f }));
        Assert.That(AttributionPicture.Normalize(raw, AttributionSign.Absolute, 1).Data, Is.EqualTo(new[] { 0.5f, 1f, 0.5f }));
        // Positive: 2, 0, 2 (total 4, 99% = 3.96): threshold 2.
        Assert.That(AttributionPicture.Normalize(raw, AttributionSign.Positive, 1).Data, Is.EqualTo(new[] { 1f, 0f, 1f }));
        // Outlier 60%: the goal 40% of 8 = 3.2 is reached by the second value (running sum 4), so the threshold is 2:
        // -4 clips to -1 and 2 -> 1.
        Assert.That(AttributionPicture.Normalize(raw, AttributionSign.All, 60).Data, Is.EqualTo(new[] { 1f, -1f, 1f }));
        // All zero: no scale, all values 0.
        Assert.That(AttributionPicture.Normalize(new HostTensor([1, 1, 2], [0, 0]), AttributionSign.All, 1).Data,
            Is.EqualTo(new[] { 0f, 0f }));
    }

    [Test]
    public void Colours_follow_captums_maps_and_blend_over_grey()
    {
        var all = AttributionPicture.Table(AttributionSign.All);
        Assert.That(all[..3].ToArray(), Is.EqualTo(new[] { 1f, 0f, 0f }), "-1: red");
        Assert.That(all[(3 * 255)..].ToArray(), Is.EqualTo(new[] { 0f, 128 / 255f, 0f }).Within(1e-6f), "+1: matplotlib green");
        Assert.That(all[(3 * 127)..(3 * 128)].ToArray(), Is.EqualTo(new[] { 1f, 254 / 255f, 254 / 255f }).Within(1e-6f),
            "entry 127, x = 254/255 of the way from red to white");
        Assert.That(AttributionPicture.Index(0f, AttributionSign.All), Is.EqualTo(128));
        var blues = AttributionPicture.Table(AttributionSign.Absolute);
        Assert.That(blues[..3].ToArray(), Is.EqualTo(new[] { 0xf7 / 255f, 0xfb / 255f, 1f }).Within(1e-6f), "ColorBrewer #f7fbff");
        Assert.That(blues[(3 * 255)..].ToArray(), Is.EqualTo(new[] { 0x08 / 255f, 0x30 / 255f, 0x6b / 255f }).Within(1e-6f));
        Assert.That(AttributionPicture.Table(AttributionSign.Positive)[(3 * 255)..].ToArray(),
            Is.EqualTo(new[] { 0f, 0x44 / 255f, 0x1b / 255f }).Within(1e-6f), "Greens ends at #00441b");

        // Pixel (30, 60, 90): grey 60. Value +1 in red-white-green at alpha 0.5: 30 + 127.5 * (0, 128/255, 0)
        // = (30, 94, 30); value -1: (30 + 127.5, 30, 30) = (158, 30, 30) (157.5 rounds away from zero).
        var background = new RgbImage(2, 1, [30, 60, 90, 30, 60, 90]);
        var picture = AttributionPicture.Blend(background, new HostTensor([1, 2], [1f, -1f]), AttributionSign.All, 0.5f);
        Assert.That(picture.Data, Is.EqualTo(new byte[] { 30, 94, 30, 158, 30, 30 }));
    }

    [TestCase("integrated-gradients", AttributionSign.All)]
    [TestCase("saliency", AttributionSign.Absolute)]
    [TestCase("guided-backprop", AttributionSign.Absolute)]
    [TestCase("smoothgrad", AttributionSign.Absolute)]
    [TestCase("deeplift", AttributionSign.All)]
    [TestCase("gradientshap", AttributionSign.All)]
    [TestCase("lrp", AttributionSign.All)]
    public void Default_signs_per_method(string method, AttributionSign sign) =>
        Assert.That(AttributionPicture.DefaultSign(method), Is.EqualTo(sign));
}
