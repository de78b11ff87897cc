using CamEngine.Backends;
using CamEngine.Graph;

namespace CamEngine.Autodiff;

/// <summary>Exact diagonal derivatives <c>d^k s / dA_i^k</c>, k = 1, 2, 3, of a target score s at a layer A.</summary>
/// <param name="Indices">The elements of A (flat indices within one image's activation) they belong to.</param>
/// <param name="First">ds/dA_i.</param>
/// <param name="Second">d^2 s / dA_i^2.</param>
/// <param name="Third">d^3 s / dA_i^3.</param>
/// <param name="Method">How they were computed: <c>reverse</c> (piecewise-linear layers after A: the output is
/// locally linear in A, so one reverse pass per output the score depends on gives the Jacobian, and the score's
/// own derivatives do the rest) or <c>jets</c> (one third-order forward jet per element, batched).</param>
internal sealed record DiagonalDerivatives(int[] Indices, double[] First, double[] Second, double[] Third, string Method);

/// <summary>
/// Higher-order queries of a target score with respect to a layer's activations for one image, built on the
/// reverse pass (<see cref="DeviceModel.Backward"/>) and forward-mode jets (<see cref="TaylorPass"/>):
/// Jacobian-vector products, Hessian-vector products and exact diagonal second and third derivatives.
/// </summary>
internal static class HigherOrder
{
    /// <summary>The output tangent <c>J v</c> (outputs) of image <paramref name="image"/> along a direction
    /// <paramref name="v"/> at <paramref name="layer"/> (one image's activation shape).</summary>
    public static float[] Jvp(DeviceModel model, ForwardPass pass, int image, string layer, ReadOnlySpan<float> v)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pass);
        using var dir = model.Backend.Upload(v, [1, .. pass[layer].Shape[1..]]);
        return TaylorPass.Run(model, pass, image, layer, [dir])[0];
    }

    /// <summary>
    /// The exact diagonal derivatives of <paramref name="score"/> (a function of image <paramref name="image"/>'s
    /// output row) with respect to the activation at <paramref name="layer"/>, for every element or for
    /// <paramref name="indices"/>. When every op after the layer is piecewise linear, the output is locally linear
    /// in A and the derivatives come from the Jacobian rows of the outputs the score uses (reverse passes);
    /// otherwise (or with <paramref name="forceJets"/>) one third-order jet per element, in batches of
    /// <paramref name="batch"/> directions.
    /// </summary>
    public static DiagonalDerivatives Diagonal(
        DeviceModel model, ForwardPass pass, int image, string layer, ScoreFunction score,
        IReadOnlyList<int>? indices = null, bool forceJets = false, int batch = 64)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(score);
        int size = pass[layer].Length / pass.Batch;
        var idx = (indices ?? Enumerable.Range(0, size).ToArray()).ToArray();
        if (idx.Any(i => i < 0 || i >= size))
            throw new ArgumentOutOfRangeException(nameof(indices), $"element indices must be in 0..{size - 1}");
        var z0 = OutputRow(model, pass, image);
        int outputs = z0.Length;
        var first = new double[idx.Length];
        var second = new double[idx.Length];
        var third = new double[idx.Length];
        if (!forceJets && TaylorPass.IsPiecewiseLinear(model.Graph, layer))
        {
            // z(t) = z0 + t J e_i exactly near A (no op after the layer bends), so s(t) = T(z0 + t J[:, i]).
            var jacobian = JacobianRows(model, pass, image, layer, outputs);
            var row = new Jet3[outputs];
            for (int n = 0; n < idx.Length; n++)
            {
                for (int j = 0; j < outputs; j++)
                    row[j] = new Jet3(z0[j], jacobian[j][idx[n]], 0, 0);
                (first[n], second[n], third[n]) = Derivatives(score.Evaluate(row));
            }
            return new DiagonalDerivatives(idx, first, second, third, "reverse");
        }
        var b = model.Backend;
        int[] layerShape = pass[layer].Shape[1..];
        for (int start = 0; start < idx.Length; start += batch)
        {
            int m = Math.Min(batch, idx.Length - start);
            var oneHot = new float[m * size];
            for (int r = 0; r < m; r++)
                oneHot[r * size + idx[start + r]] = 1f;
            using var c1 = b.Upload(oneHot, [m, .. layerShape]);
            var z = TaylorPass.Run(model, pass, image, layer, [c1, null, null]);
            var row = new Jet3[outputs];
            for (int r = 0; r < m; r++)
            {
                for (int j = 0; j < outputs; j++)
                    row[j] = new Jet3(z0[j], z[0][r * outputs + j], z[1][r * outputs + j], z[2][r * outputs + j]);
                (first[start + r], second[start + r], third[start + r]) = Derivatives(score.Evaluate(row));
            }
        }
        return new DiagonalDerivatives(idx, first, second, third, "jets");
    }

    /// <summary>
    /// The Hessian-vector product <c>H v</c> of <paramref name="score"/> with respect to the activation at
    /// <paramref name="layer"/> of image <paramref name="image"/>. With piecewise-linear ops after the layer,
    /// <c>H = J^T (d^2 T / dz^2) J</c>: a forward tangent <c>z1 = J v</c>, the score's Hessian times z1 on the host,
    /// then one reverse pass of that vector (zero for a raw logit). Through smooth ops (sigmoid, SiLU, softmax...)
    /// it is exact by polarization of second-order jets, <c>(H v)_i = (q(v + e_i) - q(v) - q(e_i)) / 2</c> with
    /// <c>q(u) = u^T H u</c>: 2n + 1 second-order forward passes of the layers after A (n = the layer's size),
    /// batched <paramref name="batch"/> directions at a time.
    /// </summary>
    public static float[] Hvp(
        DeviceModel model, ForwardPass pass, int image, string layer, ScoreFunction score, ReadOnlySpan<float> v, int batch = 64)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(score);
        var z0 = OutputRow(model, pass, image);
        if (TaylorPass.IsPiecewiseLinear(model.Graph, layer))
        {
            var z1 = Jvp(model, pass, image, layer, v).Select(f => (double)f).ToArray();
            var w = score.HessianVector(z0, z1);
            return Vjp(model, pass, image, layer, w.Select(d => (float)d).ToArray());
        }
        int n = pass[layer].Length / pass.Batch;
        if (v.Length != n)
            throw new ArgumentException($"{v.Length} values for a layer of {n}", nameof(v));
        var vv = v.ToArray();
        // Direction r: r = 0 is v; r = 1 + 2i is e_i; r = 2 + 2i is v + e_i.
        int directions = 2 * n + 1;
        var q = new double[directions];
        var b = model.Backend;
        int[] layerShape = pass[layer].Shape[1..];
        int outputs = z0.Length;
        for (int start = 0; start < directions; start += batch)
        {
            int m = Math.Min(batch, directions - start);
            var dirs = new float[m * n];
            for (int r = 0; r < m; r++)
            {
                int d = start + r;
                var row = dirs.AsSpan(r * n, n);
                if (d == 0 || d % 2 == 0)
                    vv.CopyTo(row);
                if (d > 0)
                    row[(d - 1) / 2] += 1f;
            }
            using var c1 = b.Upload(dirs, [m, .. layerShape]);
            var z = TaylorPass.Run(model, pass, image, layer, [c1, null]);
            var jets = new Jet3[outputs];
            for (int r = 0; r < m; r++)
            {
                for (int j = 0; j < outputs; j++)
                    jets[j] = new Jet3(z0[j], z[0][r * outputs + j], z[1][r * outputs + j], 0);
                q[start + r] = 2 * score.Evaluate(jets).C2;
            }
        }
        var result = new float[n];
        for (int i = 0; i < n; i++)
            result[i] = (float)((q[2 + 2 * i] - q[0] - q[1 + 2 * i]) / 2);
        return result;
    }

    /// <summary>The vector-Jacobian product <c>u^T J</c> at <paramref name="layer"/> for image <paramref name="image"/>.</summary>
    public static float[] Vjp(DeviceModel model, ForwardPass pass, int image, string layer, ReadOnlySpan<float> u)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pass);
        var b = model.Backend;
        int outputs = pass.Output.Length / pass.Batch;
        if (u.Length != outputs)
            throw new ArgumentException($"{u.Length} values for {outputs} outputs", nameof(u));
        var seed = new float[pass.Output.Length];
        u.CopyTo(seed.AsSpan(image * outputs, outputs));
        using var s = b.Upload(seed, pass.Output.Shape);
        using var g = model.Backward(pass, s, new BackwardRequest { Layers = [layer] });
        var all = b.Download(g.Layers[layer]);
        int size = all.Length / pass.Batch;
        return all.AsSpan(image * size, size).ToArray();
    }

    private static double[][] JacobianRows(DeviceModel model, ForwardPass pass, int image, string layer, int outputs)
    {
        var rows = new double[outputs][];
        var unit = new float[outputs];
        for (int j = 0; j < outputs; j++)
        {
            unit[j] = 1f;
            rows[j] = Vjp(model, pass, image, layer, unit).Select(f => (double)f).ToArray();
            unit[j] = 0f;
        }
        return rows;
    }

    private static double[] OutputRow(DeviceModel model, ForwardPass pass, int image)
    {
        var all = model.Backend.Download(pass.Output);
        int outputs = all.Length / pass.Batch;
        return all.AsSpan(image * outputs, outputs).ToArray().Select(f => (double)f).ToArray();
    }

    private static (double, double, double) Derivatives(Jet3 s) => (s.C1, 2 * s.C2, 6 * s.C3);
}
