using CamEngine.Imaging;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Imaging;

/// <summary>The whole-photo view: the model's crop mapped back to the photo, photos scaled to 1600 px, and the
/// painted crop pasted back with its outline.</summary>
public class PhotoViewTests
{
    private static Preprocessing Crop(int resize, int w, int h) => new()
    {
        Height = h, Width = w, ResizeShorter = resize, Mean = [0, 0, 0], Std = [1, 1, 1],
    };

    [Test]
    public void The_crop_box_inverts_resize_and_centre_crop()
    {
        // chelsea.png 451x300 for tiny_resnet (resize 36, crop 32): resized to floor(36 * 451 / 300) = 54 x 36,
        // crop left (54 - 32) / 2 = 11, top 2; back in the photo: x * 451 / 54, y * 300 / 36.
        var (left, top, right, bottom) = PhotoView.CropBox(451, 300, 36, 32, 32);
        Assert.That(left, Is.EqualTo(11 * 451 / 54.0).Within(1e-9));
        Assert.That(right, Is.EqualTo(43 * 451 / 54.0).Within(1e-9));
        Assert.That(top, Is.EqualTo(2 * 300 / 36.0).Within(1e-9));
        Assert.That(bottom, Is.EqualTo(34 * 300 / 36.0).Within(1e-9));
        // torchvision's 256 -> 224 on a portrait 300x400: 256 x 341, crop left 16, top 58.
        (left, top, right, bottom) = PhotoView.CropBox(300, 400, 256, 224, 224);
        Assert.That(left, Is.EqualTo(16 * 300 / 256.0).Within(1e-9));
        Assert.That(right, Is.EqualTo(240 * 300 / 256.0).Within(1e-9));
        Assert.That(top, Is.EqualTo(58 * 400 / 341.0).Within(1e-9));
        Assert.That(bottom, Is.EqualTo(282 * 400 / 341.0).Within(1e-9));
        Assert.That(() => PhotoView.CropBox(10, 10, 8, 9, 9), Throws.InstanceOf<InvalidInputException>());
    }

    [Test]
    public void The_painted_crop_is_pasted_into_the_photo_and_outlined()
    {
        // 40x20 grey photo, resize 10 and crop 8x8: resized 20x10, crop at (6, 1), scale 2: box (12, 2)-(28, 18).
        var photo = new RgbImage(40, 20, Enumerable.Repeat((byte)100, 40 * 20 * 3).ToArray());
        var view = PhotoView.Of(photo, Crop(10, 8, 8));
        Assert.That(view.PixelBox, Is.EqualTo((12, 2, 16, 16)));
        var picture = view.Render(region =>
        {
            Assert.That((region.Width, region.Height), Is.EqualTo((16, 16)));
            return new RgbImage(16, 16, Enumerable.Repeat((byte)200, 16 * 16 * 3).ToArray());
        });
        Assert.That((picture.Width, picture.Height), Is.EqualTo((40, 20)));
        Assert.That(picture[20, 10], Is.EqualTo(((byte)200, (byte)200, (byte)200)), "inside: the painted crop");
        Assert.That(picture[13, 3], Is.EqualTo(((byte)200, (byte)200, (byte)200)), "inside, next to the border");
        Assert.That(picture[12, 10], Is.EqualTo(((byte)0, (byte)0, (byte)0)), "the box's left border pixel: black");
        Assert.That(picture[27, 17], Is.EqualTo(((byte)0, (byte)0, (byte)0)), "bottom-right border pixel");
        Assert.That(picture[11, 10], Is.EqualTo(((byte)255, (byte)255, (byte)255)), "outline, 1 px outside");
        Assert.That(picture[10, 10], Is.EqualTo(((byte)255, (byte)255, (byte)255)), "outline, 2 px outside");
        Assert.That(picture[29, 1], Is.EqualTo(((byte)255, (byte)255, (byte)255)), "outline corner, top right");
        Assert.That(picture[9, 10], Is.EqualTo(((byte)100, (byte)100, (byte)100)), "3 px outside: the photo");
        Assert.That(picture[0, 0], Is.EqualTo(((byte)100, (byte)100, (byte)100)));
        // The box touches the top edge at 2 px: the outline there is rows 1 and 0; nothing above clips.
        Assert.That(picture[20, 0], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        Assert.That(photo[20, 10], Is.EqualTo(((byte)100, (byte)100, (byte)100)), "the photo itself is not changed");
    }

    [Test]
    public void Large_photos_are_scaled_to_1600_pixels_with_the_box()
    {
        var photo = new RgbImage(3200, 1000);
        var view = PhotoView.Of(photo, Crop(100, 100, 100));
        // Resized 320x100, crop left 110: box 1100..2100 x 0..1000 in the photo, halved.
        Assert.That((view.Photo.Width, view.Photo.Height), Is.EqualTo((1600, 500)));
        Assert.That((view.Left, view.Right, view.Top, view.Bottom), Is.EqualTo((550.0, 1050.0, 0.0, 500.0)));
        // A box at the photo's edge keeps its outline inside the photo: rows 1 and 2 of the box.
        var picture = view.Render(r => r);
        Assert.That(picture[800, 0], Is.EqualTo(((byte)0, (byte)0, (byte)0)), "border pixel");
        Assert.That(picture[800, 1], Is.EqualTo(((byte)255, (byte)255, (byte)255)), "outline moved inside");
        Assert.That(picture[800, 2], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        Assert.That(picture[549, 250], Is.EqualTo(((byte)255, (byte)255, (byte)255)), "outline left of the box");
    }
}

/// <summary>Sizes of the pictures and grid tiles of each view.</summary>
public class ExplanationPictureSizeTests
{
    [Test]
    public void Tiles_follow_the_view_and_stay_within_512_pixels()
    {
        var pre = new Preprocessing { Height = 8, Width = 8, ResizeShorter = 10, Mean = [0, 0, 0], Std = [1, 1, 1] };
        var photo = PhotoView.Of(new RgbImage(1600, 1200), pre);
        var crop = new RgbImage(960, 960);
        var full = OverlayOptions.Default;
        var cropView = new OverlayOptions { View = OverlayView.Crop };
        Assert.That(ExplanationPicture.Size(crop, photo, full), Is.EqualTo((1600, 1200)));
        Assert.That(ExplanationPicture.TileSize(crop, photo, full), Is.EqualTo((512, 384)));
        Assert.That(ExplanationPicture.Size(crop, photo, cropView), Is.EqualTo((960, 960)));
        Assert.That(ExplanationPicture.TileSize(crop, photo, cropView), Is.EqualTo((512, 512)));
        Assert.That(ExplanationPicture.TileSize(new RgbImage(32, 32), null, full), Is.EqualTo((32, 32)), "no photo: the crop");
        Assert.That(ExplanationPicture.TileSize(null, null, full), Is.Null);
    }
}
