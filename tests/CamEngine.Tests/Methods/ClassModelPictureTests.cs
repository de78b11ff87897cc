using CamEngine.Methods;
using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>
/// The class-model image deprocessed with the model's own preprocessing (<see cref="ClassModel.ToPicture"/>): a
/// Caffe-style 2x2 model (bytes, Scale 1, BGR, per-channel mean 10/20/30 and a mean image 50 c + j, std 2/1/1).
/// Expected bytes are worked out by hand from the documented formula.
/// </summary>
public class ClassModelPictureTests
{
    private static Preprocessing Caffe() => new Preprocessing
    {
        Height = 2, Width = 2, ResizeShorter = 2, Mean = [10, 20, 30], Std = [2, 1, 1], Scale = 1,
        ChannelOrder = Preprocessing.Bgr, MeanImage = "mean",
    }.WithMeanImageTensor(new HostTensor([3, 2, 2], [0, 1, 2, 3, 50, 51, 52, 53, 100, 101, 102, 103]));

    private static byte[] Pixel(RgbImage image, int j) => [image.Data[3 * j], image.Data[3 * j + 1], image.Data[3 * j + 2]];

    [Test]
    public void A_visible_pattern_is_undone_exactly_channel_order_mean_image_and_all()
    {
        // Model channel 0 is blue. Pattern d = raw * std: blue 120, -120, 20, 0; red -100, 50, 0, 0. Its 99th
        // percentile |d| is 120 >= 96 levels, so the gain is 1.
        var raw = new HostTensor([3, 2, 2], [60, -60, 10, 0, 0, 0, 0, 0, -100, 50, 0, 0]);
        var picture = ClassModel.ToPicture(raw, Caffe());
        Assert.That((picture.Width, picture.Height), Is.EqualTo((2, 2)));
        // R = 30 + (100 + j) + d_red, G = 20 + (50 + j), B = 10 + j + d_blue, clamped.
        Assert.That(Pixel(picture, 0), Is.EqualTo(new byte[] { 30, 70, 130 }));
        Assert.That(Pixel(picture, 1), Is.EqualTo(new byte[] { 181, 71, 0 }));
        Assert.That(Pixel(picture, 2), Is.EqualTo(new byte[] { 132, 72, 32 }));
        Assert.That(Pixel(picture, 3), Is.EqualTo(new byte[] { 133, 73, 13 }));
        // With gain 1 it is the exact inverse of the input normalization.
        Assert.That(picture.Data, Is.EqualTo(ImagePreprocessor.ToDisplay(raw, Caffe()).Data));
    }

    [Test]
    public void A_faint_pattern_is_stretched_around_the_mean_image()
    {
        // The zero image is the mean image: R 130..133, G 70..73, B 10..13.
        var zero = ClassModel.ToPicture(new HostTensor([3, 2, 2], new float[12]), Caffe());
        Assert.That(Pixel(zero, 0), Is.EqualTo(new byte[] { 130, 70, 10 }));
        Assert.That(Pixel(zero, 3), Is.EqualTo(new byte[] { 133, 73, 13 }));
        // One red value of 0.25 byte levels: p99 of |d| over 12 values = 0.25 * 0.89 = 0.2225 (numpy's linear
        // percentile), gain 96 / 0.2225 = 431.46, so red at pixel 0 is 130 + 0.25 * 431.46 = 237.9 -> 238.
        var raw = new HostTensor([3, 2, 2], new float[12]);
        raw.Data[8] = 0.25f;
        var picture = ClassModel.ToPicture(raw, Caffe());
        Assert.That(Pixel(picture, 0), Is.EqualTo(new byte[] { 238, 70, 10 }));
        Assert.That(Pixel(picture, 1), Is.EqualTo(new byte[] { 131, 71, 11 }));
        // ImageNet preprocessing (scale 1/255, RGB): a strong pattern keeps gain 1, red = (0.485 + 2 * 0.229) * 255
        // = 240.47 -> 240, green the mean 0.456 * 255 = 116.28 -> 116.
        var strong = new HostTensor([3, 2, 2], [2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        var rgb = ClassModel.ToPicture(strong, Preprocessing.ImageNet(2, 2));
        Assert.That(Pixel(rgb, 0), Is.EqualTo(new byte[] { 240, 116, 104 }));
    }

    [Test]
    public void Shapes_that_do_not_fit_the_preprocessing_are_refused()
    {
        Assert.That(() => ClassModel.ToPicture(new HostTensor([1, 2, 2], new float[4]), Caffe()),
            Throws.InstanceOf<CamEngineException>().With.Message.Contains("does not fit"));
        Assert.That(() => ClassModel.ToPicture(new HostTensor([3, 4, 4], new float[48]), Caffe()),
            Throws.InstanceOf<CamEngineException>().With.Message.Contains("mean image 'mean' has shape"));
    }
}
