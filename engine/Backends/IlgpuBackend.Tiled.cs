using CamEngine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace CamEngine.Backends;

/// <summary>
/// The launches of the tiled kernels: implicit-GEMM convs and dense layers through <see cref="TiledGemm"/>, the
/// depthwise kernels, and the group and warp reductions of <see cref="Reductions"/>. Explicitly grouped: each
/// launch names its grid and group (256 threads).
/// </summary>
internal sealed partial class IlgpuBackend
{
    /// <summary>Blocks a launch should have to fill the device; the backward-weights kernel splits its reduction
    /// until it has them. Two per multiprocessor by default.</summary>
    internal int TargetBlocks { get; set; }

    private static Epilogue Epilogue(bool bias, bool residual, EpilogueActivation activation, float lo, float hi) =>
        new((int)activation, lo, hi, bias ? 1 : 0, residual ? 1 : 0);

    private void Tiled<TOps>(TOps ops) where TOps : struct, ITileOperands
    {
        if (ops.Rows == 0 || ops.Cols == 0)
            return;
        var launch = Get<Action<KernelConfig, TOps>>(
            (Action<TOps>)TiledGemm.Run, () => _accelerator.LoadStreamKernel<TOps>(TiledGemm.Run));
        launch(TiledGemm.Config(ops), ops);
    }

    private void TiledConv(Tensor x, Tensor w, Tensor? b, Tensor? residual, Tensor y, ConvShape s,
        EpilogueActivation activation, float lo, float hi)
    {
        var e = Epilogue(b != null, residual != null, activation, lo, hi);
        if (s.CPerGroup == 1 && s.Groups > 1)
        {
            // Depthwise: a tile's reduction would be KH*KW long; register strips of outputs suit it better.
            var g = new Kernels.Conv2d.Geometry(s);
            int strips = (s.OW + Kernels.Conv2d.DepthwiseStrip - 1) / Kernels.Conv2d.DepthwiseStrip;
            Launch(Kernels.Conv2d.DepthwiseForward, s.N * s.K * s.OH * strips,
                F(x), F(w), F(b, w), F(residual, y), F(y), g, e);
            return;
        }
        Tiled(new Kernels.Conv2d.TiledForward(F(x), F(w), F(b, w), F(residual, y), F(y), s, e));
    }

    private void TiledConvBackwardData(Tensor dy, Tensor w, Tensor dx, ConvShape s) =>
        Tiled(new Kernels.Conv2d.TiledBackwardData(F(dy), F(w), F(dx), s));

    private void TiledConvBackwardWeights(Tensor x, Tensor dy, Tensor dw, ConvShape s)
    {
        if (s.CPerGroup == 1 && s.Groups > 1)
        {
            var launch = Get<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, Kernels.Conv2d.Geometry>>(
                (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, Kernels.Conv2d.Geometry>)Kernels.Conv2d.DepthwiseBackwardWeights,
                () => _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, Kernels.Conv2d.Geometry>(
                    Kernels.Conv2d.DepthwiseBackwardWeights));
            launch(new KernelConfig(dw.Length, ReductionGroup), F(x), F(dy), F(dw), new Kernels.Conv2d.Geometry(s));
            return;
        }
        int splits = SplitsFor(s);
        if (splits > 1)
            F(dw).SubView(0, dw.Length).MemSetToZero(_accelerator.DefaultStream);
        Tiled(new Kernels.Conv2d.TiledBackwardWeights(F(x), F(dy), F(dw), s, splits));
    }

    /// <summary>
    /// The split-K factor of a weight gradient: enough splits that the launch has <see cref="TargetBlocks"/> blocks,
    /// but each split at least 32 K steps long (so the atomic adds stay few against the FMAs).
    /// </summary>
    internal int SplitsFor(ConvShape s)
    {
        long rows = (long)s.CPerGroup * s.KH * s.KW, depth = (long)s.N * s.OH * s.OW;
        long blocks = (rows + TiledGemm.BM - 1) / TiledGemm.BM * ((s.KPerGroup + TiledGemm.BN - 1) / TiledGemm.BN) * s.Groups;
        int target = TargetBlocks > 0 ? TargetBlocks : 2 * Math.Max(1, _accelerator.NumMultiprocessors);
        long wanted = (target + blocks - 1) / blocks;
        long most = Math.Max(1, depth / (32 * TiledGemm.BK));
        return (int)Math.Clamp(Math.Min(wanted, most), 1, Math.Max(1, 65535 / s.Groups));
    }

    /// <summary>Threads per group of the reduction kernels: 256, or the device's maximum if smaller.</summary>
    private int ReductionGroup => Math.Min(Reductions.GroupSize, _accelerator.MaxNumThreadsPerGroup);

    private void ChannelSum(Tensor x, Tensor sums, int n, int channels, int plane, float scale)
    {
        var launch = Get<Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, float>>(
            (Action<ArrayView<float>, ArrayView<float>, int, int, int, float>)Reductions.ChannelSum,
            () => _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, float>(Reductions.ChannelSum));
        launch(new KernelConfig(channels, ReductionGroup), F(x), F(sums), n, channels, plane, scale);
    }

    private void RowMeans(Tensor x, Tensor means, int rows, int plane)
    {
        var launch = Get<Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>>(
            (Action<ArrayView<float>, ArrayView<float>, int, int>)Reductions.RowMeans,
            () => _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(Reductions.RowMeans));
        int group = ReductionGroup;
        int warps = Math.Max(1, group / _accelerator.WarpSize);
        launch(new KernelConfig((rows + warps - 1) / warps, group), F(x), F(means), rows, plane);
    }

    /// <inheritdoc/>
    protected override void MinMaxNormalizeRowsCore(Tensor x, Tensor y, int rows, int length)
    {
        if (!_tiled)
        {
            base.MinMaxNormalizeRowsCore(x, y, rows, length);
            return;
        }
        MinMaxRows(F(x), F(y), rows, length, 0f);
    }

    private void MinMaxRows(ArrayView<float> x, ArrayView<float> y, int rows, int length, float eps)
    {
        var launch = Get<Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, float>>(
            (Action<ArrayView<float>, ArrayView<float>, int, float>)Reductions.MinMaxNormalize,
            () => _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, float>(Reductions.MinMaxNormalize));
        launch(new KernelConfig(rows, ReductionGroup), x, y, length, eps);
    }
}
