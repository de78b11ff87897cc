namespace CamEngine;

/// <summary>
/// Base of every error the engine reports on purpose: bad input files, unsupported models, wrong shapes,
/// device failures. The message names the problem in one line; callers can show it as is.
/// </summary>
public class CamEngineException : Exception
{
    /// <summary>Creates an error with a one-line message.</summary>
    public CamEngineException(string message) : base(message) { }

    /// <summary>Creates an error with a one-line message and the exception that caused it.</summary>
    public CamEngineException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates an error with no message (prefer the other constructors).</summary>
    public CamEngineException() { }
}

/// <summary>A model file (safetensors or ONNX) is corrupt, truncated, hostile or inconsistent.</summary>
public class InvalidModelFileException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public InvalidModelFileException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public InvalidModelFileException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public InvalidModelFileException() { }
}

/// <summary>A model uses an operator or attribute the engine does not implement.</summary>
public class UnsupportedModelException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public UnsupportedModelException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public UnsupportedModelException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public UnsupportedModelException() { }
}

/// <summary>An input image or array is unreadable, truncated, too large or of the wrong shape.</summary>
public class InvalidInputException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public InvalidInputException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public InvalidInputException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public InvalidInputException() { }
}

/// <summary>The device (or host) ran out of memory allocating a tensor. The message names the size; callers can
/// retry with a smaller batch (the explainer behind <see cref="CamModel"/> does).</summary>
public class DeviceMemoryException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public DeviceMemoryException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public DeviceMemoryException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public DeviceMemoryException() { }
}
