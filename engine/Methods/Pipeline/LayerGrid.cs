using CamEngine.Model;
using CamEngine.Tensors;

namespace CamEngine.Methods;

/// <summary>
/// One layer read through its <see cref="LayerLayout"/>: the methods see (N, C, h, w) row-major arrays; this maps the
/// layer's own tensor to them (<see cref="ToGrid"/>) and back (<see cref="ToNative"/>) for the methods that replace
/// the layer's activations and run the rest of the network.
/// <code>
/// nchw:     native (N, C, h, w)           = grid
/// nhwc:     native (N, h, w, C)           grid[n, c, y, x] = native[n, y, x, c]
/// tokens:K: native (N, T, C), T = K + h*w grid[n, c, y, x] = native[n, K + y*w + x, c]
/// </code>
/// </summary>
internal sealed class LayerGrid
{
    public LayerGrid(GraphNode node, LayerReading reading)
    {
        Node = node;
        Reading = reading;
        NativeSize = checked((int)TensorShape.CheckedLength(node.Shape));
    }

    /// <summary>A (C, h, w) layer read as is.</summary>
    /// <exception cref="CamEngineException">The layer is not rank 3.</exception>
    public static LayerGrid AsIs(GraphNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var s = node.Shape;
        if (s.Length != 3)
            throw new CamEngineException($"layer '{node.Output}' has shape {TensorShape.Format(s)}; a CAM layer must be (C, h, w) (or give a layout)");
        return new LayerGrid(node, new LayerReading(node.Output, LayerLayout.Nchw, s[0], s[1], s[2], "given"));
    }

    /// <summary>The layer's node.</summary>
    public GraphNode Node { get; }

    /// <summary>The layout and grid.</summary>
    public LayerReading Reading { get; }

    /// <summary>The (C, h, w) shape the methods see.</summary>
    public int[] Shape => [Reading.Channels, Reading.Height, Reading.Width];

    /// <summary>Elements of one image's layer tensor.</summary>
    public int NativeSize { get; }

    /// <summary>Elements of one image's grid (C*h*w; less than <see cref="NativeSize"/> when tokens are dropped).</summary>
    public int GridSize => Reading.Channels * Reading.Height * Reading.Width;

    /// <summary>True when the layer is read as is.</summary>
    public bool IsIdentity => Reading.Layout.Kind == LayerLayoutKind.Nchw;

    private int Leading => Reading.Layout.Kind == LayerLayoutKind.Tokens ? Reading.Layout.LeadingTokens : 0;

    /// <summary>(N, C, h, w) from the layer's (N, native...) values.</summary>
    public float[] ToGrid(float[] native)
    {
        ArgumentNullException.ThrowIfNull(native);
        if (IsIdentity)
            return native;
        int n = native.Length / NativeSize, c = Reading.Channels, plane = Reading.Height * Reading.Width, skip = Leading * c;
        var grid = new float[n * GridSize];
        for (int i = 0; i < n; i++)
        {
            var src = native.AsSpan(i * NativeSize + skip, plane * c); // (plane, C)
            var dst = grid.AsSpan(i * GridSize, GridSize);             // (C, plane)
            for (int p = 0; p < plane; p++)
            {
                for (int k = 0; k < c; k++)
                    dst[k * plane + p] = src[p * c + k];
            }
        }
        return grid;
    }

    /// <summary>
    /// The layer's (m, native...) values from <paramref name="m"/> grids (m, C, h, w); row r's dropped leading tokens
    /// are copied from image <paramref name="rows"/>[r] of <paramref name="original"/> (the layer's (N, native...)
    /// values in the forward pass), so only the grid is replaced.
    /// </summary>
    public float[] ToNative(ReadOnlySpan<float> grid, int m, float[] original, IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(rows);
        if (IsIdentity)
            return grid[..(m * GridSize)].ToArray();
        int c = Reading.Channels, plane = Reading.Height * Reading.Width, skip = Leading * c;
        var native = new float[m * NativeSize];
        for (int r = 0; r < m; r++)
        {
            var dst = native.AsSpan(r * NativeSize, NativeSize);
            if (skip > 0)
                original.AsSpan(rows[r] * NativeSize, skip).CopyTo(dst);
            var src = grid.Slice(r * GridSize, GridSize);
            var cells = dst[skip..];
            for (int k = 0; k < c; k++)
            {
                for (int p = 0; p < plane; p++)
                    cells[p * c + k] = src[k * plane + p];
            }
        }
        return native;
    }
}
