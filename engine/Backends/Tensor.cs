using CamEngine.Tensors;

namespace CamEngine.Backends;

/// <summary>Element type of a device tensor.</summary>
internal enum ElementType
{
    /// <summary>32-bit float (activations, weights, gradients).</summary>
    Float32,

    /// <summary>32-bit signed integer (max-pool argmax routing).</summary>
    Int32,
}

/// <summary>
/// A tensor living on a backend: a logical row-major NCHW shape plus the backend's storage handle.
/// The physical layout of the storage is the backend's business; <c>Backend.Upload</c> and
/// <see cref="Backend.Download"/> always speak logical row-major order.
/// </summary>
internal sealed class Tensor : IDisposable
{
    private readonly bool _ownsStorage;

    internal Tensor(Backend backend, int[] shape, ElementType type, TensorStorage storage, bool ownsStorage)
    {
        Backend = backend;
        Shape = shape;
        Type = type;
        Storage = storage;
        _ownsStorage = ownsStorage;
        Length = checked((int)TensorShape.CheckedLength(shape));
    }

    /// <summary>The backend that owns the storage.</summary>
    public Backend Backend { get; }

    /// <summary>Logical shape, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Element type.</summary>
    public ElementType Type { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The backend's storage handle.</summary>
    public TensorStorage Storage { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>The shape as text.</summary>
    public string ShapeText => TensorShape.Format(Shape);

    /// <summary>A view with another shape of the same length sharing this storage (not owning it).</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (TensorShape.CheckedLength(shape) != Length)
            throw new ArgumentException($"cannot reshape {ShapeText} to {TensorShape.Format(shape)}");
        return new Tensor(Backend, (int[])shape.Clone(), Type, Storage, ownsStorage: false);
    }

    /// <summary>Releases the storage if this tensor owns it.</summary>
    public void Dispose()
    {
        if (IsDisposed)
            return;
        IsDisposed = true;
        if (_ownsStorage)
            Storage.Dispose();
    }
}

/// <summary>A backend's memory for one tensor.</summary>
internal abstract class TensorStorage : IDisposable
{
    /// <summary>Frees the memory.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the memory.</summary>
    protected virtual void Dispose(bool disposing) { }
}
