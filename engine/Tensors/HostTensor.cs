namespace CamEngine.Tensors;

/// <summary>
/// A dense, row-major float32 array on the host with its shape: model weights, decoded images, maps.
/// </summary>
public sealed class HostTensor
{
    /// <summary>Wraps <paramref name="data"/> (not copied) with <paramref name="shape"/>.</summary>
    public HostTensor(int[] shape, float[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long n = TensorShape.CheckedLength(shape);
        if (n != data.Length)
            throw new ArgumentException($"shape [{string.Join(",", shape)}] holds {n} elements, data has {data.Length}");
        Shape = (int[])shape.Clone();
        Data = data;
    }

    /// <summary>Creates a zero-filled tensor.</summary>
    public HostTensor(params int[] shape) : this(shape, new float[TensorShape.CheckedLength(shape)]) { }

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>The elements, row-major.</summary>
    public float[] Data { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>The shape as text, e.g. <c>[1,3,32,32]</c>.</summary>
    public string ShapeText => TensorShape.Format(Shape);

    /// <summary>The same data seen with another shape of equal length.</summary>
    public HostTensor Reshape(params int[] shape) => new(shape, Data);
}
