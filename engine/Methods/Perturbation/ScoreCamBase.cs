using CamEngine.Backends;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// Base of the Score-CAM family: every channel k of the layer becomes a mask M_k (H, W) at input resolution,
/// the model scores the masked inputs <c>x * M_k</c> (batched as the call's <see cref="MemoryPlan"/> sizes
/// forward re-runs), and the channel weights come from those scores; the map is <c>sum_k w_k A_k</c>.
/// Masks follow one of two conventions:
/// <list type="bullet">
/// <item>pytorch-grad-cam: upsample A_k bilinearly with align_corners=True, then
/// <c>(M - min) / (max - min + 1e-8)</c> per channel;</item>
/// <item>TorchCAM: min-max per channel at layer resolution, then bilinear upsampling with
/// align_corners=False. TorchCAM divides by <c>max(A - min)</c> without epsilon, so a constant channel is NaN
/// there; here it is an all-zero mask.</item>
/// <item>Paper (the authors' code): bilinear upsampling with align_corners=False, then min-max without epsilon
/// (constant channels are skipped by the method).</item>
/// </list>
/// All-zero masked inputs are scored once (the zero image), not re-run. The masks and every masked batch are built
/// on the device (<see cref="MaskSet"/>, <see cref="DeviceMasked"/>) with the arithmetic the host used.
/// </summary>
public abstract class ScoreCamBase : LayerMapMethod
{
    /// <summary>Only the engine's own methods derive from this class.</summary>
    private protected ScoreCamBase()
    {
    }

    /// <summary>The channel weights (N, C) from the masks and the batch's inputs.</summary>
    private protected abstract float[][] ChannelWeights(ExplainContext context, MaskSet masks, int channels);

    /// <summary>Which mask convention the method uses when <paramref name="requested"/> is the call's convention.</summary>
    internal abstract Convention MaskConventionFor(Convention requested);

    /// <inheritdoc/>
    internal override Reruns Reruns => Reruns.Forward;

    private protected override LayerMaps Compute(ExplainContext context, int layer, float[] activations, float[]? gradients)
    {
        var shape = context.GridShape(layer);
        int c = shape[0], plane = shape[1] * shape[2], size = c * plane;
        // The masks depend only on the layer's activations and the convention: methods of one call that agree on both
        // (SS-CAM, IS-CAM, and Score-CAM under TorchCAM's convention) share one set through the plan, which owns it.
        // An NCHW layer's activations are read where they are, on the device; a layer read through another layout
        // (tokens, channels last) goes up once as its (N, C, h, w) grid.
        var convention = MaskConventionFor(context.Convention);
        var masks = context.Plan.Masks(layer, convention, () =>
        {
            using var grid = context.Grid(layer).IsIdentity ? null : context.Backend.Upload(activations, [context.Batch, .. shape]);
            var set = MaskSet.Build(context, grid ?? context.Forward[context.Layers[layer].Output], convention);
            context.Plan.Ledger.AddMaskHostCopy(4 * set.HostCopyLength);
            return set;
        });
        var weights = ChannelWeights(context, masks, c);
        var maps = new float[context.Batch][];
        for (int i = 0; i < context.Batch; i++)
            maps[i] = WeightedSum(activations.AsSpan(i * size, size), weights[i], plane);
        return new LayerMaps(maps, weights);
    }

    /// <summary>
    /// The masks of one layer for the whole batch, built on the device (<see cref="Backend.ActivationMasks"/>) from
    /// the captured activations and kept there as (N*C, H, W) rows, so every masked batch is built on the device
    /// from them and the input (<see cref="Backend.MaskedInputs"/>). The bookkeeping that decides which rows to run
    /// (which masked inputs are all zero, which masks are equal) reads the masks on the host: where the device's memory
    /// is the host's (<see cref="Backend.HostMemory"/>, the CPU backend) it reads the device rows in place; elsewhere
    /// one download per layer. The masked batches themselves never leave the device.
    /// </summary>
    private protected sealed class MaskSet : IDisposable
    {
        private readonly float[]? _hostCopy;
        private readonly ReadOnlyMemory<float> _host;

