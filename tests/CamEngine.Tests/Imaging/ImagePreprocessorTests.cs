using CamEngine.Imaging;
using CamEngine.Model;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

public class ImagePreprocessorTests
{
    [Test]
    public void Synthetic50x40_ResizesCropsAndNormalizes()
    {
        // 50 wide, 40 high; ImageNet(32, 32) resizes the shorter side to 36 -> 45x36 (int(36 * 50 / 40)),
        // crop left (45 - 32) / 2 = 6, top (36 - 32) / 2 = 2. Expected values from Pillow 9.4 + NumPy float32.
        var img = ResizeTests.Pattern(50, 40);
        var p = Preprocessing.ImageNet(32, 32);
        var prepared = ImagePreprocessor.Prepare(img, p);
        Assert.That(prepared.Input.Shape, Is.EqualTo(new[] { 1, 3, 32, 32 }));
        Assert.That(prepared.Cropped.Width, Is.EqualTo(32));
        Assert.That(prepared.Cropped.Height, Is.EqualTo(32));
        Assert.That(prepared.Cropped[0, 0], Is.EqualTo(((byte)92, (byte)119, (byte)172)));
        Assert.That(prepared.Cropped[5, 3], Is.EqualTo(((byte)173, (byte)144, (byte)197)));

        var x = prepared.Input.Data;
        int at = 3 * 32 + 5;
        Assert.That(x[at], Is.EqualTo(0.844678521156311f).Within(1e-6f));
        Assert.That(x[1024 + at], Is.EqualTo(0.4852942228317261f).Within(1e-6f));
        Assert.That(x[2048 + at], Is.EqualTo(1.629106879234314f).Within(1e-6f));
        // By hand: (173 / 255 - 0.485) / 0.229 = 0.84468.
        Assert.That(x[at], Is.EqualTo((173 / 255.0 - 0.485) / 0.229).Within(1e-5));
        Assert.That(ImagePreprocessor.ToInput(img, p).Data, Is.EqualTo(x));
    }

    [Test]
    public void ResizedSum_MatchesPillow()
    {
        // Pillow 9.4: sum of Image.resize((45, 36), BILINEAR) of the same pattern is 619983.
        var r = Resize.ImageBilinear(ResizeTests.Pattern(50, 40), 45, 36);
        Assert.That(r.Data.Sum(b => (long)b), Is.EqualTo(619983));
        Assert.That(r[10, 7], Is.EqualTo(((byte)209, (byte)64, (byte)117)));
    }

    [Test]
    public void TallImage_KeepsWidthAsShorterSide()
    {
        var img = ResizeTests.Pattern(40, 70);
        var p = new Preprocessing { Height = 16, Width = 20, ResizeShorter = 20, Mean = [0, 0, 0], Std = [1, 1, 1] };
        var cropped = ImagePreprocessor.ResizeAndCrop(img, p);
        Assert.That((cropped.Width, cropped.Height), Is.EqualTo((20, 16)));
        // 40x70 -> 20x35; crop top (35 - 16) / 2 = 9.
        var resized = Resize.ImageBilinear(img, 20, 35);
        Assert.That(cropped[0, 0], Is.EqualTo(resized[0, 9]));
        Assert.That(cropped[19, 15], Is.EqualTo(resized[19, 24]));
    }

    [Test]
    public void CropLargerThanResize_IsRefused()
    {
        var p = new Preprocessing { Height = 32, Width = 32, ResizeShorter = 20, Mean = [0, 0, 0], Std = [1, 1, 1] };
        Assert.That(() => ImagePreprocessor.ToInput(ResizeTests.Pattern(30, 30), p),
            Throws.TypeOf<InvalidInputException>().With.Message.Contains("smaller than the 32x32 crop"));
    }

    [Test]
    public void FromNormalizedTensor_InvertsNormalize()
    {
        var img = ResizeTests.Pattern(6, 4);
        var t = ImagePreprocessor.Normalize(img, Preprocessing.ImageNetMean, Preprocessing.ImageNetStd);
        var back = ImagePreprocessor.FromNormalizedTensor(t, Preprocessing.ImageNetMean, Preprocessing.ImageNetStd);
        Assert.That(back.Data, Is.EqualTo(img.Data));
        var clamp = ImagePreprocessor.FromNormalizedTensor(
            new HostTensor([3, 1, 1], [-10f, 10f, 0f]), [0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f]);
        Assert.That(clamp.Data, Is.EqualTo(new byte[] { 0, 255, 128 }), "0.5 * 255 = 127.5 rounds up");
    }

    [Test]
    public void FixtureInput_DenormalizesToPixels()
    {
        var t = CamEngine.IO.Npy.Read(Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", "inputs", "chelsea_32_imagenet.npy"));
        var img = ImagePreprocessor.FromNormalizedTensor(t, Preprocessing.ImageNetMean, Preprocessing.ImageNetStd);
        Assert.That((img.Width, img.Height), Is.EqualTo((32, 32)));
        // Re-normalising the recovered bytes reproduces the fixture: it was made from bytes the same way.
        var again = ImagePreprocessor.Normalize(img, Preprocessing.ImageNetMean, Preprocessing.ImageNetStd);
        Assert.That(again.Data, Is.EqualTo(t.Data).Within(1e-5f));
    }
}
