namespace CamEngine.Cli;

/// <summary>
/// Output files of the commands: every file is written atomically by the engine (temporary name, then rename),
/// and an existing file is replaced only when the user passed <c>--overwrite</c>.
/// </summary>
internal static class Outputs
{
    public const string Flag = "--overwrite";

    public static void CheckWritable(string path, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
            throw new CamEngineException($"{path} exists; pass {Flag} to replace it");
    }
}
