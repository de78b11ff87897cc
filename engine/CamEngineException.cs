namespace CamEngine;

/// <summary>
/// Base of every error the engine reports on purpose: bad input files, unsupported models, wrong shapes,
/// device failures. The message names the problem in one line; callers can show it as is: the constructors pass it
/// through <see cref="PrintableText.Escape"/>, so text from a file (a decoder's message, a name) cannot carry
/// control bytes, NULs or line breaks to a terminal.
/// </summary>
public class CamEngineException : Exception
{
    /// <summary>Creates an error with a one-line message.</summary>
    public CamEngineException(string message) : base(PrintableText.Escape(message)) { }

    /// <summary>Creates an error with a one-line message and the exception that caused it.</summary>
    public CamEngineException(string message, Exception inner) : base(PrintableText.Escape(message), inner) { }

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

/// <summary>A method cannot explain the requested kind of target (for example Finer-CAM, which contrasts a class with
/// its nearest classes, given a similarity target that has no class). Raised by
/// <see cref="Methods.CamMethod.CheckTarget"/> and by every explain call before any work is done.</summary>
public class UnsupportedTargetException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public UnsupportedTargetException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public UnsupportedTargetException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public UnsupportedTargetException() { }
}

/// <summary>A method cannot explain this model (for example attention rollout, which reads the self-attention of a
/// vision transformer, given a CNN). Raised by <see cref="Methods.CamMethod.CheckModel(CamModel, IReadOnlyList{string})"/> and by every explain call
/// before any work is done; the command line leaves such a method out of <c>--method all</c> with a note.</summary>
public class MethodNotApplicableException : CamEngineException
{
    /// <summary>Creates the error.</summary>
    public MethodNotApplicableException(string message) : base(message) { }

    /// <summary>Creates the error with its cause.</summary>
    public MethodNotApplicableException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public MethodNotApplicableException() { }
}
