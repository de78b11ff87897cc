using CamEngine.Tensors;

namespace CamEngine.Training;

/// <summary>
/// Mean softmax cross-entropy over a batch of logits (N, K) and its gradient:
/// <code>L = -(1/N) sum_i log softmax(z_i)[y_i],   dL/dz_i = (softmax(z_i) - onehot(y_i)) / N</code>
/// computed stably (max subtracted) in double.
/// </summary>
internal static class SoftmaxCrossEntropy
{
    /// <summary>Returns the mean loss and the number of rows whose arg-max equals the label; writes dL/dz.</summary>
    public static (double Loss, int Correct) Compute(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, Span<float> gradient)
    {
        int n = labels.Length;
        if (n == 0 || logits.Length % n != 0 || gradient.Length != logits.Length)
            throw new ArgumentException("logits, labels and gradient sizes disagree");
        int k = logits.Length / n;
        double loss = 0;
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            var z = logits.Slice(i * k, k);
            var g = gradient.Slice(i * k, k);
            int y = labels[i];
            if ((uint)y >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(labels), $"label {y} is not in 0..{k - 1}");
            int best = 0;
            double max = z[0];
            for (int j = 1; j < k; j++)
            {
                if (z[j] > max)
                {
                    max = z[j];
                    best = j;
                }
            }
            if (best == y)
                correct++;
            double logSum = StableSoftmax.LogSumExp(z);
            loss += logSum - z[y];
            for (int j = 0; j < k; j++)
                g[j] = (float)((Math.Exp(z[j] - logSum) - (j == y ? 1 : 0)) / n);
        }
        if (!double.IsFinite(loss))
            throw new CamEngineException("the training loss is not finite (learning rate too high?)");
        return (loss / n, correct);
    }
}