        private MaskSet(Tensor device, ReadOnlyMemory<float>? inPlace, float[]? hostCopy, int channels, float[] inputs, int big)
        {
            Device = device;
            _hostCopy = hostCopy;
            _host = inPlace ?? hostCopy;
            Channels = channels;
            Inputs = inputs;
            Big = big;
        }

        /// <summary>The masks on the device, (N*C, H, W): row i*C + k is channel k of image i.</summary>
        public Tensor Device { get; }

        /// <summary>Floats of the host copy of the masks: 0 where the host reads the device rows in place.</summary>
        public long HostCopyLength => _hostCopy?.LongLength ?? 0;

        /// <summary>Channels per image.</summary>
        public int Channels { get; }

        /// <summary>The batch's inputs (N, C_in, H, W) on the host, for the zero test.</summary>
        public float[] Inputs { get; }

        /// <summary>H*W of the input.</summary>
        public int Big { get; }

        /// <summary>Mask row <paramref name="row"/> (= image * C + channel), H*W floats, on the host.</summary>
        public ReadOnlySpan<float> Row(int row) => _host.Span.Slice(row * Big, Big);

        /// <summary>Masks of activations <paramref name="a"/> (N, C, h, w) under <paramref name="convention"/>.</summary>
        public static MaskSet Build(ExplainContext context, Tensor a, Convention convention)
        {
            var backend = context.Model.Backend;
            var input = context.Model.Graph.InputShape;
            int n = a.Shape[0], c = a.Shape[1], big = input[1] * input[2];
            var device = backend.Allocate(n * c, input[1], input[2]);
            try
            {
                using (var view = device.Reshape(n, c, input[1], input[2]))
                {
                    backend.ActivationMasks(a, view, normalizeFirst: convention == Convention.TorchCam,
                        alignCorners: convention == Convention.PytorchGradCam, eps: convention == Convention.PytorchGradCam ? 1e-8f : 0f);
                }
                Memory<float>? inPlace = backend.HostMemory(device);
                var hostCopy = inPlace == null ? backend.Download(device) : null;
                return new MaskSet(device, inPlace, hostCopy, c, Perturbation.Inputs(context), big);
            }
            catch
            {
                device.Dispose();
                throw;
            }
        }

        /// <summary>Frees the device masks.</summary>
        public void Dispose() => Device.Dispose();
    }

    /// <summary>
    /// Scores of <paramref name="count"/> masked inputs: item u is the row <paramref name="rowOf"/>(u) of a masked
    /// batch (a negative mask index: the all-zero input of that image), with the image's channel masks
    /// (<see cref="MaskSet.Device"/>) and optional noise rows (<paramref name="noise"/> on the device,
    /// <paramref name="hostNoise"/> their host rows, H*W each); see <see cref="DeviceMasked.Scores"/>.
    /// </summary>
    private protected static float[] MaskedScores(ExplainContext context, MaskSet masks, int count, Func<int, MaskedRow> rowOf,
        Tensor? noise = null, HostMaskRow? hostNoise = null) =>
        DeviceMasked.Scores(context, masks.Device, masks.Row, masks.Inputs, count, rowOf, noise, hostNoise);

    /// <summary>Softmax over the channels of one image's scores.</summary>
    private protected static float[] Softmax(ReadOnlySpan<double> s)
    {
        var p = StableSoftmax.Probabilities(s);
        var w = new float[s.Length];
        for (int k = 0; k < s.Length; k++)
            w[k] = (float)p[k];
        return w;
    }

    /// <summary>The target score of each image on the unperturbed input (TorchCAM's baseline <c>y(x)</c>).</summary>
    private protected static float[] BaselineScores(ExplainContext context)
    {
        var y = context.Model.Backend.Download(context.Forward.Output);
        int k = y.Length / context.Batch;
        var s = new float[context.Batch];
        for (int i = 0; i < context.Batch; i++)
            s[i] = context.Score(i, y.AsSpan(i * k, k));
        return s;
    }
}
