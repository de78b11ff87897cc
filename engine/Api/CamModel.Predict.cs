using CamEngine.Imaging;
using CamEngine.Tensors;

namespace CamEngine;

/// <summary>Classifying and raw outputs.</summary>
public sealed partial class CamModel
{
    /// <summary>The <paramref name="top"/> highest-scoring classes of one image file, with softmax probabilities.</summary>
    /// <param name="imagePath">A photo or a (C, H, W) .npy.</param>
    /// <param name="top">How many classes, highest first.</param>
    /// <example><code>
    /// foreach (var p in model.Predict("cat.jpg", top: 3))
    ///     Console.WriteLine($"{p.ClassIndex} {p.Label}: {p.Probability:P1}");
    /// </code></example>
    public IReadOnlyList<Prediction> Predict(string imagePath, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var images = LoadImages([imagePath]);
        if (images.Count != 1)
            throw new CamEngineException($"{imagePath} holds {images.Count} images; use Predict(HostTensor, int)");
        return PredictCore(images[0].Image.Input, top)[0];
    }

    /// <summary>The <paramref name="top"/> highest-scoring classes of one decoded picture.</summary>
    /// <param name="image">The picture (resized and centre-cropped as the model file says).</param>
    /// <param name="top">How many classes, highest first.</param>
    public IReadOnlyList<Prediction> Predict(RgbImage image, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(image);
        return PredictCore(FromPicture(image).Image.Input, top)[0];
    }

    /// <summary>The <paramref name="top"/> highest-scoring classes of every image of a preprocessed batch.</summary>
    /// <param name="batch">Model inputs (N, C, H, W).</param>
    /// <param name="top">How many classes per image, highest first.</param>
    /// <returns>One ranked list per image.</returns>
    public IReadOnlyList<IReadOnlyList<Prediction>> Predict(HostTensor batch, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return PredictCore(CheckBatch(batch), top);
    }

    /// <summary>The model's raw output for one image file, flattened: logits, or the embedding of a featurizer
    /// (e.g. the reference of <see cref="Methods.Target.Similarity"/>).</summary>
    /// <param name="imagePath">A photo or a (C, H, W) .npy.</param>
    public float[] Outputs(string imagePath)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        var images = LoadImages([imagePath]);
        if (images.Count != 1)
            throw new CamEngineException($"{imagePath} holds {images.Count} images; use Outputs(HostTensor)");
        return _explainer.Outputs(images[0].Image.Input);
    }

    /// <summary>The model's raw outputs for a preprocessed batch (N, C, H, W), flattened: N * outputs values.</summary>
    /// <param name="batch">Model inputs.</param>
    public float[] Outputs(HostTensor batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return _explainer.Outputs(CheckBatch(batch));
    }

    private List<IReadOnlyList<Prediction>> PredictCore(HostTensor input, int top)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        int n = input.Shape[0];
        var labels = Live()._labels;
        var result = new List<IReadOnlyList<Prediction>>(n);
        for (int start = 0; start < n; start += _batchSize)
        {
            int count = Math.Min(_batchSize, n - start);
            int size = input.Length / n;
            var part = new HostTensor([count, .. input.Shape[1..]], input.Data.AsSpan(start * size, count * size).ToArray());
            var y = _explainer.Outputs(part);
            int k = y.Length / count;
            for (int i = 0; i < count; i++)
                result.Add(Prediction.Rank(y.AsSpan(i * k, k), labels, top));
        }
        return result;
    }
}
