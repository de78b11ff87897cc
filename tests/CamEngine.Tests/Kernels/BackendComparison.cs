using CamEngine.Backends;
using CamEngine.Kernels;

namespace CamEngine.Tests.Kernels;

/// <summary>
/// One comparison per op family between a fast backend (ILGPU, or the managed CPU at any vector width) and the
/// double-precision reference, on the same random inputs: forward and every backward. Shared by the per-backend
/// fixtures so each backend is held to the same checks.
/// </summary>
internal static class BackendComparison
{
    public const double Atol = 1e-5, Rtol = 1e-4;

    private static (Tensor Fast, Tensor Ref) Pair(Backend f, ReferenceBackend r, float[] data, params int[] shape) =>
        (f.Upload(data, shape), r.Upload(data, shape));

    private static void Compare(Tensor fast, Tensor reference, string what) =>
        TensorAssert.Close(fast.Backend.Download(fast), ReferenceBackend.DownloadDouble(reference), Atol, Rtol, what);

    /// <summary>Conv forward (with and without bias), backward-data, backward-weights and backward-bias.</summary>
    public static void Conv(Backend f, ReferenceBackend reference, ConvShape s)
    {
        var rng = new Random(1234);
        var (x, xr) = Pair(f, reference, TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        var (w, wr) = Pair(f, reference, TensorAssert.Random(rng, (int)s.WeightLength), s.K, s.CPerGroup, s.KH, s.KW);
        var (b, br) = Pair(f, reference, TensorAssert.Random(rng, s.K), s.K);
        var (dy, dyr) = Pair(f, reference, TensorAssert.Random(rng, s.N * s.K * s.OH * s.OW), s.N, s.K, s.OH, s.OW);

        foreach (bool bias in new[] { true, false })
        {
            using var y = f.Allocate(s.N, s.K, s.OH, s.OW);
            using var yr = reference.Allocate(s.N, s.K, s.OH, s.OW);
            f.Conv2d(x, w, bias ? b : null, y, s);
            reference.Conv2d(xr, wr, bias ? br : null, yr, s);
            Compare(y, yr, $"conv forward (bias {bias})");
        }
        using var dx = f.Allocate(x.Shape);
        using var dxr = reference.Allocate(x.Shape);
        f.Conv2dBackwardData(dy, w, dx, s);
        reference.Conv2dBackwardData(dyr, wr, dxr, s);
        Compare(dx, dxr, "conv backward data");
        using var dw = f.Allocate(w.Shape);
        using var dwr = reference.Allocate(w.Shape);
        f.Conv2dBackwardWeights(x, dy, dw, s);
        reference.Conv2dBackwardWeights(xr, dyr, dwr, s);
        Compare(dw, dwr, "conv backward weights");
        using var db = f.Allocate(s.K);
        using var dbr = reference.Allocate(s.K);
        f.Conv2dBackwardBias(dy, db, s);
        reference.Conv2dBackwardBias(dyr, dbr, s);
        Compare(db, dbr, "conv backward bias");
        foreach (var t in new[] { x, xr, w, wr, b, br, dy, dyr })
            t.Dispose();
    }

    /// <summary>Global average pool forward and backward, same-shape add, scale and ReLU on (n, c, h, w) tensors.</summary>
    public static void GapAddScaleRelu(Backend f, ReferenceBackend reference, int n, int c, int h, int w)
    {
        var rng = new Random(3);
        int len = n * c * h * w;
        var (x, xr) = Pair(f, reference, TensorAssert.Random(rng, len), n, c, h, w);
        var (z, zr) = Pair(f, reference, TensorAssert.Random(rng, len), n, c, h, w);
        var (dy, dyr) = Pair(f, reference, TensorAssert.Random(rng, n * c), n, c, 1, 1);
        using var y = f.Allocate(n, c, 1, 1);
        using var yr = reference.Allocate(n, c, 1, 1);
        f.GlobalAvgPool(x, y);
        reference.GlobalAvgPool(xr, yr);
        Compare(y, yr, "gap forward");
        using var dx = f.Allocate(x.Shape);
        using var dxr = reference.Allocate(x.Shape);
        f.GlobalAvgPoolBackward(dy, dx);
        reference.GlobalAvgPoolBackward(dyr, dxr);
        Compare(dx, dxr, "gap backward");
        using var s = f.Allocate(x.Shape);
        using var sr = reference.Allocate(x.Shape);
        f.Add(x, z, s);
        reference.Add(xr, zr, sr);
        Compare(s, sr, "add");
        f.Scale(x, s, -2.5f);
        reference.Scale(xr, sr, -2.5f);
        Compare(s, sr, "scale");
        f.Relu(x, s);
        reference.Relu(xr, sr);
        Compare(s, sr, "relu");
        foreach (var t in new[] { x, xr, z, zr, dy, dyr })
            t.Dispose();
    }

    /// <summary>Max-pool forward, backward and routing; average-pool forward and backward.</summary>
    public static void Pooling(Backend f, ReferenceBackend reference, PoolShape s)
    {
        var rng = new Random(99);
        var (x, xr) = Pair(f, reference, TensorAssert.Random(rng, s.N * s.C * s.H * s.W), s.N, s.C, s.H, s.W);
        var (dy, dyr) = Pair(f, reference, TensorAssert.Random(rng, s.N * s.C * s.OH * s.OW), s.N, s.C, s.OH, s.OW);
        int[] ys = [s.N, s.C, s.OH, s.OW];
        using (var y = f.Allocate(ys))
        using (var yr = reference.Allocate(ys))
        using (var a = f.AllocateIndices(ys))
        using (var ar = reference.AllocateIndices(ys))
        using (var dx = f.Allocate(x.Shape))
        using (var dxr = reference.Allocate(x.Shape))
        {
            f.MaxPool(x, y, a, s);
            reference.MaxPool(xr, yr, ar, s);
            Compare(y, yr, "max-pool forward");
            f.MaxPoolBackward(dy, a, dx, s);
            reference.MaxPoolBackward(dyr, ar, dxr, s);
            Compare(dx, dxr, "max-pool backward");
            // Taylor coefficients follow the order-0 routing: route the backward result back through argmax.
            f.MaxPoolRoute(dx, a, y, s);
            reference.MaxPoolRoute(dxr, ar, yr, s);
            Compare(y, yr, "max-pool route");
        }
        using (var y = f.Allocate(ys))
        using (var yr = reference.Allocate(ys))
        using (var dx = f.Allocate(x.Shape))
        using (var dxr = reference.Allocate(x.Shape))
        {
            f.AvgPool(x, y, s);
            reference.AvgPool(xr, yr, s);
            Compare(y, yr, "avg-pool forward");
            f.AvgPoolBackward(dy, dx, s);
            reference.AvgPoolBackward(dyr, dxr, s);
            Compare(dx, dxr, "avg-pool backward");
        }
        foreach (var t in new[] { x, xr, dy, dyr })
            t.Dispose();
    }
}
