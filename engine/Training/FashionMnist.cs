using CamEngine.IO;

namespace CamEngine.Training;

/// <summary>
/// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 28x28 grey images of 10 clothing classes, 60,000 for training
/// and 10,000 for testing, in IDX files. Debian's <c>dataset-fashion-mnist</c> package installs them in
/// <see cref="DebianFolder"/>.
/// </summary>
internal sealed class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the files.</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The class names, by label.</summary>
    public static readonly string[] Labels =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Mean of the training pixels scaled to [0, 1].</summary>
    public const float Mean = 0.2860f;

    /// <summary>Standard deviation of the training pixels scaled to [0, 1].</summary>
    public const float Std = 0.3530f;

    private FashionMnist(byte[] images, byte[] labels, int count)
    {
        Images = images;
        LabelData = labels;
        Count = count;
    }

    /// <summary>Image side length.</summary>
    public const int Side = 28;

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>The pixels, Count x 28 x 28 bytes, row-major.</summary>
    public byte[] Images { get; }

    /// <summary>The labels, 0 to 9.</summary>
    public byte[] LabelData { get; }

    /// <summary>Loads the training or the test split from <paramref name="folder"/> (files
    /// <c>train-images-idx3-ubyte[.gz]</c> and so on).</summary>
    public static FashionMnist Load(string folder, bool train)
    {
        string prefix = train ? "train" : "t10k";
        var images = Idx.Read(Find(folder, $"{prefix}-images-idx3-ubyte"));
        var labels = Idx.Read(Find(folder, $"{prefix}-labels-idx1-ubyte"));
        if (images.Dimensions.Length != 3 || images.Dimensions[1] != Side || images.Dimensions[2] != Side)
            throw new InvalidInputException($"{folder}: {prefix} images are not N x 28 x 28");
        if (labels.Dimensions.Length != 1 || labels.Dimensions[0] != images.Dimensions[0])
            throw new InvalidInputException($"{folder}: {prefix} has {images.Dimensions[0]} images but {labels.Dimensions[0]} labels");
        foreach (byte l in labels.Data)
        {
            if (l >= Labels.Length)
                throw new InvalidInputException($"{folder}: label {l} is out of range 0..9");
        }
        return new FashionMnist(images.Data, labels.Data, images.Dimensions[0]);
    }

    private static string Find(string folder, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            string p = Path.Combine(folder, candidate);
            if (File.Exists(p))
                return p;
        }
        throw new InvalidInputException(
            $"{Path.Combine(folder, name)}[.gz] not found (install Debian's dataset-fashion-mnist, or pass --data)");
    }

    /// <summary>Writes images <paramref name="indices"/> as a normalized (n, 1, 28, 28) batch into
    /// <paramref name="batch"/> and their labels into <paramref name="labels"/>.</summary>
    public void Fill(ReadOnlySpan<int> indices, Span<float> batch, Span<int> labels)
    {
        const int plane = Side * Side;
        for (int b = 0; b < indices.Length; b++)
        {
            int i = indices[b];
            var src = Images.AsSpan(i * plane, plane);
            var dst = batch.Slice(b * plane, plane);
            for (int j = 0; j < plane; j++)
                dst[j] = (src[j] / 255f - Mean) / Std;
            labels[b] = LabelData[i];
        }
    }
}
